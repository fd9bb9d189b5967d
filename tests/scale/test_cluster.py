"""The local cluster: it starts, runs tasks on both nodes, and every socket of it is on 127.0.0.0/8."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from legalsearch.scale.cluster import SocketInfo, cluster_sockets, off_loopback

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "corpora" / "demo"


def test_off_loopback_flags_other_addresses() -> None:
    ok = SocketInfo(1, "raylet", "LISTEN", "127.0.0.1:4000", "")
    peer = SocketInfo(1, "raylet", "ESTABLISHED", "127.0.0.1:4001", "127.0.0.1:4000")
    wild = SocketInfo(2, "gcs_server", "LISTEN", "0.0.0.0:6379", "")
    out = SocketInfo(3, "python", "ESTABLISHED", "127.0.0.1:5000", "192.0.2.2:6379")
    six = SocketInfo(4, "python", "LISTEN", ":::8000", "")
    assert off_loopback([ok, peer, wild, out, six]) == [wild, out, six]


def test_tasks_run_on_both_nodes(loopback_cluster: Any) -> None:
    import ray

    assert loopback_cluster.started_s > 0
    print(f"cluster of {loopback_cluster.nodes} nodes started in {loopback_cluster.started_s:.1f} s")
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}

    @ray.remote(num_cpus=0)
    class Arrivals:
        def __init__(self) -> None:
            self.count = 0

        def arrive(self) -> int:
            self.count += 1
            return self.count

        def seen(self) -> int:
            return self.count

    arrivals = Arrivals.remote()

    @ray.remote(num_cpus=1)
    def where(_i: int) -> tuple[str, bool]:
        # each task holds its CPU until the other has started: both running at once on a cluster of 2 x 1 CPU is
        # one per node (a sleep instead let a busy machine run them one after the other on the same node)
        ray.get(arrivals.arrive.remote())
        deadline = time.monotonic() + 60
        while ray.get(arrivals.seen.remote()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return str(ray.get_runtime_context().get_node_id()), ray.get(arrivals.seen.remote()) >= 2

    placed = ray.get([where.remote(i) for i in range(2)])
    assert all(together for _node, together in placed), "the two tasks did not run at the same time"
    assert len({node for node, _together in placed}) == 2


def test_every_socket_is_loopback(loopback_cluster: Any) -> None:
    """Samples the sockets of every cluster process (daemons, agents, workers) and of this driver, several times:
    none may listen or connect outside 127.0.0.0/8."""
    import ray

    @ray.remote(num_cpus=1)
    def ping(i: int) -> int:
        return i

    seen: list[SocketInfo] = []
    for _ in range(3):
        ray.get([ping.remote(i) for i in range(4)])
        processes = [*loopback_cluster.node_processes(), psutil.Process()]
        seen.extend(cluster_sockets(processes))
        time.sleep(0.5)
    listening = [s for s in seen if s.status == psutil.CONN_LISTEN]
    assert len(listening) >= 4, listening  # GCS, two raylets, object managers at least
    assert off_loopback(seen) == []


def test_ray_data_preprocessing_gives_the_same_tokens(loopback_cluster: Any, tmp_path: Path) -> None:
    """The token cache entry written from Ray Data actors is byte-identical to the single-process one."""
    from legalsearch import tokencache
    from legalsearch.config import load_config
    from legalsearch.corpus import IngestReport, read_documents
    from legalsearch.scale.preprocess import ray_lines
    from legalsearch.text import Preprocessor

    config = load_config(ROOT / "configs" / "demo.toml")
    documents = list(read_documents([DEMO], config.corpus, IngestReport()))
    pre = Preprocessor(replace(config.preprocess, n_process=1, batch_size=60))
    one = tokencache.fill(tmp_path / "one", documents, [DEMO / "extra"], pre, config.corpus, snippet_head=200)
    many = tokencache.fill(tmp_path / "ray", documents, [DEMO / "extra"], pre, config.corpus,
                           snippet_head=200,
                           lines_of=lambda batches, cfg, head: ray_lines(batches, cfg, head, actors=2))
    assert one == many
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name


def test_sharded_build_on_the_cluster_answers_as_one_node(loopback_cluster: Any, tmp_path: Path,
                                                          demo_models_dir: Path) -> None:
    """``train --ray`` without its cluster start: shard tasks and Ray Data on the loopback cluster; the K = 2
    model answers the dumped requests (/search, /recommend, ...) as the single-node model does."""
    from fastapi.testclient import TestClient
    from test_sharded import different, replay

    from bench.dump import in_process_client, served_version
    from legalsearch.config import ServiceSettings, load_config
    from legalsearch.scale import search as sharded
    from legalsearch.scale.app import create_sharded_app
    from legalsearch.scale.build import ray_map, train_sharded
    from legalsearch.scale.preprocess import ray_lines

    result = train_sharded([DEMO], load_config(ROOT / "configs" / "demo.toml"), tmp_path / "models", 2,
                           executor=ray_map, lines_of=ray_lines, extra_text=[DEMO / "extra"],
                           cache_dir=tmp_path / "cache")
    assert result.made_current
    loaded = sharded.load_shards(tmp_path / "models")
    with in_process_client(demo_models_dir) as client:
        one = replay(client, served_version(client))
    app = create_sharded_app(loaded.front, loaded.shards, ServiceSettings(models_dir=tmp_path / "models"))
    with TestClient(app) as client:
        many = replay(client, loaded.front.version)
    wrong = different(one, many)
    assert not wrong, f"{len(wrong)} of {len(one)} answers differ:\n" + "\n".join(wrong[:15])
