"""Locks, compare-and-swap of ``current``, leftover cleanup, ``gc`` and one-line storage errors, in one process."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from legalsearch import pipeline
from legalsearch.cli import app
from legalsearch.config import load_config
from legalsearch.errors import BusyError, StorageError
from legalsearch.locks import FileLock
from legalsearch.model import (
    ModelWriter,
    compare_and_set_current,
    current_version,
    list_models,
    read_manifest,
    remove_leftovers,
)
from legalsearch.pipeline import train
from legalsearch.tokencache import DONE, MANIFEST_KEY, clean_leftovers, entry_lock

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "corpora" / "demo"
DEMO_CONFIG = REPO / "configs" / "demo.toml"


def _hold_in_child(path: Path) -> subprocess.Popen[str]:
    """Another process holding the lock on ``path`` until its stdin closes."""
    code = ("import sys; from pathlib import Path; from legalsearch.locks import FileLock; "
            f"lock = FileLock(Path({str(path)!r}), 'x'); assert lock.try_acquire(); print('held', flush=True); "
            "sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_held_lock_refuses_at_once_or_after_the_timeout_and_frees_when_its_process_dies(tmp_path: Path) -> None:
    path = tmp_path / ".train.lock"
    child = _hold_in_child(path)
    try:
        with pytest.raises(BusyError, match=f"in use by another training run \\(pid {child.pid} since"):
            FileLock(path, "models folder m").acquire(0)
        start = time.monotonic()
        with pytest.raises(BusyError):
            FileLock(path, "models folder m").acquire(0.5)
        assert 0.4 < time.monotonic() - start < 5
    finally:
        child.kill()  # SIGKILL: the kernel drops the lock with the process
        child.wait(timeout=30)
    with FileLock(path, "models folder m").acquire(0) as lock:
        assert lock.held


def test_compare_and_set_current_moves_only_from_what_it_expects(tmp_path: Path) -> None:
    for version in ("v1", "v2", "v3"):
        with ModelWriter(tmp_path, version) as writer:
            (writer.path / "f").write_text(version)
            writer.commit({}, {}, make_current=version == "v1")
    assert compare_and_set_current(tmp_path, "v2", None) == "v1"
    assert current_version(tmp_path) == "v1"
    assert compare_and_set_current(tmp_path, "v2", "v1") is None
    assert current_version(tmp_path) == "v2"
    assert compare_and_set_current(tmp_path, "v3", "v1") == "v2"
    assert current_version(tmp_path) == "v2"


def test_leftovers_of_dead_owners_are_removed_and_those_of_live_ones_kept(tmp_path: Path) -> None:
    (tmp_path / "models" / ".tmp-20260101-000000-aaaaaa").mkdir(parents=True)
    os.symlink("nowhere", tmp_path / "models" / ".current-deadbeef")
    (tmp_path / "models" / ".current.json.0badf00d.tmp").write_text("{")
    (tmp_path / "models" / ".train.lock").write_text("")
    expected = {".tmp-20260101-000000-aaaaaa", ".current-deadbeef", ".current.json.0badf00d.tmp"}
    assert {p.name for p in remove_leftovers(tmp_path / "models", dry_run=True)} == expected
    assert {p.name for p in remove_leftovers(tmp_path / "models")} == expected
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".train.lock"]
    tokens = tmp_path / "cache" / "tokens"
    (tokens / "deadkey.tmp-99999").mkdir(parents=True)
    (tokens / "livekey.tmp-12345").mkdir()
    (tokens / "livekey").mkdir()
    (tokens / "livekey" / "train-abc.txt.tmp-12345").write_text("half")
    child = _hold_in_child(tokens / "livekey.lock")
    try:
        assert [p.name for p in clean_leftovers(tokens)] == ["deadkey.tmp-99999"]
        assert (tokens / "livekey.tmp-12345").exists() and (tokens / "livekey" / "train-abc.txt.tmp-12345").exists()
    finally:
        child.kill()
        child.wait(timeout=30)
    assert {p.name for p in clean_leftovers(tokens)} == {"livekey.tmp-12345", "train-abc.txt.tmp-12345"}


def test_gc_removes_unused_old_entries_only(tmp_path: Path) -> None:
    models, cache = tmp_path / "models", tmp_path / "cache"
    cfg = load_config(DEMO_CONFIG)
    kept = train([DEMO], cfg, models, cache_dir=cache, progress=False)
    gone = train([DEMO / "decisions.jsonl"], cfg, models, cache_dir=cache, progress=False, make_current=False)
    key_kept, key_gone = kept.manifest[MANIFEST_KEY], gone.manifest[MANIFEST_KEY]
    assert key_kept != key_gone and (cache / "tokens" / key_gone / DONE).is_file()
    shutil.rmtree(gone.path)
    runner = CliRunner()
    args = ["gc", "--models-dir", str(models), "--cache-dir", str(cache)]
    recent = runner.invoke(app, args)
    assert recent.exit_code == 0 and "removed 0 token-cache entries" in recent.output
    assert "1 used within 30 days" in recent.output
    month_ago = time.time() - 31 * 86400
    os.utime(cache / "tokens" / key_gone / DONE, (month_ago, month_ago))
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and f"would remove {cache / 'tokens' / key_gone}" in dry.output
    assert (cache / "tokens" / key_gone).is_dir()
    done = runner.invoke(app, args)
    assert done.exit_code == 0 and "removed 1 token-cache entries" in done.output, done.output
    assert not (cache / "tokens" / key_gone).exists() and not (cache / "tokens" / f"{key_gone}.lock").exists()
    assert (cache / "tokens" / key_kept / DONE).is_file() and "1 used by kept models" in done.output
    assert read_manifest(kept.path)[MANIFEST_KEY] == key_kept


def test_a_locked_cache_entry_survives_gc(tmp_path: Path) -> None:
    tokens = tmp_path / "cache" / "tokens"
    (tokens / "busykey").mkdir(parents=True)
    (tokens / "busykey" / DONE).write_text("1")
    with entry_lock(tokens, "busykey").acquire(0):
        result = CliRunner().invoke(app, ["gc", "--models-dir", str(tmp_path / "models"), "--cache-dir",
                                          str(tmp_path / "cache"), "--older-than-days", "0"])
    assert result.exit_code == 0 and "1 in use by a running training" in result.output, result.output
    assert (tokens / "busykey").is_dir()


def _fail_with(err: int) -> object:
    def write_documents(documents: object, out: Path) -> int:
        raise OSError(err, os.strerror(err), str(out / "documents.jsonl"))

    return write_documents


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES])
def test_simulated_io_errors_give_one_line_exit_8_and_no_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    # portable stand-in for a full disk / a folder the run may not write (see test_train_safety for real ones)
    monkeypatch.setattr(pipeline.docstore, "write_documents", _fail_with(err))
    with pytest.raises(StorageError, match=f"stage documents by an I/O error on .*documents.jsonl: "
                                           f"{os.strerror(err)}"):
        train([DEMO], load_config(DEMO_CONFIG), tmp_path / "m", cache_dir=tmp_path / "c", progress=False)
    result = CliRunner().invoke(app, ["train", "--corpus", str(DEMO), "--config", str(DEMO_CONFIG), "-q",
                                      "--models-dir", str(tmp_path / "m"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 8
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and os.strerror(err) in errors[0] and "Traceback" not in result.output
    assert list_models(tmp_path / "m") == [] and not list((tmp_path / "m").glob(".tmp-*"))
    assert not [p for p in (tmp_path / "c").rglob("*") if ".tmp-" in p.name]


def test_a_lock_timeout_out_of_range_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEGALSEARCH_TRAIN_LOCK_TIMEOUT_S", "-1")
    result = CliRunner().invoke(app, ["train", "--corpus", str(DEMO), "--models-dir", str(tmp_path / "m"), "-q"])
    assert result.exit_code == 2 and "LEGALSEARCH_TRAIN_LOCK_TIMEOUT_S" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m").exists()
