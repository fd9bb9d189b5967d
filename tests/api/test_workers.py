"""`legalsearch serve --workers N`: the main process balances connections over real uvicorn worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from legalsearch.api.workers import Balancer

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workers(main: psutil.Process) -> list[psutil.Process]:
    # multiprocessing also starts a resource tracker beside the workers
    out = []
    for child in main.children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


def _connections_per_worker(main: psutil.Process, port: int) -> dict[int, int]:
    counts = {}
    for child in _workers(main):
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        counts[child.pid] = sum(
            1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
    return counts


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def balanced_server(demo_models_dir: Path) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """``legalsearch serve --workers 2`` on a free loopback port, serving the demo model."""
    port = _free_port()
    env = {**os.environ, "LEGALSEARCH_WATCH_INTERVAL_S": "0", "LEGALSEARCH_LOG_LEVEL": "warning",
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "legalsearch.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2", "--models-dir", str(demo_models_dir), "--no-access-log"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"legalsearch serve exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait_for(ready, 90, "the server to be ready")
        yield base, port, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
                proc.wait(timeout=10)


def test_connections_spread_evenly_and_a_dead_worker_is_replaced(  # type: ignore[no-untyped-def]
    balanced_server: tuple[str, int, subprocess.Popen[bytes]], demo_model
) -> None:
    base, port, proc = balanced_server
    main = psutil.Process(proc.pid)
    # opened together, as a load generator or a backend's connection pool does: uvicorn's racing workers split
    # these unevenly (one worker takes whatever is queued when it wakes)
    clients = [httpx.Client(base_url=base, timeout=20) for _ in range(8)]
    try:
        for c in clients:
            assert c.get("/livez").status_code == 200
        _wait_for(lambda: sorted(_connections_per_worker(main, port).values()) == [4, 4], 10,
                  f"4 + 4 connections, saw {_connections_per_worker(main, port)}")
        # every connection is served: the model answers on each of them
        seed = demo_model.index.ids[0]
        for c in clients:
            resp = c.post("/recommend", json={"positive": [seed], "k": 3})
            assert resp.status_code == 200, resp.text
            assert resp.json()["model"] == demo_model.version
    finally:
        for c in clients:
            c.close()
    # closed connections are counted back: the next ones spread again
    _wait_for(lambda: sum(_connections_per_worker(main, port).values()) == 0, 10, "the connections to close")

    victim = _workers(main)[0].pid
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: victim not in [p.pid for p in _workers(main)] and len(_workers(main)) == 2, 30,
              "a replacement worker")

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    # the replacement loads the model before it gets connections; until then the survivor answers
    for _ in range(6):
        assert answers()

    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert not main.is_running() or main.status() == psutil.STATUS_ZOMBIE


def test_workers_that_cannot_start_stop_the_server_with_an_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    balancer = Balancer({"app": "legalsearch_no_such_module:app", "log_level": "critical"}, workers=2)
    started = time.monotonic()
    assert balancer.run(listener) == 1
    assert balancer.failure is not None and "while starting" in balancer.failure
    assert time.monotonic() - started < 60
    assert balancer.workers == []


def test_balancer_needs_two_workers() -> None:
    with pytest.raises(ValueError, match="at least two"):
        Balancer({"app": "legalsearch.api.app:create_app"}, workers=1)
