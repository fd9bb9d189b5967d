"""``legalsearch serve --ray local|ADDRESS``: a sharded model as a Ray Serve application.

One deployment per shard (``shard-<k>``, ``replicas`` replicas each: a replica loads and verifies its shard's
model folder, memory-mapped) and one ingress deployment (``ingress``) that loads the front (``global/``) and
serves ``scale.app.create_sharded_app`` over handles of the shard deployments. The ingress asks every shard for
its candidates, merges and fuses them exactly as the single-node ranking does (``scale.search``), then asks the
shards that hold the page's rows for their hits.

A shard call that fails because its replica died (killed, node lost) is sent again (``ServeShard``): Serve routes
it to another replica of the shard. The calls only read, so a repeat is safe. Serve's HTTP proxy binds
``host`` (127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from legalsearch.docstore import FilterValue
from legalsearch.engine import Model
from legalsearch.errors import ArtifactError
from legalsearch.model import MANIFEST_NAME, resolve_model_dir
from legalsearch.scale.build import LAYOUT
from legalsearch.scale.cluster import LOOPBACK, LOOPBACK_ONLY, require_ray
from legalsearch.scale.search import Candidates, HitParts, LocalShard

log = logging.getLogger(__name__)


def _bind_replicas_to_loopback() -> None:
    """In a replica of a local cluster (``LOOPBACK_ONLY`` set): Serve 2.60 binds each replica's inter-deployment
    gRPC server to every interface ("[::]:0", hard-coded in ``ray.serve._private.replica``); bind it to 127.0.0.1
    instead. Replicas import this module (their deployment's class) before that server starts. On a real
    cluster the variable is unset and nothing changes (the nodes reach each other over their addresses)."""
    if os.environ.get(LOOPBACK_ONLY) != "1":
        return
    try:
        from ray.serve._private import replica
    except ImportError:
        return
    original = replica.add_port_to_grpc_server
    if getattr(original, "_legalsearch_loopback", False):
        return

    def add_port(server: Any, address: str) -> int:
        return int(original(server, f"{LOOPBACK}:0" if address == "[::]:0" else address))

    add_port._legalsearch_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port


_bind_replicas_to_loopback()

APP_NAME = "legalsearch"
#: replicas per shard deployment by default: one may die while the other answers
SHARD_REPLICAS = 2
#: how often a shard call is sent before its error reaches the request
ATTEMPTS = 6


class ShardReplica:
    """A shard deployment's replica: one shard model folder, loaded and verified against the top manifest."""

    def __init__(self, folder: str, manifest_sha256: str, offset: int) -> None:
        self.shard = LocalShard(Model.load(Path(folder), manifest_sha256=manifest_sha256), offset)

    def candidates(self, lex_terms: Mapping[int, float], counts: Mapping[int, int], qvec: np.ndarray, pool: int,
                   emb_k: int, filters: Mapping[str, FilterValue] | None, named: Sequence[int], matched: bool,
                   mode: str) -> Candidates:
        return self.shard.candidates(lex_terms, counts, qvec, pool, emb_k, filters, named, matched, mode)

    def similar(self, query: np.ndarray, fetch: int, filters: Mapping[str, FilterValue] | None,
                exclude: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return self.shard.similar(query, fetch, filters, exclude)

    def hits(self, local_rows: Sequence[int], marks: Mapping[int, str] | None,
             request_ids: Mapping[int, float]) -> list[HitParts]:
        return self.shard.hits(local_rows, marks, request_ids)


class ServeShard:
    """A shard as the front calls it (``scale.search.Shard``), over a Serve deployment handle; a call whose
    replica died is sent again, up to ``ATTEMPTS`` times."""

    #: in another process: the front calls all shards at once (``scale.search._each``)
    remote = True

    def __init__(self, handle: Any, attempts: int = ATTEMPTS) -> None:
        self.handle = handle
        self.attempts = attempts
        #: calls sent again after a replica failed (tests read it)
        self.retries = 0

    def _call(self, method: str, *args: Any) -> Any:
        import ray.exceptions
        from ray.serve.exceptions import BackPressureError

        retryable = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, BackPressureError)
        for attempt in range(self.attempts):
            try:
                return getattr(self.handle, method).remote(*args).result()
            except retryable as exc:
                if attempt + 1 == self.attempts:
                    raise
                self.retries += 1
                log.warning("shard call %s failed (%s); sending it again", method, type(exc).__name__)
                time.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise AssertionError("unreachable")

    def candidates(self, lex_terms: Mapping[int, float], counts: Mapping[int, int], qvec: np.ndarray, pool: int,
                   emb_k: int, filters: Mapping[str, FilterValue] | None, named: Sequence[int], matched: bool,
                   mode: str) -> Candidates:
        result: Candidates = self._call("candidates", dict(lex_terms), dict(counts), qvec, pool, emb_k,
                                        dict(filters) if filters else None, list(named), matched, mode)
        return result

    def similar(self, query: np.ndarray, fetch: int, filters: Mapping[str, FilterValue] | None,
                exclude: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        result: tuple[np.ndarray, np.ndarray] = self._call("similar", query, fetch,
                                                           dict(filters) if filters else None, list(exclude))
        return result

    def hits(self, local_rows: Sequence[int], marks: Mapping[int, str] | None,
             request_ids: Mapping[int, float]) -> list[HitParts]:
        result: list[HitParts] = self._call("hits", list(local_rows), dict(marks) if marks is not None else None,
                                            dict(request_ids))
        return result


class Ingress:
    """The ingress deployment: the front of the sharded version and today's routes (``scale.app``)."""

    def __init__(self, version_dir: str, models_dir: str, *shard_handles: Any) -> None:
        from legalsearch.scale.search import load_front, read_layout

        folder, manifest = read_layout(version_dir)
        self.front = load_front(folder, manifest)
        self.shards = [ServeShard(h) for h in shard_handles]
        self.models_dir = models_dir

    def __serve_build_asgi_app__(self) -> Any:
        from legalsearch.config import ServiceSettings
        from legalsearch.scale.app import create_sharded_app

        return create_sharded_app(self.front, self.shards, ServiceSettings(models_dir=Path(self.models_dir)))


def sharded_version(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The sharded version folder ``path`` names (a version folder, or a models folder's ``current`` one) and its
    top manifest, read without verifying (every replica verifies what it loads)."""
    folder = Path(path) if (Path(path) / MANIFEST_NAME).exists() else resolve_model_dir(Path(path))
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    if manifest.get("layout") != LAYOUT:
        raise ArtifactError(f"{folder} is not a sharded model (train it with --ray ... --shards K)")
    return folder, manifest


def build_application(path: str | Path, replicas: int = SHARD_REPLICAS, num_cpus: float = 0.1) -> Any:
    """The Serve application of a sharded version: ``shard-<k>`` deployments and the ``ingress``."""
    require_ray()
    from ray import serve

    folder, manifest = sharded_version(path)
    options = {"ray_actor_options": {"num_cpus": num_cpus}, "max_ongoing_requests": 16,
               "health_check_period_s": 2, "graceful_shutdown_timeout_s": 1}
    shard: Any = serve.deployment(ShardReplica)
    shards = [shard.options(name=f"shard-{k}", num_replicas=replicas, **options)
              .bind(str(folder / entry["path"]), entry["manifest_sha256"], int(entry["rows"][0]))
              for k, entry in enumerate(manifest["shards"])]
    ingress: Any = serve.deployment(serve.ingress()(Ingress))
    return ingress.options(name="ingress", num_replicas=1, **options).bind(
        str(folder), str(folder.parent), *shards)


def run(path: str | Path, host: str = LOOPBACK, port: int = 8000, replicas: int = SHARD_REPLICAS,
        num_cpus: float = 0.1) -> Any:
    """Start Serve's HTTP proxy on ``host``:``port`` and deploy the application (not blocking); returns the
    ingress's handle. The process must be connected to a cluster (``scale.cluster``)."""
    require_ray()
    from ray import serve

    serve.start(http_options={"host": host, "port": port, "location": "HeadOnly"})
    return serve.run(build_application(path, replicas, num_cpus), name=APP_NAME, route_prefix="/",
                     blocking=False)


def shard_replicas(shard: int) -> list[Any]:
    """The actor handles of a shard deployment's running replicas (tests kill one)."""
    import ray

    found = []
    for actor in ray.util.list_named_actors(all_namespaces=True):
        name = actor["name"] if isinstance(actor, dict) else actor
        namespace = actor.get("namespace") if isinstance(actor, dict) else None
        if f"#shard-{shard}#" in name:
            found.append(ray.get_actor(name, namespace=namespace or "serve"))
    return found
