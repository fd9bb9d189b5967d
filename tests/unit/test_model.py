"""The model folder: atomic commit, the current pointer, verification of every file."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import legalsearch
from legalsearch.errors import ArtifactError, NoModelError
from legalsearch.model import (
    SCHEMA_VERSION,
    SERVING_DIR,
    ModelWriter,
    current_version,
    list_models,
    mark_serving,
    new_version_name,
    prune_models,
    read_current_record,
    read_manifest,
    resolve_model_dir,
    serving_markers,
    set_current,
    sha256_file,
    unmark_serving,
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20260101-000000-aaaaaa", "current", "current.json"]
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
    with pytest.raises(ArtifactError, match=rf"unsupported manifest schema_version {SCHEMA_VERSION + 1}"):
        verify_model(path)


def test_schema_1_models_are_refused_with_the_reason(tmp_path: Path) -> None:
    # schema 1 stored the word vectors as a gensim pickle: such folders must not load, and say why
    path = _train(tmp_path, "v1")
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    m["schema_version"] = 1
    (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"schema_version 1.*retrain.*pickle"):
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


VERSIONS = [f"20260101-00000{i}-aaaaaa" for i in range(5)]


def _five(models_dir: Path) -> None:
    for v in VERSIONS:
        _train(models_dir, v)


def _marker_of_a_dead_process(models_dir: Path, version: str) -> Path:
    """A real server-like process that records what it serves and dies without removing its marker."""
    code = (
        "import os, sys; from pathlib import Path; from legalsearch.model import mark_serving; "
        "mark_serving(Path(sys.argv[1]), sys.argv[2], 'x'); os._exit(0)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(models_dir), version], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    (marker,) = [p for p in (models_dir / SERVING_DIR).iterdir() if p.name.endswith("-x.json")]
    return marker


def test_serving_markers_live_and_stale(tmp_path: Path) -> None:
    _five(tmp_path)
    mark_serving(tmp_path, VERSIONS[1], "me")
    (live,) = serving_markers(tmp_path)
    assert (live.version, live.pid, live.host) == (VERSIONS[1], os.getpid(), socket.gethostname())
    mark_serving(tmp_path, VERSIONS[2], "me")  # a swap rewrites the same marker
    assert [m.version for m in serving_markers(tmp_path)] == [VERSIONS[2]]
    dead = _marker_of_a_dead_process(tmp_path, VERSIONS[0])
    assert [m.version for m in serving_markers(tmp_path)] == [VERSIONS[2]]
    assert {m.path for m in serving_markers(tmp_path, include_stale=True)} == {live.path, dead}
    # this PID, but a process started at another time: the PID was reused, the server is gone
    record = json.loads(live.path.read_text(encoding="utf-8"))
    reused = tmp_path / SERVING_DIR / "vm-reused.json"
    reused.write_text(json.dumps({**record, "started": record["started"] + 1}), encoding="utf-8")
    (tmp_path / SERVING_DIR / "garbage.json").write_text("{not json", encoding="utf-8")
    assert [m.path for m in serving_markers(tmp_path)] == [live.path]
    unmark_serving(tmp_path, "me")
    unmark_serving(tmp_path, "me")
    assert serving_markers(tmp_path) == []


def test_marker_of_another_host_is_trusted(tmp_path: Path) -> None:
    (tmp_path / SERVING_DIR).mkdir(parents=True)
    record = {"version": "v", "host": socket.gethostname() + "-elsewhere", "pid": 1 << 30, "started": None}
    (tmp_path / SERVING_DIR / "elsewhere.json").write_text(json.dumps(record), encoding="utf-8")
    assert [m.version for m in serving_markers(tmp_path)] == ["v"]


def test_mark_serving_never_fails_the_server(tmp_path: Path) -> None:
    (tmp_path / SERVING_DIR).write_text("a file where the folder should be", encoding="utf-8")
    mark_serving(tmp_path, "v", "me")  # logged, not raised
    assert serving_markers(tmp_path) == []


def test_prune_keeps_newest_current_and_served(tmp_path: Path) -> None:
    _five(tmp_path)
    set_current(tmp_path, VERSIONS[0])
    mark_serving(tmp_path, VERSIONS[1], "me")
    dead = _marker_of_a_dead_process(tmp_path, VERSIONS[2])
    preview = prune_models(tmp_path, keep=1, dry_run=True)
    assert preview.removed == (VERSIONS[3], VERSIONS[2]) and preview.dry_run
    assert [m.version for m in list_models(tmp_path)] == VERSIONS[::-1] and dead.exists()
    result = prune_models(tmp_path, keep=1)
    assert result.removed == (VERSIONS[3], VERSIONS[2])
    assert result.kept == {VERSIONS[4]: "newest", VERSIONS[1]: f"serving (pid {os.getpid()} on "
                           f"{socket.gethostname()})", VERSIONS[0]: "current"}
    assert result.stale_markers == (dead.name,) and not dead.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [VERSIONS[0], VERSIONS[1], VERSIONS[4], "current", "current.json", SERVING_DIR]
    )
    verify_model(tmp_path / VERSIONS[0])
    verify_model(tmp_path / VERSIONS[1])
    unmark_serving(tmp_path, "me")
    again = prune_models(tmp_path, keep=0)
    assert again.removed == (VERSIONS[4], VERSIONS[1]) and again.kept == {VERSIONS[0]: "current"}
    assert current_version(tmp_path) == VERSIONS[0]
    verify_model(tmp_path / VERSIONS[0])


def test_prune_removes_read_only_models(tmp_path: Path) -> None:
    _five(tmp_path)
    old = tmp_path / VERSIONS[0]
    for path in [*old.rglob("*"), old]:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR if path.is_dir() else stat.S_IRUSR)
    result = prune_models(tmp_path, keep=4)
    assert result.removed == (VERSIONS[0],) and not old.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".pruned-"))]


def test_prune_finishes_what_an_interrupted_prune_left(tmp_path: Path) -> None:
    _five(tmp_path)
    os.rename(tmp_path / VERSIONS[0], tmp_path / f".pruned-{VERSIONS[0]}-abcdef")
    assert len(list_models(tmp_path)) == 4
    result = prune_models(tmp_path, keep=4)
    assert result.removed == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*VERSIONS[1:], "current", "current.json"])


def test_prune_refuses_a_negative_keep(tmp_path: Path) -> None:
    _five(tmp_path)
    with pytest.raises(ArtifactError, match="keep"):
        prune_models(tmp_path, keep=-1)
    assert len(list_models(tmp_path)) == 5
def test_committed_files_are_read_only(tmp_path: Path) -> None:
    path = _train(tmp_path, "20260101-000000-aaaaaa")
    for rel in [*read_manifest(path)["files"], "manifest.json"]:
        assert (path / rel).stat().st_mode & 0o777 == 0o444, rel
    update_manifest(path, evaluation={"ndcg@10": 0.5})
    assert (path / "manifest.json").stat().st_mode & 0o777 == 0o444


def test_current_record_pins_the_manifest(tmp_path: Path) -> None:
    path = _train(tmp_path, "20260101-000000-aaaaaa")
    record = read_current_record(tmp_path)
    assert record is not None and record.version == "20260101-000000-aaaaaa"
    assert record.manifest_sha256 == sha256_file(path / "manifest.json")
    verify_model(path, manifest_sha256=record.manifest_sha256)
    # update_manifest re-pins the model current names, so eval scores do not make it untrusted
    update_manifest(path, evaluation={"ndcg@10": 0.5})
    record = read_current_record(tmp_path)
    assert record is not None
    verify_model(path, manifest_sha256=record.manifest_sha256)
    # a manifest edited behind the record's back (say, with its file hashes rewritten) is refused
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    m["counts"]["documents"] = 4
    os.chmod(path / "manifest.json", 0o644)
    (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"not the one current\.json recorded"):
        verify_model(path, manifest_sha256=record.manifest_sha256)


def test_files_the_manifest_does_not_list_are_refused(tmp_path: Path) -> None:
    path = _train(tmp_path, "20260101-000000-aaaaaa")
    verify_model(path)
    (path / "thesaurus" / "seed-9").mkdir(parents=True)
    with pytest.raises(ArtifactError, match="thesaurus is not listed"):
        verify_model(path, check_hashes=False)
    shutil.rmtree(path / "thesaurus")
    (path / "lexical" / "extra.npy").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"lexical/extra\.npy is not listed"):
        verify_model(path, check_hashes=False)
