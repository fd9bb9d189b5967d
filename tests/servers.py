"""Real servers for the tests: a free port on 127.0.0.1, and a uvicorn process over a models folder.

One module for every test folder (``tests`` is on pytest's ``pythonpath``): the API tests, the README's
commands (tests/integration/test_readme.py) and the tests that start ``legalsearch serve`` share it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(models_dir: Path, **env: str) -> dict[str, str]:
    """The environment of a server process: this one's, the worktree's sources first, watching off, ``env``."""
    return {
        **os.environ,
        "LEGALSEARCH_MODELS_DIR": str(models_dir),
        "LEGALSEARCH_WATCH_INTERVAL_S": "0",
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env,
    }


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until ``base``/readyz answers 200; fail with the process's output if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"the server exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not become ready within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's graceful shutdown), then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def uvicorn_process(models_dir: Path, *args: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real uvicorn process serving ``models_dir`` on a free port of 127.0.0.1: its base URL and process.

    ``args`` go to uvicorn (``--no-access-log``), ``env`` adds ``LEGALSEARCH_*`` settings (watching is off unless
    ``LEGALSEARCH_WATCH_INTERVAL_S`` says otherwise). Its output stays readable from ``proc.stdout`` once it stopped.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "legalsearch.api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *args],
        env=server_env(models_dir, **env), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base, proc
    finally:
        stop(proc)


@contextlib.contextmanager
def uvicorn_server(models_dir: Path, *args: str, **env: str) -> Iterator[str]:
    """``uvicorn_process``, yielding only the base URL."""
    with uvicorn_process(models_dir, *args, **env) as (base, _):
        yield base
