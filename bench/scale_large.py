"""Scale suite past memory: IVF-PQ with a refine step over up to 10,000,000 synthetic document vectors, streamed.

``python -m bench.run --suite scale-large [--scale-large-sizes 1000000,10000000] [--scale-dim 200]``

The vectors never exist all at once: a seeded Gaussian mixture (``Mixture``) yields them in chunks, each chunk from
its own seed, so any chunk can be made again. One pass over the chunks adds them to the index and keeps the exact
top-10 of every query (a running top-10 over each chunk's exact inner products), so exact search never needs the
whole matrix either. The index is FAISS ``IndexRefine``: an ``IndexIVFPQ`` (inner product, a flat coarse quantizer)
whose ``k_factor`` x k candidates are re-scored by an 8-bit scalar-quantised copy of every vector (``SQ8``).

Measured per size: training and adding time, the index file's size, the process's resident memory after the build
and its peak (``getrusage``), recall@10 against exact search and per-query latency for each (nprobe, k_factor) of
the grid, single queries at one FAISS thread (wall and the thread's CPU time: CPU time is what a SIGSTOP of the
process does not inflate), and one batch of all queries at the build's thread count.
"""

from __future__ import annotations

import logging
import math
import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench import load_average, percentile
from legalsearch.index import faiss, set_faiss_threads

log = logging.getLogger(__name__)

#: the first chunk's rows train the index: the mixture draws every row independently, so they are a random sample
TRAIN_PER_LIST = 64


@dataclass(frozen=True)
class Mixture:
    """``n`` unit vectors of dimension ``d`` from a seeded Gaussian mixture, made chunk by chunk.

    ``clusters`` centres (standard normal) with log-normal weights (σ = 1: topics of very unequal size); a point is
    its centre + 0.8 x a spread in a ``latent``-dimensional random subspace + 0.1 x isotropic noise, L2-normalised
    as the model's document vectors are. Chunk ``i`` (rows ``i·chunk`` ..) comes from its own generator
    (``seed``, 1, i), the centres from (``seed``, 0), the queries from (``seed``, 2): the same chunk is made again
    the same, and queries are new points of the same mixture (none of them in the data).
    """

    n: int
    d: int
    seed: int
    clusters: int
    latent: int = 24
    chunk: int = 200_000

    @cached_property
    def _shape(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 0])
        centres = rng.standard_normal((self.clusters, self.d)).astype(np.float32)
        weights = rng.lognormal(0.0, 1.0, self.clusters)
        projection = (rng.standard_normal((self.latent, self.d)) / math.sqrt(self.latent)).astype(np.float32)
        return centres, np.cumsum(weights / weights.sum()), projection

    def _points(self, rng: np.random.Generator, m: int) -> np.ndarray:
        centres, cdf, projection = self._shape
        which = np.minimum(np.searchsorted(cdf, rng.random(m)), self.clusters - 1)
        spread = rng.standard_normal((m, self.latent), dtype=np.float32) @ projection
        block = centres[which] + 0.8 * spread + 0.1 * rng.standard_normal((m, self.d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        return np.ascontiguousarray(block, dtype=np.float32)

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk)

    def chunk_at(self, i: int) -> np.ndarray:
        """Rows ``[i·chunk, min(n, (i+1)·chunk))``."""
        lo = i * self.chunk
        return self._points(np.random.default_rng([self.seed, 1, i]), min(self.chunk, self.n - lo))

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of every chunk in order."""
        for i in range(self.n_chunks):
            yield i * self.chunk, self.chunk_at(i)

    def head(self, rows: int) -> np.ndarray:
        """The first ``rows`` rows (the training sample)."""
        parts, have = [], 0
        for _, block in self.chunks():
            if have >= rows:
                break
            parts.append(block[: rows - have])
            have += len(parts[-1])
        return np.concatenate(parts)

    def queries(self, nq: int) -> np.ndarray:
        return self._points(np.random.default_rng([self.seed, 2]), nq)


class RunningTopK:
    """The exact top-k of each query over rows seen chunk by chunk (score descending, ties to the lower row)."""

    def __init__(self, queries: np.ndarray, k: int = 10) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.k = k
        nq = len(queries)
        self.scores = np.full((nq, k), -np.inf, dtype=np.float32)
        self.rows = np.full((nq, k), -1, dtype=np.int64)

    def update(self, first_row: int, block: np.ndarray) -> None:
        flat = faiss.IndexFlatIP(block.shape[1])
        flat.add(block)
        scores, rows = flat.search(self.queries, min(self.k, len(block)))
        rows = np.where(rows >= 0, rows + first_row, -1)
        all_s = np.concatenate([self.scores, scores], axis=1)
        all_r = np.concatenate([self.rows, rows], axis=1)
        order = np.lexsort((all_r, -all_s), axis=-1)[:, : self.k]
        line = np.arange(len(all_s))[:, None]
        self.scores, self.rows = all_s[line, order], all_r[line, order]


@dataclass(frozen=True)
class IndexSpec:
    """IVF-PQ with an SQ8 refine step: ``nlist`` lists, ``m`` PQ sub-vectors of 8 bits."""

    nlist: int
    m: int
    refine: str = "SQ8"

    def make(self, d: int) -> Any:
        quantizer = faiss.IndexFlatIP(d)
        ivf = faiss.IndexIVFPQ(quantizer, d, self.nlist, self.m, 8, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = ivf.pq.cp.seed = 1234
        ivf.own_fields = True
        quantizer.this.disown()
        kinds = {"SQ8": faiss.ScalarQuantizer.QT_8bit, "fp16": faiss.ScalarQuantizer.QT_fp16}
        refine = faiss.IndexScalarQuantizer(d, kinds[self.refine], faiss.METRIC_INNER_PRODUCT)
        index = faiss.IndexRefine(ivf, refine)
        index.own_fields = index.own_refine_index = True
        ivf.this.disown()
        refine.this.disown()
        return index

    @property
    def label(self) -> str:
        return f"IVF{self.nlist},PQ{self.m}x8,Refine({self.refine})"


@dataclass
class SearchRow:
    """Recall and latency of one (nprobe, k_factor)."""

    nprobe: int
    k_factor: int
    recall_at_10: float
    p50_ms: float
    p99_ms: float
    cpu_p50_ms: float
    cpu_p99_ms: float


@dataclass
class BuildRow:
    """One index over one collection size, with its search grid."""

    n: int
    index: str
    generate_s: float
    train_s: float
    add_s: float
    truth_s: float
    disk_mb: float
    rss_after_build_mb: float
    peak_rss_mb: float
    build_threads: int
    #: CPU seconds of the process over training and over adding (wall ≫ CPU ÷ threads: stopped or starved)
    train_cpu_s: float = 0.0
    add_cpu_s: float = 0.0
    started_at: str = ""
    ended_at: str = ""
    searches: list[SearchRow] = field(default_factory=list)
    batch: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (``ru_maxrss``, KiB on Linux; it is sampled by the kernel, so at
    least the resident memory of now)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, _rss_mb())


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's exact top-10 among its 10 found rows."""
    return float(np.mean([len(set(f[:10].tolist()) & set(t[:10].tolist())) / 10
                          for f, t in zip(found, truth, strict=True)]))


def build_streamed(mix: Mixture, spec: IndexSpec, queries: np.ndarray,
                   threads: int) -> tuple[Any, BuildRow, np.ndarray]:
    """Train on the first rows, add every chunk and keep the exact top-10 in the same pass; the index, its
    figures and the exact rows (nq, 10)."""
    set_faiss_threads(threads)
    started = _now()
    gen = 0.0
    t0 = time.perf_counter()
    sample = mix.head(min(mix.n, max(TRAIN_PER_LIST * spec.nlist, 256 * 64)))
    gen += time.perf_counter() - t0
    index = spec.make(mix.d)
    t0, c0 = time.perf_counter(), time.process_time()
    index.train(sample)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    del sample
    truth = RunningTopK(queries)
    add_s = truth_s = add_cpu = 0.0
    for i in range(mix.n_chunks):
        t0 = time.perf_counter()
        block = mix.chunk_at(i)
        t1, c1 = time.perf_counter(), time.process_time()
        index.add(block)
        t2 = time.perf_counter()
        add_cpu += time.process_time() - c1
        truth.update(i * mix.chunk, block)
        t3 = time.perf_counter()
        gen, add_s, truth_s = gen + t1 - t0, add_s + t2 - t1, truth_s + t3 - t2
        del block
        if i % 10 == 9:
            log.info("scale-large n=%d: %d of %d chunks added, add %.0f s, rss %.0f MB, load %s", mix.n, i + 1,
                     mix.n_chunks, add_s, _rss_mb(), [round(x, 1) for x in load_average()])
    # the kernel's high-water mark can lag the resident size read just before it: the peak is at least this
    rss = _rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-scale-large-") as tmp:
        path = Path(tmp) / "index.faiss"
        faiss.write_index(index, str(path))
        disk_mb = path.stat().st_size / 2**20
    row = BuildRow(mix.n, spec.label, round(gen, 1), round(train_s, 1), round(add_s, 1), round(truth_s, 1),
                   round(disk_mb, 1), round(rss, 1), round(max(peak_rss_mb(), rss), 1), threads, round(train_cpu, 1),
                   round(add_cpu, 1), started, _now())
    return index, row, truth.rows


def _set_search(index: Any, nprobe: int, k_factor: int) -> None:
    faiss.downcast_index(index.base_index).nprobe = nprobe
    index.k_factor = k_factor


def search_grid(index: Any, queries: np.ndarray, truth: np.ndarray, nprobes: Sequence[int],
                k_factors: Sequence[int]) -> list[SearchRow]:
    """Recall@10 and single-query latency (one FAISS thread: wall and thread CPU ms) of each combination."""
    set_faiss_threads(1)
    out = []
    for nprobe in nprobes:
        for k_factor in k_factors:
            _set_search(index, nprobe, k_factor)
            index.search(queries[:20], 10)  # warm the pages and caches
            walls, cpus, found = [], [], []
            for q in queries:
                c0, w0 = time.thread_time(), time.perf_counter()
                _, rows = index.search(q[None, :], 10)
                walls.append((time.perf_counter() - w0) * 1000)
                cpus.append((time.thread_time() - c0) * 1000)
                found.append(rows[0])
            row = SearchRow(nprobe, k_factor, round(recall_at_10(np.asarray(found), truth), 4),
                            round(percentile(walls, 50), 3), round(percentile(walls, 99), 3),
                            round(percentile(cpus, 50), 3), round(percentile(cpus, 99), 3))
            log.info("scale-large n=%d: %s", index.ntotal, row)
            out.append(row)
    return out


def batch_search(index: Any, queries: np.ndarray, nprobe: int, k_factor: int, threads: int) -> dict[str, Any]:
    """All queries in one call at ``threads`` FAISS threads: queries per second by wall time and by CPU time."""
    set_faiss_threads(threads)
    _set_search(index, nprobe, k_factor)
    c0, w0 = time.process_time(), time.perf_counter()
    index.search(queries, 10)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"nprobe": nprobe, "k_factor": k_factor, "threads": threads, "queries": len(queries),
            "queries_per_s": round(len(queries) / wall, 1), "cpu_ms_per_query": round(cpu * 1000 / len(queries), 3)}


def choose(searches: Sequence[SearchRow], recall: float = 0.95, budget_ms: float = 10.0) -> SearchRow | None:
    """The fastest (CPU p99) combination that reaches ``recall`` within ``budget_ms``; None if none does."""
    ok = [s for s in searches if s.recall_at_10 >= recall and s.cpu_p99_ms <= budget_ms]
    return min(ok, key=lambda s: (s.cpu_p99_ms, -s.recall_at_10)) if ok else None


def default_spec(n: int, d: int) -> IndexSpec:
    """nlist: ``index.py``'s 4·√n rounded to a power of two, at most 4,096 (the 1M sweep: 4,096 lists beat 1,024
    in recall and latency; more lists cost adding time linearly: 16,384 lists at 10M would take ~4x the adding
    and ~16x the training time, ~30 min on 2 cores);
    m = d/4 (4 dimensions per 8-bit sub-vector: 50 bytes at d = 200)."""
    nlist = min(4096, 2 ** max(4, round(math.log2(4 * math.sqrt(n)))))
    m = max(x for x in range(1, max(1, d // 4) + 1) if d % x == 0)
    return IndexSpec(nlist, m)


def run_scale_large(sizes: Sequence[int] = (1_000_000, 10_000_000), d: int = 200, queries: int = 1000,
                    seed: int = 20261203, nprobes: Sequence[int] = (8, 16, 32, 64),
                    k_factors: Sequence[int] = (1, 4, 8, 16, 32), threads: int = 2,
                    specs: Sequence[IndexSpec] | None = None, chunk: int = 200_000) -> dict[str, Any]:
    """Each size (ascending: the peak RSS of a later size includes nothing freed of an earlier one) with each spec
    (default: ``default_spec``), streamed; the grid and the chosen combination per build."""
    builds = []
    for n in sorted(sizes):
        mix = Mixture(n, d, seed, clusters=max(8, int(math.sqrt(n))), chunk=chunk)
        q = mix.queries(queries)
        for spec in specs or [default_spec(n, d)]:
            load_before = [round(x, 2) for x in load_average()]
            index, row, truth = build_streamed(mix, spec, q, threads)
            row.searches = search_grid(index, q, truth, nprobes, k_factors)
            best = choose(row.searches) or max(row.searches, key=lambda s: s.recall_at_10)
            row.batch = batch_search(index, q, best.nprobe, best.k_factor, threads)
            entry = asdict(row)
            entry["chosen"] = asdict(best) if choose(row.searches) else None
            entry["load"] = {"before": load_before, "after": [round(x, 2) for x in load_average()]}
            builds.append(entry)
            log.info("scale-large n=%d %s: %s", n, spec.label, {k: v for k, v in entry.items() if k != "searches"})
            del index
    return {
        "dimensions": d, "queries": queries, "seed": seed, "build_threads": threads, "chunk": chunk,
        "data": "seeded Gaussian mixture: √n standard-normal centres with log-normal(σ=1) weights, + 0.8 × a "
                "24-dimensional random-projection spread + 0.1 × isotropic noise, L2-normalised; chunks of "
                f"{chunk:,} rows from their own seeds; queries: {queries} new points of the same mixture",
        "goal": "recall@10 >= 0.95 under 10 ms per query (single query, one FAISS thread) at <= 12 GiB resident",
        "builds": builds,
    }
