"""Memory suite: RSS and PSS (``/proc/<pid>/smaps_rollup``) of each uvicorn process with 1 and 2 workers after
warm-up; PSS below RSS shows the memory-mapped model being shared between workers.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.serving import models_dir_for, run_server, warm_up, workloads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessMemory:
    """Memory of one process in MB (1 MB = 2**20 bytes)."""

    pid: int
    role: str
    rss_mb: float
    pss_mb: float
    shared_mb: float
    private_mb: float


def smaps_rollup(pid: int) -> dict[str, int]:
    """Fields of ``/proc/<pid>/smaps_rollup`` in kB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name.strip()] = int(parts[0])
    return fields


def process_memory(pid: int, role: str) -> ProcessMemory:
    """RSS, PSS, shared and private memory of one process."""
    f = smaps_rollup(pid)
    mb = 1024.0
    return ProcessMemory(
        pid, role, round(f.get("Rss", 0) / mb, 1), round(f.get("Pss", 0) / mb, 1),
        round((f.get("Shared_Clean", 0) + f.get("Shared_Dirty", 0)) / mb, 1),
        round((f.get("Private_Clean", 0) + f.get("Private_Dirty", 0)) / mb, 1),
    )


def _server_processes(pid: int, workers: int) -> list[ProcessMemory]:
    main = psutil.Process(pid)
    if workers == 1:
        return [process_memory(pid, "worker (single process)")]
    out = [process_memory(pid, "supervisor")]
    for child in main.children(recursive=True):
        cmd = " ".join(child.cmdline())
        role = "resource tracker" if "resource_tracker" in cmd else "worker"
        out.append(process_memory(child.pid, role))
    return out


def run_memory(model: Path, work_dir: Path, worker_counts: tuple[int, ...] = (1, 2),
               warm_rounds: int = 3) -> dict[str, Any]:
    """The memory section of the results."""
    models_dir = models_dir_for(model, work_dir)
    from legalsearch.model import resolve_model_dir

    doc_ids = (resolve_model_dir(models_dir) / "ids.txt").read_text(encoding="utf-8").splitlines()
    loads = workloads(doc_ids)
    runs = []
    for workers in worker_counts:
        with run_server(models_dir, workers=workers) as server:
            # two connections per worker: the server spreads connections over its workers
            warm_up(server.base_url, loads, rounds=warm_rounds, connections=2 * workers)
            procs = _server_processes(server.process.pid, workers)
        worker_procs = [p for p in procs if p.role.startswith("worker")]
        runs.append({
            "workers": workers,
            "processes": [asdict(p) for p in procs],
            "worker_rss_mb_sum": round(sum(p.rss_mb for p in worker_procs), 1),
            "worker_pss_mb_sum": round(sum(p.pss_mb for p in worker_procs), 1),
        })
        log.info("memory with %d worker(s): %s", workers, runs[-1])
    return {
        "note": "RSS counts shared pages in every process; PSS divides them among the processes sharing them. "
                "Model arrays (FAISS index, word vectors, BM25 matrix, document vectors) are memory-mapped.",
        "runs": runs,
    }
