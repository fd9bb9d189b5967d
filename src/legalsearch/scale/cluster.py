"""A Ray cluster for the build and the service: started on this machine bound to 127.0.0.1, or an existing one.

``start_local_cluster`` uses ``ray.cluster_utils.Cluster`` (never ``ray start``, which binds its daemons to the
machine's network address): every node gets ``node_ip_address=127.0.0.1``, the dashboard is off, usage stats are
off, and the ports of each node's agents are chosen on 127.0.0.1 beforehand. ``listening_sockets`` lists what the
cluster's processes listen on or connect to, so that a test can assert that all of it is loopback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import psutil

from legalsearch.errors import ConfigError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: what ``--ray local`` means: a cluster started here for the run, stopped at its end
LOCAL = "local"
INSTALL_HINT = "install the scale extra: pip install 'legalsearch[scale]' (or make install-scale)"

#: set in every process of a local cluster (``RAY_ENVIRONMENT``): everything binds 127.0.0.1
LOOPBACK_ONLY = "LEGALSEARCH_RAY_LOOPBACK_ONLY"
#: settings for every Ray process of a local cluster (inherited through the environment)
RAY_ENVIRONMENT = {
    # Ray resolves "127.0.0.1" in an address, and a node without an address of its own, to the address the
    # machine routes to the internet from ("node_ip_address_from_perspective"), except where Ray clusters are
    # switched off: then to 127.0.0.1. The switch only gates `ray start` and that lookup (ray_constants).
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # the raylet waits this long for its node's dashboard agent, whose imports take tens of seconds on a loaded
    # machine (the default, 15 s, stops the node)
    "RAY_agent_register_timeout_ms": "600000",
    # a worker process's imports take minutes on a loaded machine; the default (60 s) gives up on it
    "RAY_worker_register_timeout_seconds": "600",
    # the dashboard is off, yet its head process starts (for usage stats, switched off) and a node waits up to
    # 60 s for it to announce a URL it does not need
    "RAY_DASHBOARD_STARTUP_TIMEOUT_S": "1",
    # no prompt to upload anything, no log deduplication across nodes (tests read the logs)
    "RAY_DEDUP_LOGS": "0",
    # read by legalsearch.scale.serve in each replica: bind Serve's inter-deployment gRPC server to 127.0.0.1
    LOOPBACK_ONLY: "1",
}


def require_ray() -> ModuleType:
    """The ``ray`` module, or ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


def ray_available() -> bool:
    """Whether the scale extra is installed (ray with its data and serve parts)."""
    try:
        import ray
        import ray.data
        import ray.serve  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


#: the ports a node's agents announce in files the raylet waits for (``ray._raylet.*_PORT_NAME``)
_AGENT_PORTS = {
    "metrics_agent_port": "METRICS_AGENT_PORT_NAME",
    "metrics_export_port": "METRICS_EXPORT_PORT_NAME",
    "dashboard_agent_listen_port": "DASHBOARD_AGENT_LISTEN_PORT_NAME",
    "runtime_env_agent_port": "RUNTIME_ENV_AGENT_PORT_NAME",
}


def node_args(num_cpus: int, object_store_mb: int, head: bool) -> dict[str, Any]:
    """``Cluster.add_node`` arguments of one node bound to 127.0.0.1, with its id and its agents' ports chosen
    here (``_announce_ports`` writes them where the raylet looks)."""
    args: dict[str, Any] = {
        "env_vars": {"RAY_OVERRIDE_NODE_ID_FOR_TESTING": secrets.token_hex(28)},
        "node_ip_address": LOOPBACK,
        "num_cpus": num_cpus,
        "num_gpus": 0,
        "object_store_memory": object_store_mb << 20,
        "metrics_agent_port": _free_port(),
        "metrics_export_port": _free_port(),
        "dashboard_agent_listen_port": _free_port(),
        "runtime_env_agent_port": _free_port(),
    }
    if head:
        args.update(include_dashboard=False, dashboard_host=LOOPBACK,
                    session_name=f"session_legalsearch_{time.strftime('%Y-%m-%d_%H-%M-%S')}_{os.getpid()}",
                    temp_dir=_temp_dir())
    return args


def _temp_dir() -> str:
    import ray._common.utils

    return str(ray._common.utils.get_default_ray_temp_dir())


def _announce_ports(session_dir: str, args: dict[str, Any]) -> None:
    """Write the port files of a node's agents before it starts, with the ports they will bind.

    The raylet waits a fixed 15 s for the dashboard agent to write them and stops the node when it has not; on a
    loaded machine the agent's imports alone take longer. The agent, given the same ports, binds them and writes
    the same files when it is up; until then requests to it are retried by Ray."""
    import ray._raylet as raylet

    os.makedirs(session_dir, exist_ok=True)
    node_id = args["env_vars"]["RAY_OVERRIDE_NODE_ID_FOR_TESTING"]
    for arg, name in _AGENT_PORTS.items():
        # a function of the compiled module that its type stub does not list
        raylet.persist_port(session_dir, node_id, getattr(raylet, name), int(args[arg]))  # type: ignore[attr-defined]


@dataclass
class LocalCluster:
    """A cluster started by this process: its nodes and the address a driver connects to."""

    cluster: Any
    address: str
    nodes: int
    started_s: float
    connected: bool = False
    _stopped: bool = field(default=False, repr=False)

    def node_processes(self) -> list[psutil.Process]:
        """Every process of the cluster's nodes (daemons, agents, workers), as far as they still run."""
        roots: list[int] = []
        for node in [self.cluster.head_node, *self.cluster.worker_nodes]:
            if node is None:
                continue
            for infos in node.all_processes.values():
                roots.extend(info.process.pid for info in infos if info.process is not None)
        seen: dict[int, psutil.Process] = {}
        for pid in roots:
            try:
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    seen[p.pid] = p
            except psutil.Error:
                continue
        return list(seen.values())

    def stop(self) -> None:
        """Disconnect this driver and stop every node (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        ray = require_ray()
        if self.connected:
            with contextlib.suppress(Exception):
                ray.shutdown()
        self.cluster.shutdown()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _set_environment() -> None:
    for key, value in RAY_ENVIRONMENT.items():
        os.environ[key] = value
    # read once when ray is imported: this process may have imported it before
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False
    constants.RAY_DASHBOARD_STARTUP_TIMEOUT_S = 1
    # a driver started here must not wander to another cluster named by the environment
    os.environ.pop("RAY_ADDRESS", None)


def start_local_cluster(nodes: int = 2, cpus_per_node: int = 1, object_store_mb: int = 80, connect: bool = True,
                        namespace: str = "legalsearch") -> LocalCluster:
    """Start ``nodes`` Ray nodes on this machine, every one bound to 127.0.0.1, and connect this process."""
    if nodes < 1:
        raise ConfigError(f"a cluster needs at least one node, got {nodes}")
    require_ray()
    _set_environment()
    import ray
    from ray.cluster_utils import Cluster

    started = time.perf_counter()
    head = node_args(cpus_per_node, object_store_mb, head=True)
    session_dir = os.path.join(head["temp_dir"], head["session_name"])
    _announce_ports(session_dir, head)
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        for _ in range(nodes - 1):
            worker = node_args(cpus_per_node, object_store_mb, head=False)
            _announce_ports(session_dir, worker)
            cluster.add_node(**worker)
        cluster.wait_for_nodes()
        local = LocalCluster(cluster, cluster.address, nodes, 0.0)
        if connect:
            ray.init(address=cluster.address, _node_ip_address=LOOPBACK, namespace=namespace, log_to_driver=False)
            local.connected = True
    except BaseException:
        with contextlib.suppress(Exception):
            ray.shutdown()
        cluster.shutdown()
        raise
    local.started_s = time.perf_counter() - started
    log.info("local Ray cluster: %d node(s) on %s in %.1f s", nodes, LOOPBACK, local.started_s)
    return local


def connect(address: str, namespace: str = "legalsearch") -> None:
    """Connect this process to an existing cluster (``--ray ADDRESS``, e.g. ``10.0.0.5:6379`` or ``auto``)."""
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    host = address.rsplit(":", 1)[0]
    kwargs: dict[str, Any] = {"_node_ip_address": LOOPBACK} if host.startswith("127.") else {}
    ray.init(address=address, namespace=namespace, log_to_driver=False, **kwargs)


@contextlib.contextmanager
def ray_session(address: str, nodes: int = 2) -> Iterator[LocalCluster | None]:
    """``--ray ADDRESS|local``: a local loopback cluster for the block (stopped after it), or a connection to
    ``address`` (disconnected after it). Yields the local cluster, or None for an existing one."""
    if address == LOCAL:
        local = start_local_cluster(nodes=nodes)
        try:
            yield local
        finally:
            local.stop()
        return
    connect(address)
    try:
        yield None
    finally:
        require_ray().shutdown()


@dataclass(frozen=True)
class SocketInfo:
    """One inet socket of a cluster process."""

    pid: int
    process: str
    status: str
    local: str
    remote: str


def _is_loopback(host: str) -> bool:
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


def cluster_sockets(processes: list[psutil.Process]) -> list[SocketInfo]:
    """The inet sockets of ``processes`` (TCP and UDP, listening or connected)."""
    found: list[SocketInfo] = []
    for proc in processes:
        try:
            name = proc.name()
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            local = f"{c.laddr.ip}:{c.laddr.port}" if c.laddr else ""
            remote = f"{c.raddr.ip}:{c.raddr.port}" if c.raddr else ""
            found.append(SocketInfo(proc.pid, name, str(c.status), local, remote))
    return found


def off_loopback(sockets: list[SocketInfo]) -> list[SocketInfo]:
    """The sockets bound or connected outside 127.0.0.0/8 (and ::1)."""
    bad = []
    for s in sockets:
        hosts = [s.local.rsplit(":", 1)[0]] + ([s.remote.rsplit(":", 1)[0]] if s.remote else [])
        if not all(_is_loopback(h) for h in hosts if h):
            bad.append(s)
    return bad
