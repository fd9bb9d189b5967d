"""Balanced workers are recycled after N requests without dropping one, and vanished clients are counted closed."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from servers import client_threads, connections_per_worker, serve_process, spread_clients, wait_for, workers


@pytest.fixture
def recycled_server(demo_models_dir: Path) -> Iterator[tuple[str, int, psutil.Process]]:
    """``legalsearch serve --workers 2`` whose workers retire after 40 requests each."""
    with serve_process(demo_models_dir, "--workers", "2", LEGALSEARCH_LOG_LEVEL="warning",
                       LEGALSEARCH_WORKER_MAX_REQUESTS="40") as (base, port, proc):
        yield base, port, psutil.Process(proc.pid)


def test_workers_are_recycled_without_dropping_requests(recycled_server, demo_model) -> None:  # type: ignore[no-untyped-def]
    base, _, main = recycled_server
    seed = demo_model.index.ids[0]
    first = {p.pid for p in workers(main)}
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

    with client_threads(client, 3, stop):
        # the first workers pass 40 requests, ask to retire, get replaced and exit, while the clients go on
        wait_for(lambda: len(first & {p.pid for p in workers(main)}) < 2, 300, "a first worker to be replaced")
        at_replacement = answered[0]
        time.sleep(1.0)
    assert failures == []
    assert answered[0] > at_replacement  # the replacements answer
    assert len(workers(main)) >= 2


def test_clients_that_vanish_mid_request_are_counted_closed(recycled_server) -> None:  # type: ignore[no-untyped-def]
    base, port, main = recycled_server
    for _ in range(6):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"pos")
        # SO_LINGER 0: close with a reset, as a client that crashes or loses its network does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    wait_for(lambda: sum(connections_per_worker(main, port).values()) == 0, 10, "the vanished connections to close")
    # were they still counted as open, every new connection would go to one worker
    with spread_clients(base, main, port):
        pass
