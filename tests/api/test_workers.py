"""`legalsearch serve --workers N`: the main process balances connections over real uvicorn worker processes."""

from __future__ import annotations

import contextlib
import os
import re
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
from api_helpers import copy_version, point_current, writable
from servers import connections_per_worker, free_port, serve_process, spread_clients, wait_for, workers

from legalsearch.api.workers import Balancer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def balanced_copy(models_copy: Path) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """``legalsearch serve --workers 2`` serving a private copy of the demo models folder."""
    with _serve(models_copy) as served:
        yield served


def _serve(models_dir: Path) -> contextlib.AbstractContextManager[tuple[str, int, subprocess.Popen[bytes]]]:
    return serve_process(models_dir, "--workers", "2", LEGALSEARCH_LOG_LEVEL="warning")


def test_connections_spread_evenly_and_a_dead_worker_is_replaced(  # type: ignore[no-untyped-def]
    balanced_copy: tuple[str, int, subprocess.Popen[bytes]], demo_model
) -> None:
    # a copy: the killed worker leaves its serving marker (models/.serving) behind, and the session's demo
    # models folder must stay as it was for the tests that copy it later
    base, port, proc = balanced_copy
    main = psutil.Process(proc.pid)
    # opened together, as a load generator or a backend's connection pool does: uvicorn's racing workers split
    # these unevenly (one worker takes whatever is queued when it wakes)
    with spread_clients(base, main, port) as clients:
        # every connection is served: the model answers on each of them
        seed = demo_model.index.ids[0]
        for c in clients:
            resp = c.post("/recommend", json={"positive": [seed], "k": 3})
            assert resp.status_code == 200, resp.text
            assert resp.json()["model"] == demo_model.version
    # closed connections are counted back: the next ones spread again
    wait_for(lambda: sum(connections_per_worker(main, port).values()) == 0, 10, "the connections to close")

    victim = workers(main)[0].pid
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in [p.pid for p in workers(main)] and len(workers(main)) == 2, 30,
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


def _ready(base: str) -> dict:  # type: ignore[type-arg]
    with httpx.Client(base_url=base, timeout=10) as c:
        return c.get("/readyz").json()  # type: ignore[no-any-return]


def test_one_reload_swaps_every_worker(  # type: ignore[no-untyped-def]
    balanced_copy: tuple[str, int, subprocess.Popen[bytes]], models_copy: Path, demo_model
) -> None:
    base, _, proc = balanced_copy
    pids = sorted(p.pid for p in workers(psutil.Process(proc.pid)))
    # each worker reports itself to the main process once it has loaded its model; /readyz shows them all
    wait_for(lambda: sorted(w["pid"] for w in _ready(base)["workers"]) == pids, 30, "both workers in /readyz")
    copy_version(models_copy, "v2")
    point_current(models_copy, "v2")
    r = httpx.post(f"{base}/admin/reload", timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"] is True and body["model"] == "v2" and body["pending"] == []
    assert {w["pid"]: w["model"] for w in body["workers"]} == {pid: "v2" for pid in pids}
    # two connections open at once go to different workers: both serve v2, and each /readyz says both do
    clients = [httpx.Client(base_url=base, timeout=20) for _ in range(2)]
    try:
        answered = {}
        for c in clients:
            ready = c.get("/readyz").json()
            answered[ready["worker"]] = ready["model"]
            assert {w["pid"]: w["model"] for w in ready["workers"]} == {pid: "v2" for pid in pids}
            resp = c.post("/recommend", json={"positive": [demo_model.index.ids[0]], "k": 3})
            assert resp.json()["model"] == "v2"
        assert answered == {pid: "v2" for pid in pids}
    finally:
        for c in clients:
            c.close()


def test_a_truncated_model_file_leaves_the_service_answering_from_a_good_version(  # type: ignore[no-untyped-def]
    models_copy: Path, demo_model
) -> None:
    copy_version(models_copy, "v2")
    point_current(models_copy, "v2")
    with _serve(models_copy) as (base, _, proc):
        assert _ready(base)["model"] == "v2"
        docs = writable(models_copy / "v2" / "documents.jsonl")
        os.truncate(docs, docs.stat().st_size // 3)
        last = demo_model.index.ids[-1]
        statuses: list[int] = []
        good = 0
        deadline = time.monotonic() + 120
        # reading past the new end of the file kills the workers serving v2 (SIGBUS); their replacements must
        # refuse v2 and serve the newest version that verifies
        while good < 10 and time.monotonic() < deadline:
            try:
                resp = httpx.get(f"{base}/documents/{last}", timeout=20)
            except httpx.HTTPError:
                statuses.append(0)
                time.sleep(0.2)
                continue
            statuses.append(resp.status_code)
            fine = resp.status_code == 200 and resp.json()["model"] == demo_model.version
            good = good + 1 if fine else 0
            if not fine:
                time.sleep(0.2)
        assert good == 10, f"statuses seen: {statuses[-20:]}"
        assert proc.poll() is None
        ready = _ready(base)
        assert ready["model"] == demo_model.version and ready["current"] == "v2"
        assert "documents.jsonl" in ready["fallback"] and demo_model.version in ready["fallback"]
        # the second worker may still be loading its replacement's model: it too must end on the good version
        wait_for(lambda: [w["model"] for w in _ready(base)["workers"]] == [demo_model.version] * 2, 60,
                  "both workers on the good version")


def test_a_replacement_that_dies_at_start_is_retried_with_backoff(tmp_path: Path) -> None:
    flag, log_file = tmp_path / "crash", tmp_path / "server.log"
    port = free_port()
    env = {**os.environ, "CRASH_APP_FLAG": str(flag),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests" / "api"),
                                          os.environ.get("PYTHONPATH", "")])}
    script = ("import sys; from legalsearch.api.workers import run_workers; "
              f"sys.exit(run_workers({{'app': 'crash_app:app', 'host': '127.0.0.1', 'port': {port}, "
              "'log_level': 'info'}, 2))")
    with open(log_file, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    main = psutil.Process(proc.pid)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(base, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def retries() -> list[float]:
        return [float(d) for d in re.findall(r"retrying in ([0-9.]+) s", log_file.read_text(errors="replace"))]

    try:
        wait_for(lambda: answers() and len(workers(main)) == 2, 60, "two workers")
        flag.touch()
        os.kill(workers(main)[0].pid, signal.SIGKILL)
        # every replacement dies at import; the main process keeps serving with the survivor and retries later
        wait_for(lambda: len(retries()) >= 3, 60, f"three retries, log:\n{log_file.read_text()[-2000:]}")
        assert proc.poll() is None
        delays = retries()
        assert delays[:3] == sorted(delays[:3]) and delays[2] > delays[0], delays
        assert all(answers() for _ in range(5))
        flag.unlink()
        # once the cause is gone the next retry stays up: two workers again
        wait_for(lambda: log_file.read_text().count("is taking connections") >= 3, 60, "a replacement")
        assert proc.poll() is None and len(workers(main)) == 2
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
