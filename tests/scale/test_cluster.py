"""The local cluster: it starts, runs tasks on both nodes, and every socket of it is on 127.0.0.0/8."""

from __future__ import annotations

import time
from typing import Any

import psutil

from legalsearch.scale.cluster import SocketInfo, cluster_sockets, off_loopback


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

    @ray.remote(num_cpus=1)
    def where(_i: int) -> str:
        time.sleep(0.2)
        return str(ray.get_runtime_context().get_node_id())

    # two tasks of one CPU each at once on a cluster of 2 x 1 CPU: one per node
    assert len(set(ray.get([where.remote(i) for i in range(2)]))) == 2


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

