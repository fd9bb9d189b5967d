"""The model folder: atomic commit, the current pointer, verification of every file."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import legalsearch
from legalsearch.errors import ArtifactError, NoModelError
from legalsearch.model import (
    SCHEMA_VERSION,
    ModelWriter,
    current_version,
    list_models,
    new_version_name,
    read_manifest,
    resolve_model_dir,
    set_current,
    sha256_file,
    update_manifest,
    verify_model,
)


def _train(models_dir: Path, version: str, payload: bytes = b"vectors", make_current: bool = True) -> Path:
    with ModelWriter(models_dir, version) as writer:
        (writer.path / "index.faiss").write_bytes(payload)
        (writer.path / "lexical").mkdir()
        (writer.path / "lexical" / "vocab.json").write_text('{"miete": 0}', encoding="utf-8")
        return writer.commit({"config": {"k1": 1.2}, "corpus_hash": "abc"}, {"documents": 3, "vocabulary": 7},
                             make_current=make_current)


def test_version_names_are_sortable_and_unique() -> None:
    names = [new_version_name() for _ in range(50)]
    assert len(set(names)) == 50
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", n) for n in names)


def test_commit_writes_manifest_with_hashes_and_moves_current(tmp_path: Path) -> None:
    path = _train(tmp_path, "20260101-000000-aaaaaa")
    assert path == tmp_path / "20260101-000000-aaaaaa"
    assert not (tmp_path / ".tmp-20260101-000000-aaaaaa").exists()
    m = read_manifest(path)
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["package_version"] == legalsearch.__version__
    assert isinstance(m["git_sha"], str) and m["git_sha"]
    assert m["version"] == "20260101-000000-aaaaaa"
    assert m["counts"] == {"documents": 3, "vocabulary": 7}
    assert m["config"] == {"k1": 1.2} and m["corpus_hash"] == "abc"
    assert set(m["files"]) == {"index.faiss", "lexical/vocab.json"}
    assert m["files"]["index.faiss"] == {"sha256": sha256_file(path / "index.faiss"), "bytes": 7}
    # the known digest of b"vectors", so a broken sha256_file cannot pass by comparing with itself
    assert m["files"]["index.faiss"]["sha256"] == (
        "29a6a5e3c39862766d200557894f42fe0afed05234816b0ca9cbb59bbc1d6023"
    )
    assert os.readlink(tmp_path / "current") == "20260101-000000-aaaaaa"  # relative link
    assert current_version(tmp_path) == "20260101-000000-aaaaaa"
    assert resolve_model_dir(tmp_path) == path.resolve()
    assert verify_model(path)["version"] == "20260101-000000-aaaaaa"


def test_current_moves_only_on_commit(tmp_path: Path) -> None:
    _train(tmp_path, "20260101-000000-aaaaaa")
    with ModelWriter(tmp_path, "20260102-000000-bbbbbb") as writer:
        (writer.path / "index.faiss").write_bytes(b"new")
        assert writer.path.name == ".tmp-20260102-000000-bbbbbb" and writer.path.parent == tmp_path
        assert current_version(tmp_path) == "20260101-000000-aaaaaa"
        writer.commit({}, {"documents": 1})
    assert current_version(tmp_path) == "20260102-000000-bbbbbb"
    _train(tmp_path, "20260103-000000-cccccc", make_current=False)
    assert current_version(tmp_path) == "20260102-000000-bbbbbb"


def test_failed_run_leaves_nothing_and_keeps_current(tmp_path: Path) -> None:
    _train(tmp_path, "20260101-000000-aaaaaa")
    version = "20260102-000000-bbbbbb"
    with pytest.raises(RuntimeError, match="training blew up"), ModelWriter(tmp_path, version) as w:
        (w.path / "index.faiss").write_bytes(b"half")
        raise RuntimeError("training blew up")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20260101-000000-aaaaaa", "current"]
    assert current_version(tmp_path) == "20260101-000000-aaaaaa"
    # leaving the block without commit is a failure too
    with ModelWriter(tmp_path, "20260103-000000-cccccc") as w:
        (w.path / "x").write_bytes(b"x")
    assert not (tmp_path / ".tmp-20260103-000000-cccccc").exists()
    assert not (tmp_path / "20260103-000000-cccccc").exists()


def test_commit_refuses_reserved_fields_and_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="files"), ModelWriter(tmp_path, "v1") as w:
        w.commit({"files": {}}, {})
    assert list(tmp_path.iterdir()) == []


def test_no_model_and_unknown_version(tmp_path: Path) -> None:
    with pytest.raises(NoModelError, match="legalsearch train"):
        resolve_model_dir(tmp_path)
    assert current_version(tmp_path) is None
    _train(tmp_path, "20260101-000000-aaaaaa")
    with pytest.raises(ArtifactError, match=r"unknown model version 'nope'.*20260101-000000-aaaaaa"):
        resolve_model_dir(tmp_path, "nope")
    with pytest.raises(ArtifactError):
        set_current(tmp_path, "nope")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "index.faiss").write_bytes(b"vectorz"), r"index\.faiss is corrupted or modified"),
        (lambda p: (p / "index.faiss").unlink(), r"file index\.faiss is missing"),
        (lambda p: (p / "lexical" / "vocab.json").write_text('{"mi', encoding="utf-8"),
         r"lexical/vocab\.json has 4 bytes, the manifest says 12"),
        (lambda p: (p / "manifest.json").unlink(), r"manifest\.json is missing"),
        (lambda p: (p / "manifest.json").write_text("{not json", encoding="utf-8"), "not valid JSON"),
    ],
    ids=["modified-byte", "missing-file", "truncated-file", "no-manifest", "bad-manifest"],
)
def test_verify_refuses_damage(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    path = _train(tmp_path, "v1")
    verify_model(path)
    damage(path)
    with pytest.raises(ArtifactError, match=message):
        verify_model(path)


def test_verify_without_hashes_still_checks_sizes(tmp_path: Path) -> None:
    path = _train(tmp_path, "v1")
    (path / "index.faiss").write_bytes(b"vectorz")  # same size, different byte
    verify_model(path, check_hashes=False)
    (path / "index.faiss").write_bytes(b"vec")
    with pytest.raises(ArtifactError, match="3 bytes"):
        verify_model(path, check_hashes=False)


def test_verify_refuses_unknown_schema(tmp_path: Path) -> None:
    path = _train(tmp_path, "v1")
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    m["schema_version"] = SCHEMA_VERSION + 1
    (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"unsupported manifest schema_version 2"):
        verify_model(path)


def test_set_current_verifies_first(tmp_path: Path) -> None:
    old = _train(tmp_path, "20260101-000000-aaaaaa")
    _train(tmp_path, "20260102-000000-bbbbbb")
    set_current(tmp_path, "20260101-000000-aaaaaa")
    assert current_version(tmp_path) == "20260101-000000-aaaaaa"
    (tmp_path / "20260102-000000-bbbbbb" / "index.faiss").write_bytes(b"broken!")
    with pytest.raises(ArtifactError, match="corrupted"):
        set_current(tmp_path, "20260102-000000-bbbbbb")
    assert resolve_model_dir(tmp_path) == old.resolve()


def test_list_models_newest_first_ignoring_tmp(tmp_path: Path) -> None:
    for v in ["20260102-000000-bbbbbb", "20260101-000000-aaaaaa", "20260103-000000-cccccc"]:
        _train(tmp_path, v, make_current=False)
        # created_at has one-second resolution; spread the versions like real runs
        m = read_manifest(tmp_path / v)
        update_manifest(tmp_path / v, created_at=f"{v[:4]}-{v[4:6]}-{v[6:8]}T00:00:00+00:00")
        assert read_manifest(tmp_path / v)["files"] == m["files"]
    set_current(tmp_path, "20260102-000000-bbbbbb")
    (tmp_path / ".tmp-20260104-000000-dddddd").mkdir()
    infos = list_models(tmp_path)
    assert [i.version for i in infos] == [
        "20260103-000000-cccccc", "20260102-000000-bbbbbb", "20260101-000000-aaaaaa"
    ]
    assert [i.current for i in infos] == [False, True, False]
    assert infos[0].documents == 3 and infos[0].vocabulary == 7
    assert list_models(tmp_path / "absent") == []


def test_update_manifest_keeps_model_valid(tmp_path: Path) -> None:
    path = _train(tmp_path, "v1")
    update_manifest(path, evaluation={"ndcg@10": 0.123})
    m = verify_model(path)
    assert m["evaluation"] == {"ndcg@10": 0.123}
    assert m["corpus_hash"] == "abc"
    with pytest.raises(ArtifactError, match="files"):
        update_manifest(path, files={})
    assert [p.name for p in path.iterdir() if p.name.startswith(".")] == []
