"""Training run twice, killed, or on a full or read-only disk: real ``legalsearch train`` processes.

A run is paused with SIGSTOP at a stage it announces on stderr (``-v``), which makes each race deterministic
without a test hook in the product: the second run starts while the first one sits exactly there.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from legalsearch.model import current_version, list_models, set_current, verify_model

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "corpora" / "demo"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"
#: the files whose bytes show whether a model is the solo model (one worker, fixed seed: training repeats exactly)
COMPARED = ("vectors.npy", "vectors_keys.txt", "docvectors.npy", "phrases.tsv", "vocabulary.tsv")


def _env() -> dict[str, str]:
    src = str(ROOT / "src")
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src}


class TrainProcess:
    """One ``legalsearch train`` process whose stderr lines are read as they come."""

    def __init__(self, models: Path, cache: Path, *args: str, extra: Path = DEMO / "extra",
                 config: Path = DEMO_CONFIG, prefix: tuple[str, ...] = ()) -> None:
        cmd = [*prefix, sys.executable, "-m", "legalsearch.cli", "train", "--corpus", str(DEMO),
               "--extra-text", str(extra), "--config", str(config), "--models-dir", str(models),
               "--cache-dir", str(cache), "-q", "-v", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self._stdout: list[str] = []
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        threading.Thread(target=lambda: self._stdout.extend(self.proc.stdout or []), daemon=True).start()

    def _pump_stderr(self) -> None:
        for line in self.proc.stderr or []:
            self.stderr.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout_s: float = 120) -> None:
        """Block until a stderr line contains ``text``; fail when the process ends first or time runs out."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"train ended (rc {self.proc.wait()}) before {text!r}: {''.join(self.stderr)[-2000:]}")
            if text in line:
                return
        pytest.fail(f"no {text!r} within {timeout_s} s: {''.join(self.stderr)[-2000:]}")

    def finish(self, timeout_s: float = 300) -> tuple[int, str, list[str]]:
        """Exit code, stdout, and the stderr lines that are not log records (the one-line reasons)."""
        rc = self.proc.wait(timeout=timeout_s)
        time.sleep(0.05)  # let the reader threads drain the pipes
        reasons = [line for line in self.stderr if " INFO " not in line and " WARNING " not in line]
        return rc, "".join(self._stdout), reasons

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def processes() -> Iterator[list[TrainProcess]]:
    """Every process a test starts, killed by PID at the end whatever happened."""
    started: list[TrainProcess] = []
    yield started
    for p in started:
        p.kill()


def _fingerprint(models: Path) -> dict[str, str]:
    manifest = verify_model((models / "current").resolve())
    return {name: manifest["files"][name]["sha256"] for name in COMPARED}


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The files of a model trained alone, by the same command."""
    base = tmp_path_factory.mktemp("solo")
    rc, _, reasons = TrainProcess(base / "models", base / "cache").finish()
    assert rc == 0, reasons
    return _fingerprint(base / "models")


def _leftovers(*folders: Path) -> list[Path]:
    return sorted(p for f in folders if f.is_dir() for p in f.rglob("*") if ".tmp-" in p.name)


def test_a_second_run_on_the_shared_cache_is_refused_or_waits_and_both_give_the_solo_model(
    tmp_path: Path, solo: dict[str, str], processes: list[TrainProcess]
) -> None:
    cache = tmp_path / "cache"
    first = TrainProcess(tmp_path / "a", cache)
    processes.append(first)
    first.wait_for("stage word2vec: started")
    first.stop()  # the first run now sits where word2vec reads its training text
    refused = TrainProcess(tmp_path / "b", cache, "--lock-timeout", "0")
    processes.append(refused)
    rc, _, reasons = refused.finish()
    assert rc == 7, reasons
    assert len(reasons) == 1 and "token cache entry" in reasons[0] and "in use" in reasons[0], reasons
    assert list_models(tmp_path / "b") == [] and current_version(tmp_path / "b") is None
    same_folder = TrainProcess(tmp_path / "a", tmp_path / "other-cache", "--lock-timeout", "0")
    processes.append(same_folder)
    rc, _, reasons = same_folder.finish()
    assert rc == 7 and len(reasons) == 1 and "models folder" in reasons[0], reasons

    waiting = TrainProcess(tmp_path / "c", cache, "--lock-timeout", "120")
    processes.append(waiting)
    waiting.wait_for("waiting up to 120 s")
    first.resume()
    assert first.finish()[0] == 0, first.stderr[-5:]
    rc, _, reasons = waiting.finish()
    assert rc == 0, reasons
    assert _fingerprint(tmp_path / "a") == solo
    assert _fingerprint(tmp_path / "c") == solo
    assert len(list_models(tmp_path / "a")) == 1
    assert _leftovers(tmp_path / "a", tmp_path / "c", cache) == []


def test_current_moved_during_the_run_is_left_alone(
    tmp_path: Path, processes: list[TrainProcess]
) -> None:
    models, cache = tmp_path / "models", tmp_path / "cache"
    for args in ((), ("--no-current",)):
        rc, _, reasons = TrainProcess(models, cache, *args).finish()
        assert rc == 0, reasons
    first = current_version(models)
    other = next(m.version for m in list_models(models) if m.version != first)
    run = TrainProcess(models, cache)
    processes.append(run)
    run.wait_for("stage word2vec: started")
    run.stop()
    set_current(models, other)  # an operator picks another version while the run is under way
    run.resume()
    rc, stdout, reasons = run.finish()
    assert rc == 9, reasons
    assert len(reasons) == 1 and "'current' was not moved" in reasons[0] and other in reasons[0], reasons
    assert current_version(models) == other
    versions = [m.version for m in list_models(models)]
    assert len(versions) == 3
    new = next(v for v in versions if v not in (first, other))
    verify_model(models / new)  # the new model is kept, complete
    assert new in stdout


def test_killed_runs_leave_nothing_after_the_next_run(tmp_path: Path, processes: list[TrainProcess]) -> None:
    models, cache = tmp_path / "models", tmp_path / "cache"
    # enough extra text that preprocessing lasts long enough to be caught writing its temporary folder
    extra = tmp_path / "extra"
    extra.mkdir()
    lines = (DEMO / "extra" / "commentary.txt").read_text(encoding="utf-8").splitlines()
    (extra / "big.txt").write_text(
        "\n".join(f"Abschnitt {i}: {line}" for i in range(200) for line in lines) + "\n", encoding="utf-8"
    )
    config = tmp_path / "quick.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace("epochs = 40", "epochs = 2"))

    first = TrainProcess(models, cache, extra=extra, config=config)
    processes.append(first)
    first.wait_for("stage preprocess: started")
    deadline = time.monotonic() + 60
    while not list((cache / "tokens").glob("*.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.002)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)
    assert [p.name.split(".")[1] for p in (cache / "tokens").glob("*.tmp-*")] == [f"tmp-{first.proc.pid}"]

    second = TrainProcess(models, cache, extra=extra, config=config)
    processes.append(second)
    second.wait_for("stage word2vec: started")
    assert not list((cache / "tokens").glob("*.tmp-*")), "the first run's leftovers survived the next start"
    second.proc.send_signal(signal.SIGKILL)
    second.proc.wait(timeout=30)
    assert [p.name for p in models.glob(".tmp-*")], "the killed run left no unfinished model to clean"

    rc, _, reasons = TrainProcess(models, cache, extra=extra, config=config).finish()
    assert rc == 0, reasons
    assert _leftovers(models, cache) == []
    assert len(list_models(models)) == 1
    verify_model((models / "current").resolve())


def _one_line_io_error(rc: int, reasons: list[str], why: str) -> None:
    assert rc == 8, reasons
    assert len(reasons) == 1 and reasons[0].startswith("error: ") and why in reasons[0], reasons
    assert "Traceback" not in "".join(reasons)


def _without_root_powers() -> tuple[str, ...]:
    """A command prefix under which file modes apply: root overrides them, so as root the run drops the two
    capabilities that let it (setpriv, util-linux); skipped when that is not possible."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot stop root")
    return (setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--")


def test_read_only_models_or_cache_folder_gives_one_line_and_exit_8(
    tmp_path: Path, processes: list[TrainProcess]
) -> None:
    prefix = _without_root_powers()
    models, cache = tmp_path / "models", tmp_path / "cache"
    for folder in (models, cache):
        folder.mkdir()
        folder.chmod(0o555)
    run = TrainProcess(models, tmp_path / "own-cache", prefix=prefix)
    processes.append(run)
    _one_line_io_error(*_code_and_reasons(run), "Permission denied")
    run = TrainProcess(tmp_path / "writable", cache, prefix=prefix)
    processes.append(run)
    _one_line_io_error(*_code_and_reasons(run), "Permission denied")
    assert list_models(tmp_path / "writable") == [] and not list((tmp_path / "writable").glob(".tmp-*"))
    for folder in (models, cache):
        folder.chmod(0o755)


def _code_and_reasons(run: TrainProcess) -> tuple[int, list[str]]:
    rc, _, reasons = run.finish()
    return rc, reasons


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 150 KiB tmpfs: too small for the demo model (0.4 MiB) and, below 64 KiB, for its token cache.

    Needs root and a kernel that lets this process mount; skipped otherwise (the simulated full disk in
    tests/unit/test_storage_errors.py runs everywhere).
    """
    mount = tmp_path / "full"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=150k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_gives_one_line_exit_8_and_no_leftovers(
    full_disk: Path, tmp_path: Path, processes: list[TrainProcess]
) -> None:
    run = TrainProcess(full_disk / "models", tmp_path / "cache")
    processes.append(run)
    _one_line_io_error(*_code_and_reasons(run), "disk is full")
    assert _leftovers(full_disk / "models", tmp_path / "cache") == []
    assert current_version(full_disk / "models") is None
    shutil.rmtree(full_disk / "models")
    (full_disk / "filler").write_bytes(b"\0" * (100 << 10))  # leaves ~50 KiB: the token cache does not fit
    run = TrainProcess(tmp_path / "models", full_disk / "cache")
    processes.append(run)
    rc, reasons = _code_and_reasons(run)
    _one_line_io_error(rc, reasons, "No space left on device")
    assert "stage preprocess" in reasons[0]
    assert _leftovers(tmp_path / "models", full_disk / "cache") == []
