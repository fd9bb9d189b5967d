"""Helpers shared by the API tests: second and damaged model versions in a models folder, a uvicorn server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from legalsearch.model import CURRENT_NAME, MANIFEST_NAME, _point_current

ROOT = Path(__file__).resolve().parents[2]


def copy_version(models_dir: Path, new_version: str) -> Path:
    """Copy the current model to a new version folder (manifest.json is not hashed, so it stays valid)."""
    src = (models_dir / CURRENT_NAME).resolve()
    dst = models_dir / new_version
    shutil.copytree(src, dst)
    manifest = json.loads((dst / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest["version"] = new_version
    writable(dst / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return dst


def writable(path: Path) -> Path:
    """Undo the read-only mode committed model files have (root writes anyway; other users could not)."""
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return path


def damage(model_dir: Path, file: str = "docvectors.npy") -> None:
    """Flip one byte near the end of a file (same size, different hash)."""
    path = writable(model_dir / file)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def point_current(models_dir: Path, version: str) -> None:
    """Move ``current`` (current.json and the symlink) without verifying (set_current would refuse a damaged
    model); the record pins the manifest as it is now."""
    _point_current(models_dir, version)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def uvicorn_server(models_dir: Path, **env: str) -> Iterator[str]:
    """A real uvicorn process serving ``models_dir`` on a free port of 127.0.0.1; yields its base URL.

    ``env`` adds ``LEGALSEARCH_*`` settings (e.g. ``LEGALSEARCH_API_KEYS``). Watching is off: nothing swaps.
    """
    port = free_port()
    full_env = {
        **os.environ,
        "LEGALSEARCH_MODELS_DIR": str(models_dir),
        "LEGALSEARCH_WATCH_INTERVAL_S": "0",
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "legalsearch.api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=full_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"uvicorn exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"uvicorn did not become ready within {timeout} s")
