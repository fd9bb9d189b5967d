"""Full training runs measured from outside: one checkout's ``legalsearch train`` as a child process.

The training suite runs the original code (a commit, by default ``7f662ea``, exported with ``git archive``) and
this checkout one after the other with the same corpus and each checkout's own ``configs/default.toml``, so that
their ratio is measured on the same machine under the same load. Per run: wall and CPU seconds of the whole
process tree, the largest single process's peak RSS (what ``/usr/bin/time`` reports) and the peak of the summed
RSS of all processes alive at once (sampled every 0.2 s: helper processes count too), and the stage timings of the
manifest the run wrote.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench import REPO_ROOT

log = logging.getLogger(__name__)

#: the code the issue measured (training ~5 min 20 s / 2.0 GiB on its machine)
BASELINE_REF = "7f662ea"
SAMPLE_S = 0.2


@dataclass(frozen=True)
class Checkout:
    """A copy of the code to train with: a folder with ``src/`` and ``configs/``."""

    label: str
    root: Path
    commit: str


def this_checkout() -> Checkout:
    """The code the benchmark runs from."""
    return Checkout("new", REPO_ROOT, _git(REPO_ROOT, "rev-parse", "--short", "HEAD"))


def checkout_at(ref: str, work_dir: Path) -> Checkout:
    """The code at git ``ref``, exported (``git archive``: no worktree to clean up) under ``work_dir`` once."""
    commit = _git(REPO_ROOT, "rev-parse", "--short", f"{ref}^{{commit}}")
    root = work_dir / f"code-{commit}"
    if not (root / "src" / "legalsearch").is_dir():
        archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "src", "configs"],
                                 check=True, capture_output=True).stdout
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
    return Checkout("original", root, commit)


def existing_checkout(root: Path) -> Checkout:
    """A checkout somewhere else (``--baseline-src``), e.g. a git worktree of the original commit."""
    try:
        commit = _git(root, "rev-parse", "--short", "HEAD")
    except (subprocess.CalledProcessError, OSError):
        # a folder ``checkout_at`` made earlier is named after its commit and is no git checkout
        commit = root.name.removeprefix("code-") if root.name.startswith("code-") else "unknown"
    return Checkout("original", root, commit)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class _TreeSampler:
    """Polls the summed RSS of a process and its descendants until stopped."""

    pid: int
    peak_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, _tree_rss(self.pid))
            self._stop.wait(SAMPLE_S)

    def stop(self) -> None:
        self._stop.set()


def _tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue  # ended between the listing and the reading
    return total


@dataclass(frozen=True)
class MeasuredRun:
    """One training run of one checkout, measured from outside, with its manifest's stage timings."""

    label: str
    commit: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_tree_rss_mb: float
    total_seconds: float
    stages: dict[str, dict[str, Any]]
    model: str

    def row(self) -> dict[str, Any]:
        """As a JSON object."""
        return {"label": self.label, "commit": self.commit, "wall_s": round(self.wall_s, 1),
                "cpu_s": round(self.cpu_s, 1), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "peak_tree_rss_mb": round(self.peak_tree_rss_mb, 1), "total_seconds": self.total_seconds,
                "stages": self.stages, "model": self.model}


def train_measured(checkout: Checkout, corpus: Sequence[Path], extra: Sequence[Path], config: Path,
                   work_dir: Path) -> MeasuredRun:
    """Train with ``checkout``'s code in a child process (fresh models folder and token cache under ``work_dir``)."""
    models, cache = work_dir / f"models-{checkout.label}", work_dir / f"cache-{checkout.label}"
    cmd = [sys.executable, "-m", "legalsearch.cli", "train", "--config", str(config), "--models-dir", str(models),
           "--cache-dir", str(cache), "-q", "-v"]
    cmd += [a for p in corpus for a in ("--corpus", str(p))] + [a for p in extra for a in ("--extra-text", str(p))]
    env = {**os.environ, "PYTHONPATH": str(checkout.root / "src"), "PYTHONHASHSEED": "0"}
    log.info("training with the %s code (%s): %s", checkout.label, checkout.commit, " ".join(cmd))
    log_path = work_dir / f"train-{checkout.label}.log"
    work_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=checkout.root)
        sampler = _TreeSampler(proc.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        # wait4: the child's rusage (CPU of it and its reaped descendants, the largest one's peak RSS)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"training with the {checkout.label} code failed ({proc.returncode}); see {log_path}")
    manifest = _current_manifest(models)
    return MeasuredRun(checkout.label, checkout.commit, wall, usage.ru_utime + usage.ru_stime,
                       usage.ru_maxrss / 1024.0, sampler.peak_bytes / 2**20, float(manifest["total_seconds"]),
                       manifest["timings"], str(models))


def _current_manifest(models: Path) -> dict[str, Any]:
    versions = sorted(p for p in models.iterdir() if p.is_dir() and (p / "manifest.json").is_file())
    data: dict[str, Any] = json.loads((versions[-1] / "manifest.json").read_text(encoding="utf-8"))
    return data


def comparison(old: MeasuredRun, new: MeasuredRun) -> dict[str, Any]:
    """The old/new row: both runs, the ratios, and per stage seconds side by side."""
    names = list(dict.fromkeys([*old.stages, *new.stages]))
    return {
        "original": old.row(),
        "new": new.row(),
        "wall_ratio": round(new.wall_s / old.wall_s, 3),
        "cpu_ratio": round(new.cpu_s / old.cpu_s, 3),
        "peak_rss_ratio": round(new.peak_rss_mb / old.peak_rss_mb, 3),
        "stages": [{"name": n, "original_s": old.stages.get(n, {}).get("seconds"),
                    "new_s": new.stages.get(n, {}).get("seconds")} for n in names],
        "note": "one run each, the original first, on the same machine in the same bench run; the machine may be "
                "shared: compare the ratios, and the load averages recorded with the suite",
    }
