"""Real servers for the tests: a free port on 127.0.0.1, a uvicorn or ``legalsearch serve`` process over a models
folder, and what tests of several workers look at (the worker processes, their connections).

One module for every test folder (``tests`` is on pytest's ``pythonpath``): the API tests, the README's
commands (tests/integration/test_readme.py) and the tests that start ``legalsearch serve`` share it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
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


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0, log: Path | None = None) -> None:
    """Wait until ``base``/readyz answers 200; fail with the process's output (or ``log``) if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if log is not None:
                out = log.read_text(errors="replace")
            else:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"the server exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not become ready within {timeout} s")


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM (uvicorn's graceful shutdown), then SIGKILL to its children and itself after ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
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


@contextlib.contextmanager
def serve_process(models_dir: Path, *args: str, log: Path | None = None, ready_s: float = 90.0, stop_s: float = 30.0,
                  **env: str) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """``legalsearch serve`` over ``models_dir`` on a free port of 127.0.0.1, once ``/readyz`` answers 200: its base
    URL, port and process.

    ``args`` go to ``serve`` (``--workers 2``), ``env`` adds ``LEGALSEARCH_*`` settings (watching is off unless
    ``LEGALSEARCH_WATCH_INTERVAL_S`` says otherwise). Its output goes to the file ``log``, or stays readable from
    ``proc.stdout``. Stopped by SIGTERM, its workers and itself killed after ``stop_s`` seconds.
    """
    port = free_port()
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("wb")) if log is not None else subprocess.PIPE
        proc = subprocess.Popen(
            [sys.executable, "-m", "legalsearch.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--models-dir", str(models_dir), "--no-access-log", *args],
            env=server_env(models_dir, **env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, ready_s, log)
        yield base, port, proc
    finally:
        if proc.poll() is None:
            stop(proc, stop_s)


def workers(main: psutil.Process) -> list[psutil.Process]:
    """The uvicorn worker processes of a ``legalsearch serve --workers N`` (multiprocessing also starts a resource
    tracker beside them)."""
    out = []
    for child in main.children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


def connections_per_worker(main: psutil.Process, port: int) -> dict[int, int]:
    """Per worker PID, its established connections on ``port``."""
    counts = {}
    for child in workers(main):
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        counts[child.pid] = sum(
            1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
    return counts


@contextlib.contextmanager
def client_threads(client: Callable[[int], None], count: int, stop: threading.Event) -> Iterator[None]:
    """``count`` threads running ``client(0)`` .. ``client(count - 1)`` during the block (each until ``stop`` is
    set); at its end ``stop`` is set and every thread joined (30 s at most each)."""
    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


@contextlib.contextmanager
def spread_clients(base: str, main: psutil.Process, port: int, count: int = 8) -> Iterator[list[httpx.Client]]:
    """``count`` connections opened together (one ``/livez`` each) once the two workers of ``main`` hold half of
    them each; closed at the end of the block."""
    clients = [httpx.Client(base_url=base, timeout=20) for _ in range(count)]
    try:
        for c in clients:
            assert c.get("/livez").status_code == 200
        half = count // 2
        wait_for(lambda: sorted(connections_per_worker(main, port).values()) == [half, count - half], 10,
                 f"{half} + {count - half} connections, saw {connections_per_worker(main, port)}")
        yield clients
    finally:
        for c in clients:
            c.close()
