"""End to end: a real uvicorn process, concurrent HTTP requests, a model swap and a refused damaged model."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api_helpers import copy_version, damage, point_current
from servers import client_threads, uvicorn_server


@pytest.fixture
def server(models_copy: Path) -> Iterator[tuple[str, Path]]:
    """A uvicorn subprocess serving a private copy of the demo models folder, watching it every 0.2 s."""
    with uvicorn_server(models_copy, LEGALSEARCH_WATCH_INTERVAL_S="0.2") as base:
        yield base, models_copy


@dataclass(frozen=True)
class Seen:
    """One answer on the test's logical clock: ticks taken just before the request went out and just after its
    answer came back, and the model version the answer names."""

    sent: int
    answered: int
    model: str


def test_swap_under_load_and_refused_damaged_model(server: tuple[str, Path], demo_model) -> None:  # type: ignore[no-untyped-def]
    """Under load, ``current`` moves to v2: every answer names one model, and the versions never go back.

    No wall-clock windows: a shared counter orders the events. An answer A happened before a request B when A's
    ``answered`` tick is below B's ``sent`` tick; then B's version is A's or newer. In particular every request
    sent after an answer from v2 (or after /readyz reported v2) is answered by v2.
    """
    base, models = server
    old = demo_model.version
    seed = demo_model.index.ids[0]
    failures: list[str] = []
    seen: list[Seen] = []
    stop = threading.Event()
    lock = threading.Lock()
    clock = itertools.count()

    def tick() -> int:
        with lock:
            return next(clock)

    def hammer(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=20) as http:
            while not stop.is_set():
                sent = tick()
                if worker % 2:
                    r = http.post("/recommend", json={"positive": [seed], "k": 5})
                else:
                    r = http.get("/search", params={"q": "Kündigung Miete", "k": 5})
                answered = tick()
                if r.status_code != 200:
                    failures.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                model = r.json().get("model")
                if model not in (old, "v2"):
                    failures.append(f"answer without one known model: {r.text[:200]}")
                    continue
                with lock:
                    seen.append(Seen(sent, answered, model))

    def answered_since(mark: int) -> int:
        with lock:
            return sum(1 for s in seen if s.sent > mark)

    with client_threads(hammer, 4, stop):
        deadline = time.monotonic() + 30
        while answered_since(-1) < 20:  # load before the swap
            assert time.monotonic() < deadline and not failures, failures[:3]
            time.sleep(0.05)
        copy_version(models, "v2")
        point_current(models, "v2")
        while httpx.get(f"{base}/readyz").json()["model"] != "v2":
            assert time.monotonic() < deadline + 20, "the watcher did not pick up the new model"
            time.sleep(0.1)
        ready = tick()  # /readyz said v2 before this tick
        while answered_since(ready) < 20:  # load after the swap
            assert time.monotonic() < deadline + 40 and not failures, failures[:3]
            time.sleep(0.05)

    assert failures == []
    assert {s.model for s in seen} == {old, "v2"}
    after_ready = [s for s in seen if s.sent > ready]
    assert after_ready and {s.model for s in after_ready} == {"v2"}
    # versions only move forward along the clock: once an answer came from v2, every request sent later got v2
    first_new = min(s.answered for s in seen if s.model == "v2")
    assert all(s.model == "v2" for s in seen if s.sent > first_new)

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
