"""Hostile corpora: tar and gzip bombs, huge members and lines, symbolic links; each stopped or refused clearly."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from legalsearch.config import CorpusConfig, config_from_dict
from legalsearch.corpus import IngestReport, read_documents, read_extra_text
from legalsearch.corpus.gesetze import iter_archive_laws
from legalsearch.errors import ConfigError, CorpusError

REPO = Path(__file__).resolve().parents[2]
LAW = REPO / "tests" / "fixtures" / "corpus" / "gesetze" / "t" / "testg" / "index.md"
SMALL = CorpusConfig(max_file_bytes=64 << 10, max_line_bytes=1024, max_uncompressed_bytes=1 << 20)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _reasons(report: IngestReport) -> dict[str, int]:
    return report.reasons()


def test_tar_bomb_is_stopped_at_the_cap_before_it_is_unpacked(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        _add(tar, "gesetze/t/testg/index.md", LAW.read_bytes())
        for i in range(4):  # 2.4 MiB of zeros, 10 KB compressed
            _add(tar, f"gesetze/z/zero{i}/index.md", b"\0" * (600 << 10))
    assert bomb.stat().st_size < 30_000
    with pytest.raises(CorpusError, match=r"bomb\.tar\.gz: expands to more than 1,048,576 bytes .*bomb"):
        list(read_documents([bomb], SMALL, IngestReport()))


def test_a_member_announcing_terabytes_is_refused_from_its_header(tmp_path: Path) -> None:
    # the header claims 3 TiB; nothing after it is ever decompressed, so the default cap answers at once
    info = tarfile.TarInfo("gesetze/b/bomb/index.md")
    info.size = 3 << 40
    bomb = tmp_path / "header.tar.gz"
    bomb.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 4096))
    with pytest.raises(CorpusError, match="expands to more than 2,147,483,648 bytes"):
        list(iter_archive_laws(bomb, CorpusConfig(), IngestReport()))


def test_oversized_members_files_and_links_are_skipped_and_reported(tmp_path: Path) -> None:
    archive = tmp_path / "laws.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, "gesetze/t/testg/index.md", LAW.read_bytes())
        _add(tar, "gesetze/h/huge/index.md", b"#" * (65 << 10))
        link = tarfile.TarInfo("gesetze/l/link/index.md")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    report = IngestReport()
    docs = list(read_documents([archive], SMALL, report))
    assert docs and all(d.metadata["law"] == "TestG" for d in docs)
    assert {(s.source, s.reason) for s in report.skipped} >= {
        ("gesetze/h/huge/index.md", "file too large"), ("gesetze/l/link/index.md", "link refused")}


def test_symlinks_in_corpus_folders_are_refused_not_followed(tmp_path: Path) -> None:
    corpus = tmp_path / "laws"
    (corpus / "t" / "testg").mkdir(parents=True)
    (corpus / "t" / "testg" / "index.md").write_bytes(LAW.read_bytes())
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (outside / "secret" / "index.md").write_bytes(LAW.read_bytes().replace(b"TestG", b"SecretG"))
    os.symlink(outside / "secret" / "index.md", corpus / "t" / "stolen.md")
    os.symlink(outside / "secret", corpus / "linked")
    report = IngestReport()
    docs = list(read_documents([corpus], SMALL, report))
    assert docs and {d.metadata["law"] for d in docs} == {"TestG"}
    assert {(s.source, s.reason) for s in report.skipped} >= {
        ("laws/linked", "symlink refused"), ("laws/t/stolen.md", "symlink refused")}
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "a.txt").write_text("Der Vermieter kündigt.\n", encoding="utf-8")
    os.symlink("/etc/hostname", extra / "b.txt")
    report = IngestReport()
    assert list(read_extra_text([extra], report, SMALL)) == ["Der Vermieter kündigt."]
    assert [(s.source, s.reason) for s in report.skipped] == [("extra/b.txt", "symlink refused")]


def test_a_huge_jsonl_line_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    good = {"id": "A", "text": "Der Vermieter kann kündigen, wenn er Eigenbedarf hat."}
    huge = {"id": "B", "text": "x" * 5000}
    path.write_text("\n".join(json.dumps(r) for r in (huge, good, huge | {"id": "C"})) + "\n", encoding="utf-8")
    report = IngestReport()
    docs = list(read_documents([path], SMALL, report))
    assert [d.id for d in docs] == ["A"] and docs[0].source.endswith("docs.jsonl:2")
    assert [(s.line, s.reason) for s in report.skipped] == [(1, "line too long"), (3, "line too long")]


def test_a_line_of_exactly_the_cap_is_kept(tmp_path: Path) -> None:
    record = {"id": "A", "text": ""}
    record["text"] = "y" * (1024 - len(json.dumps(record)))
    path = tmp_path / "edge.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert [d.id for d in read_documents([path], SMALL, IngestReport())] == ["A"]


@pytest.mark.parametrize("name", ["docs.jsonl.gz", "extra.txt.gz"])
def test_gzip_bomb_stops_with_a_clear_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"\0" * (3 << 20)))  # one 3 MiB line, 3 KB compressed
    with pytest.raises(CorpusError, match=rf"{name}: expands to more than 1,048,576 bytes uncompressed"):
        if name.endswith(".jsonl.gz"):
            list(read_documents([path], SMALL, IngestReport()))
        else:
            list(read_extra_text([path], IngestReport(), SMALL))


def test_caps_have_ranges() -> None:
    with pytest.raises(ConfigError, match=r"max_line_bytes = 10: must be between 1024"):
        config_from_dict({"corpus": {"max_line_bytes": 10}})
    with pytest.raises(ConfigError, match="max_uncompressed_bytes"):
        config_from_dict({"corpus": {"max_uncompressed_bytes": 1 << 50}})
    assert config_from_dict({"corpus": {"max_file_bytes": 4096}}).corpus.max_file_bytes == 4096


def test_train_on_a_tar_bomb_exits_3_with_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        _add(tar, "gesetze/z/zero/index.md", b"\0" * (2 << 20))
    config = tmp_path / "small.toml"
    config.write_text("[corpus]\nmax_uncompressed_bytes = 1048576\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "legalsearch.cli", "train", "--corpus", str(bomb), "--config", str(config),
         "--models-dir", str(tmp_path / "models"), "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "decompression bomb" in lines[0], lines
    assert not list((tmp_path / "models").glob(".tmp-*"))
