"""The Ray Serve application of a K = 2 sharded model on the loopback cluster: over HTTP on 127.0.0.1 it answers
the dumped requests as the single-node app does in-process, every socket stays on 127.0.0.0/8, and killing a shard
replica under a bounded request loop loses no request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_sharded import different, replay

from legalsearch.scale.cluster import LOOPBACK, cluster_sockets, off_loopback

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "corpora" / "demo"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(loopback_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A sharded demo model (K = 2) served by Ray Serve on 127.0.0.1: two replicas per shard, one ingress."""
    from ray import serve

    from legalsearch.config import load_config
    from legalsearch.scale import serve as served_app
    from legalsearch.scale.build import train_sharded

    models = tmp_path_factory.mktemp("served-models")
    train_sharded([DEMO], load_config(ROOT / "configs" / "demo.toml"), models, 2, extra_text=[DEMO / "extra"],
                  cache_dir=tmp_path_factory.mktemp("served-cache"))
    port = _free_port()
    started = time.perf_counter()
    served_app.run(models, host=LOOPBACK, port=port, replicas=2)
    url = f"http://{LOOPBACK}:{port}"
    with httpx.Client(base_url=url, timeout=60) as client:
        deadline = time.monotonic() + 300
        while True:
            try:
                if client.get("/livez").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the Serve application did not answer /livez within 300 s")
            time.sleep(0.5)
        ready_s = time.perf_counter() - started
        print(f"Serve application up in {ready_s:.1f} s")
        try:
            yield {"client": client, "models": models, "url": url, "port": port, "ready_s": ready_s}
        finally:
            serve.shutdown()


def test_the_serve_app_answers_as_one_node(served: dict[str, Any], demo_models_dir: Path) -> None:
    from bench.dump import in_process_client, served_version

    with in_process_client(demo_models_dir) as client:
        one = replay(client, served_version(client))
    many = replay(served["client"], served_version(served["client"]))
    wrong = different(one, many)
    assert not wrong, f"{len(wrong)} of {len(one)} answers differ:\n" + "\n".join(wrong[:15])


def test_serve_sockets_are_loopback(served: dict[str, Any], loopback_cluster: Any) -> None:
    seen = cluster_sockets(loopback_cluster.node_processes())
    assert any("ServeReplica" in s.process for s in seen), "no Serve replica among the cluster's processes"
    assert off_loopback(seen) == []
    assert any(s.local == f"{LOOPBACK}:{served['port']}" and s.status == "LISTEN" for s in seen), \
        "Serve's HTTP proxy does not listen on 127.0.0.1"


def test_killing_a_shard_replica_loses_no_request(served: dict[str, Any]) -> None:
    import ray

    from legalsearch.scale.serve import shard_replicas

    client: httpx.Client = served["client"]
    queries = ["Eigenbedarf Kündigung", "Kaution Rückzahlung", "Mangel Minderung", "Kündigungsfrist Arbeitnehmer"]
    expected = {q: client.get("/search", params={"q": q, "k": 5}).json() for q in queries}
    replicas = shard_replicas(0)
    assert len(replicas) == 2, replicas
    answers: list[tuple[str, int, Any]] = []
    failures: list[str] = []

    def loop() -> None:
        with httpx.Client(base_url=served["url"], timeout=60) as own:
            for i in range(48):
                q = queries[i % len(queries)]
                try:
                    resp = own.get("/search", params={"q": q, "k": 5})
                    answers.append((q, resp.status_code, resp.json()))
                except httpx.HTTPError as exc:  # a lost request
                    failures.append(f"{q}: {exc!r}")

    worker = threading.Thread(target=loop)
    worker.start()
    while len(answers) < 6 and worker.is_alive():
        time.sleep(0.05)
    ray.kill(replicas[0], no_restart=True)
    worker.join(timeout=600)
    assert not worker.is_alive()
    assert not failures, failures
    assert len(answers) == 48
    bad = [(q, status) for q, status, body in answers if status != 200 or body["results"] != expected[q]["results"]]
    assert not bad, bad
