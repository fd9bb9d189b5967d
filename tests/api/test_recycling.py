"""Balanced workers are recycled after N requests without dropping one, and vanished clients are counted closed."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _workers(main: psutil.Process) -> list[psutil.Process]:
    out = []
    for child in main.children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


def _established(main: psutil.Process, port: int) -> dict[int, int]:
    counts = {}
    for child in _workers(main):
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        counts[child.pid] = sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr
                                and c.laddr.port == port)
    return counts


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def recycled_server(demo_models_dir: Path) -> Iterator[tuple[str, int, psutil.Process]]:
    """``legalsearch serve --workers 2`` whose workers retire after 40 requests each."""
    port = free_port()
    env = {**os.environ, "LEGALSEARCH_WATCH_INTERVAL_S": "0", "LEGALSEARCH_LOG_LEVEL": "warning",
           "LEGALSEARCH_WORKER_MAX_REQUESTS": "40",
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "legalsearch.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2", "--models-dir", str(demo_models_dir), "--no-access-log"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:] if proc.stdout else ""
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait_for(ready, 90, "the server to be ready")
        yield base, port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(timeout=10)


def test_workers_are_recycled_without_dropping_requests(recycled_server, demo_model) -> None:  # type: ignore[no-untyped-def]
    base, _, main = recycled_server
    seed = demo_model.index.ids[0]
    first = {p.pid for p in _workers(main)}
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()
    lock = threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            j = 0
            while not stop.is_set():
                j += 1
                try:
                    if (i + j) % 2:
                        r = http.post("/recommend", json={"positive": [seed], "k": 3})
                    else:
                        r = http.get("/search", params={"q": "Kündigung Miete", "k": 3})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                with lock:
                    answered[0] += 1
                # steady traffic rather than saturation: a replacement must get the CPU to start on 2 cores
                time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        # the first workers pass 40 requests, ask to retire, get replaced and exit, while the clients go on
        _wait_for(lambda: len(first & {p.pid for p in _workers(main)}) < 2, 300, "a first worker to be replaced")
        at_replacement = answered[0]
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    assert answered[0] > at_replacement  # the replacements answer
    assert len(_workers(main)) >= 2


def test_clients_that_vanish_mid_request_are_counted_closed(recycled_server) -> None:  # type: ignore[no-untyped-def]
    base, port, main = recycled_server
    for _ in range(6):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"pos")
        # SO_LINGER 0: close with a reset, as a client that crashes or loses its network does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    _wait_for(lambda: sum(_established(main, port).values()) == 0, 10, "the vanished connections to close")
    # were they still counted as open, every new connection would go to one worker
    clients = [httpx.Client(base_url=base, timeout=20) for _ in range(8)]
    try:
        for c in clients:
            assert c.get("/livez").status_code == 200
        _wait_for(lambda: sorted(_established(main, port).values()) == [4, 4], 10,
                  f"4 + 4 connections, saw {_established(main, port)}")
    finally:
        for c in clients:
            c.close()
