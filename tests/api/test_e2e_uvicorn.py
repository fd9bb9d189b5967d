"""End to end: a real uvicorn process, concurrent HTTP requests, a model swap and a refused damaged model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import copy_version, damage, point_current

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@pytest.fixture
def server(models_copy: Path) -> Iterator[tuple[str, Path]]:
    """A uvicorn subprocess serving a private copy of the demo models folder."""
    port = _free_port()
    env = {
        **os.environ,
        "LEGALSEARCH_MODELS_DIR": str(models_copy),
        "LEGALSEARCH_WATCH_INTERVAL_S": "0.2",
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "legalsearch.api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base, models_copy
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_swap_under_load_and_refused_damaged_model(server: tuple[str, Path], demo_model) -> None:  # type: ignore[no-untyped-def]
    base, models = server
    old = demo_model.version
    seed = demo_model.index.ids[0]
    failures: list[str] = []
    seen: list[tuple[float, str]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=20) as http:
            while not stop.is_set():
                if worker % 2:
                    r = http.post("/recommend", json={"positive": [seed], "k": 5})
                else:
                    r = http.get("/search", params={"q": "Kündigung Miete", "k": 5})
                done = time.monotonic()
                if r.status_code != 200:
                    failures.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                model = r.json().get("model")
                if not isinstance(model, str):
                    failures.append(f"answer without one model: {r.text[:200]}")
                    continue
                with lock:
                    seen.append((done, model))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        copy_version(models, "v2")
        point_current(models, "v2")
        swapped_at = time.monotonic()
        deadline = swapped_at + 20
        while httpx.get(f"{base}/readyz").json()["model"] != "v2":
            assert time.monotonic() < deadline, "the watcher did not pick up the new model"
            time.sleep(0.1)
        ready_at = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    assert failures == []
    models_seen = {m for _, m in seen}
    assert models_seen == {old, "v2"}, models_seen
    late = [m for t, m in seen if t > ready_at + 0.05]
    assert late and set(late) == {"v2"}
    # once a request saw v2, no later request went back to the old model
    first_new = min(t for t, m in seen if m == "v2")
    assert all(m == "v2" for t, m in seen if t > first_new + 0.05)

    broken = copy_version(models, "v3-broken")
    damage(broken)
    point_current(models, "v3-broken")
    deadline = time.monotonic() + 20
    while True:
        ready = httpx.get(f"{base}/readyz")
        error = ready.json()["last_reload_error"]
        if error is not None:
            break
        assert time.monotonic() < deadline, "the watcher never tried the damaged model"
        time.sleep(0.1)
    assert ready.status_code == 200
    assert ready.json()["model"] == "v2" and ready.json()["current"] == "v3-broken"
    assert error["version"] == "v3-broken" and "docvectors.npy" in error["reason"]
    r = httpx.post(f"{base}/recommend", json={"positive": [seed]})
    assert r.status_code == 200 and r.json()["model"] == "v2"
    metrics = httpx.get(f"{base}/metrics").text
    assert 'legalsearch_model_info{version="v2"} 1.0' in metrics
    assert f'legalsearch_model_info{{version="{old}"}} 0.0' in metrics
