"""FAISS index over L2-normalised document vectors; inner product therefore is cosine similarity.

A model folder holds ``index.faiss`` and ``ids.txt`` (line i = the document id of FAISS row i).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np

from legalsearch.config import IndexConfig
from legalsearch.errors import ArtifactError, ConfigError, InvalidRequestError

logger = logging.getLogger(__name__)

#: FAISS's SWIG stubs know neither keyword construction of SearchParameters* nor most attributes
faiss: Any = _faiss

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.txt"
#: a sharded build's IVF-PQ index trained on the collection's sample, without vectors (``train_ivfpq``)
TRAINED_IVFPQ_FILE = "ivfpq_trained.faiss"
#: sample drawn for IVF/PQ training; fixed seed so that the same vectors give the same index
_TRAIN_SEED = 1234
_TRAIN_MAX = 100_000
#: HNSW with a selector can return fewer than k hits when the filter is very selective; below this many
#: permitted rows an exact scan over just those rows is both cheaper and complete
_EXACT_FILTER_MAX = 20_000


@dataclass(frozen=True)
class IndexHits:
    """Top-k results of a batch of queries, best first.

    ``rows`` (nq, k) int64 and ``scores`` (nq, k) float32. Where fewer than k hits exist (a filter, an
    approximate index) the row is -1 and the score -inf, always at the end of a query's line.
    """

    scores: np.ndarray
    rows: np.ndarray

    def rows_for(self, q: int = 0) -> np.ndarray:
        """The real hits' rows of query ``q`` (padding removed)."""
        r = self.rows[q]
        return r[r >= 0]

    def scores_for(self, q: int = 0) -> np.ndarray:
        """The real hits' scores of query ``q`` (padding removed)."""
        return self.scores[q][self.rows[q] >= 0]


@dataclass(frozen=True)
class LoadedIndex:
    """A FAISS index with its row -> document id mapping."""

    index: Any
    ids: tuple[str, ...]
    rows: Mapping[str, int]
    kind: str


def set_faiss_threads(n: int) -> None:
    """Number of OpenMP threads FAISS uses in this process (at least 1)."""
    faiss.omp_set_num_threads(max(1, int(n)))


def choose_index_type(n_docs: int, config: IndexConfig) -> str:
    """"flat" | "hnsw" | "ivfpq": auto is exact up to ``exact_max_docs``, HNSW above; explicit types win."""
    if config.type != "auto":
        return config.type
    return "flat" if n_docs <= config.exact_max_docs else "hnsw"


def _normalised(vectors: np.ndarray) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise InvalidRequestError(f"vectors must be a 2-d array (n, d), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.shape[1] == 0:
        raise InvalidRequestError("vectors have dimension 0")
    if not np.isfinite(arr).all():
        raise InvalidRequestError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    # zero rows (documents without known terms) stay zero: they score 0 against everything
    return np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0)


def _pq_m(d: int, requested: int) -> int:
    if requested:
        if d % requested:
            raise ConfigError(f"[index] pq_m = {requested} must divide the vector size {d}")
        return requested
    target = max(1, d // 4)
    return max(m for m in range(1, target + 1) if d % m == 0)


def ivfpq_sample_rows(n: int) -> np.ndarray | None:
    """The rows IVF/PQ trains on (sorted), drawn with the fixed seed; None: all ``n`` rows."""
    if n <= _TRAIN_MAX:
        return None
    return np.sort(np.random.default_rng(_TRAIN_SEED).choice(n, _TRAIN_MAX, replace=False))


def _train_ivfpq(sample: np.ndarray, n: int, config: IndexConfig) -> Any:
    """An empty IVF-PQ index of a collection of ``n`` rows, trained on ``sample`` (normalised)."""
    d = sample.shape[1]
    if n == 0 or len(sample) == 0:
        raise InvalidRequestError("an ivfpq index needs at least one vector to train on")
    nlist = config.ivf_nlist or int(4 * math.sqrt(n))
    nlist = max(1, min(nlist, n))
    m = _pq_m(d, config.pq_m)
    # 8-bit codes need 256 training points per sub-quantiser; small collections get fewer bits
    nbits = max(1, min(8, int(math.log2(len(sample)))))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFPQ(quantizer, d, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = _TRAIN_SEED
    index.pq.cp.seed = _TRAIN_SEED
    index.train(sample)
    index.nprobe = max(1, min(config.ivf_nprobe, nlist))
    # the quantizer is owned by the index from here on (it must outlive this function)
    index.own_fields = True
    quantizer.this.disown()
    return index


@contextmanager
def _single_threaded() -> Iterator[None]:
    """FAISS with one thread inside (IVF/PQ training, HNSW insertion); the thread count is restored after."""
    previous = faiss.omp_get_max_threads()
    set_faiss_threads(1)
    try:
        yield
    finally:
        set_faiss_threads(previous)


def train_ivfpq(vectors: np.ndarray, config: IndexConfig) -> Any:
    """The empty IVF-PQ index (coarse centroids, PQ codebooks, nprobe) that ``build_index`` trains for a
    collection of these rows: the same seeded sample (``ivfpq_sample_rows``), so ``add_to_ivfpq`` of any row
    ranges gives each range the codes the single index gives it. ``vectors`` may be memory-mapped: only the
    sample's rows are read."""
    n = int(np.shape(vectors)[0])
    rows = ivfpq_sample_rows(n)
    sample = _normalised(np.asarray(vectors if rows is None else vectors[rows]))
    with _single_threaded():
        return _train_ivfpq(sample, n, config)


def add_to_ivfpq(trained: Any, vectors: np.ndarray) -> Any:
    """A copy of the trained (empty) IVF-PQ index ``trained`` holding the rows of ``vectors`` (normalised here)."""
    if trained.ntotal:
        raise InvalidRequestError(f"the trained index already holds {trained.ntotal} vectors")
    index = faiss.clone_index(trained)
    with _single_threaded():
        index.add(_normalised(vectors))
    return index


def write_trained_ivfpq(trained: Any, folder: Path) -> None:
    """Write the trained, empty IVF-PQ index as ``folder/ivfpq_trained.faiss``."""
    try:
        faiss.write_index(trained, str(Path(folder) / TRAINED_IVFPQ_FILE))
    except RuntimeError as exc:
        raise ArtifactError(f"cannot write {Path(folder) / TRAINED_IVFPQ_FILE}: {exc}") from exc


def read_trained_ivfpq(folder: Path) -> Any:
    """The trained, empty IVF-PQ index of ``folder/ivfpq_trained.faiss``."""
    path = Path(folder) / TRAINED_IVFPQ_FILE
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    if not isinstance(index, faiss.IndexIVFPQ) or not index.is_trained or index.ntotal:
        raise ArtifactError(f"{path} is not a trained, empty IVF-PQ index")
    return index


def build_index(vectors: np.ndarray, config: IndexConfig) -> Any:
    """Build a FAISS inner-product index over the rows of ``vectors`` (normalised here if they are not).

    Deterministic for the same input: HNSW insertion runs single-threaded, IVF/PQ training uses fixed seeds.
    """
    x = _normalised(vectors)
    n, d = x.shape
    kind = choose_index_type(n, config)
    if kind == "flat":
        index: Any = faiss.IndexFlatIP(d)
        index.add(x)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
        # parallel insertion makes the graph depend on thread timing
        with _single_threaded():
            index.add(x)
    elif kind == "ivfpq":
        rows = ivfpq_sample_rows(n)
        with _single_threaded():
            index = _train_ivfpq(x if rows is None else x[rows], n, config)
            index.add(x)
    else:  # pragma: no cover - config validation rejects other values
        raise ConfigError(f"[index] type = {kind!r} is unknown")
    logger.info("built %s index: %d vectors of dimension %d", kind, n, d)
    return index


def write_index(index: Any, ids: Sequence[str], folder: Path) -> None:
    """Write ``folder/index.faiss`` and ``folder/ids.txt`` (line i = document id of row i)."""
    ids = list(ids)
    if len(ids) != index.ntotal:
        raise ArtifactError(f"index has {index.ntotal} rows but {len(ids)} ids were given")
    for doc_id in ids:
        if not doc_id or "\n" in doc_id or "\r" in doc_id:
            raise ArtifactError(f"document id {doc_id!r} is empty or contains a line break")
    if len(set(ids)) != len(ids):
        raise ArtifactError("document ids are not unique")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        faiss.write_index(index, str(folder / INDEX_FILE))
    except RuntimeError as exc:
        raise ArtifactError(f"cannot write {folder / INDEX_FILE}: {exc}") from exc
    with open(folder / IDS_FILE, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(f"{doc_id}\n" for doc_id in ids))


def _kind_of(index: Any) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivfpq"
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    return type(index).__name__


def load_index(folder: Path, mmap: bool = True) -> LoadedIndex:
    """Read ``index.faiss`` (memory-mapped where FAISS supports it) and ``ids.txt``."""
    folder = Path(folder)
    index_path, ids_path = folder / INDEX_FILE, folder / IDS_FILE
    try:
        text = ids_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read {ids_path}: {exc}") from exc
    ids = tuple(text.split("\n")[:-1]) if text else ()
    if text and not text.endswith("\n"):
        raise ArtifactError(f"{ids_path} is truncated (no final line break)")
    if not index_path.is_file():
        raise ArtifactError(f"{index_path} is missing")
    flags = [faiss.IO_FLAG_MMAP, faiss.IO_FLAG_READ_ONLY, 0] if mmap else [0]
    last_error: Exception | None = None
    raw = None
    for flag in flags:
        try:
            raw = faiss.read_index(str(index_path), flag)
            break
        except RuntimeError as exc:
            last_error = exc
            logger.debug("reading %s with flag %d failed: %s", index_path, flag, exc)
    if raw is None:
        raise ArtifactError(f"cannot read {index_path}: {last_error}")
    # read_index already returns the concrete class; a second downcast wrapper would not own the index
    index = raw
    if index.ntotal != len(ids):
        raise ArtifactError(f"{index_path} has {index.ntotal} rows but {ids_path} lists {len(ids)} ids")
    rows = {doc_id: i for i, doc_id in enumerate(ids)}
    if len(rows) != len(ids):
        raise ArtifactError(f"{ids_path} lists a document id twice")
    return LoadedIndex(index=index, ids=ids, rows=rows, kind=_kind_of(index))


def _sorted_hits(scores: np.ndarray, rows: np.ndarray, k: int) -> IndexHits:
    """Order each line by (score desc, row asc), padding (-1) last, cut to k columns."""
    rows = rows.astype(np.int64, copy=False)
    padding = rows < 0
    scores = np.where(padding, -np.inf, scores).astype(np.float32, copy=False)
    # padding rows are -1 with -inf score; key on "is padding" first so they sort after real hits; all lines
    # at once: per-line calls and fresh output arrays were a noticeable part of a recommendation
    order = np.lexsort((rows, -scores, padding), axis=-1)[:, :k]
    line = np.arange(rows.shape[0])[:, None]
    out_s, out_r = scores[line, order], rows[line, order]
    if order.shape[1] < k:
        fill = ((0, 0), (0, k - order.shape[1]))
        out_s = np.pad(out_s, fill, constant_values=-np.inf)
        out_r = np.pad(out_r, fill, constant_values=-1)
    return IndexHits(scores=out_s, rows=out_r)


def _exact_subset(loaded: LoadedIndex, x: np.ndarray, allowed: np.ndarray, k: int) -> IndexHits:
    storage = faiss.downcast_index(loaded.index.storage)
    sub = storage.reconstruct_batch(allowed)
    scores = x @ sub.T
    rows = np.broadcast_to(allowed, scores.shape)
    return _sorted_hits(scores, np.array(rows), k)


def search_index(
    loaded: LoadedIndex, queries: np.ndarray, k: int, allowed_rows: np.ndarray | None = None,
    ordered: bool = True,
) -> IndexHits:
    """The k nearest rows per query by inner product, optionally only among ``allowed_rows``.

    ``allowed_rows`` (row numbers of documents a metadata filter lets through) restricts the search
    itself, so a filter never empties a top-k that was cut before filtering. Ties go to the lower row.
    ``ordered=False`` is for callers that only want the set of rows (search's candidates): each line is then
    in the index's own order, padded with -1 rows but not sorted.
    """
    if k < 1:
        raise InvalidRequestError(f"k must be at least 1, got {k}")
    index = loaded.index
    x = np.asarray(queries, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != index.d:
        raise InvalidRequestError(f"queries must have shape (n, {index.d}), got {np.shape(queries)}")
    x = np.ascontiguousarray(x)
    nq, n = x.shape[0], index.ntotal

    params: Any = None
    bitmap: np.ndarray | None = None
    n_candidates = n
    if allowed_rows is not None:
        allowed = np.unique(np.asarray(allowed_rows, dtype=np.int64))
        if allowed.size and (allowed[0] < 0 or allowed[-1] >= n):
            raise InvalidRequestError(f"allowed_rows must lie in [0, {n}), got {allowed[0]}..{allowed[-1]}")
        n_candidates = int(allowed.size)
        if n_candidates == 0:
            return IndexHits(
                scores=np.full((nq, k), -np.inf, dtype=np.float32), rows=np.full((nq, k), -1, dtype=np.int64)
            )
        if loaded.kind == "hnsw" and n_candidates <= _EXACT_FILTER_MAX:
            return _exact_subset(loaded, x, allowed, k)
        mask = np.zeros(n, dtype=bool)
        mask[allowed] = True
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        if loaded.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(index.hnsw.efSearch, k))
        elif loaded.kind == "ivfpq":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
    elif loaded.kind == "hnsw" and index.hnsw.efSearch < k:
        params = faiss.SearchParametersHNSW(efSearch=k)

    k_search = min(k, n_candidates)
    if k_search == 0:
        return IndexHits(
            scores=np.full((nq, k), -np.inf, dtype=np.float32), rows=np.full((nq, k), -1, dtype=np.int64)
        )
    scores, rows = index.search(x, k_search, params=params)
    del bitmap  # the selector only borrowed it; keep it alive until here
    if not ordered and k_search == k:
        return IndexHits(scores=scores, rows=rows)
    return _sorted_hits(scores, rows, k)
