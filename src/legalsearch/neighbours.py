"""Stage: every document's nearest documents, searched once at training time.

Entry point: ``precompute_neighbours`` asks the FAISS index for each document's ``width`` nearest rows, with the
query a one-document recommendation builds (``seed_query``). ``/recommend`` for one seed document, the call a
product backend makes for every page a lawyer opens, then reads its candidates from this table instead of
searching the HNSW graph: the search was a third of that request's ranking time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from legalsearch.errors import ArtifactError
from legalsearch.index import IndexHits, LoadedIndex, search_index
from legalsearch.model import load_arrays

log = logging.getLogger(__name__)

FILES = {"rows": "neighbours_rows.npy", "scores": "neighbours_scores.npy"}
#: the fused related documents of every document (``relatedness``), the same layout
RELATED_FILES = {"rows": "related_rows.npy", "scores": "related_scores.npy"}
#: documents per FAISS call while precomputing: large enough for FAISS to use every thread, small enough to
#: keep the query block a few MB
BATCH = 4096


def seed_query(docvectors: np.ndarray, positive: Sequence[int], negative: Sequence[int] = ()) -> np.ndarray:
    """The unit query vector of seed documents: their mean, minus half the mean of ``negative``; zeros when
    the seeds have no vector. Shared by recommend and the precomputation, so both ask FAISS the same question."""
    if len(positive) == 1:
        # the mean of one row is that row, exactly; np.mean's overhead was a few percent of a request
        query = np.array(docvectors[positive[0]], dtype=np.float32)
    else:
        query = np.asarray(docvectors[list(positive)], dtype=np.float32).mean(axis=0)
    if negative:
        query = query - 0.5 * np.asarray(docvectors[list(negative)], dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(query))
    if norm == 0:
        return np.zeros_like(query)
    return np.asarray(query / norm, dtype=np.float32)


@dataclass(frozen=True)
class NeighbourTable:
    """Row i: document i's nearest rows (itself usually first), best first, -1 padded; and their scores."""

    rows: np.ndarray
    scores: np.ndarray

    @property
    def width(self) -> int:
        """Neighbours kept per document."""
        return int(self.rows.shape[1])

    def hits(self, row: int, k: int) -> IndexHits:
        """The first ``k`` (at most ``width``) neighbours of ``row`` as ``search_index`` returns them."""
        return IndexHits(
            scores=np.asarray(self.scores[row, :k], dtype=np.float32)[None, :],
            rows=np.asarray(self.rows[row, :k], dtype=np.int64)[None, :],
        )

    def save(self, folder: Path, files: dict[str, str] = FILES) -> list[Path]:
        """Write both arrays as .npy files."""
        np.save(folder / files["rows"], self.rows)
        np.save(folder / files["scores"], self.scores)
        return [folder / files["rows"], folder / files["scores"]]

    @classmethod
    def load(cls, folder: Path, n_docs: int, mmap: bool = True, files: dict[str, str] = FILES) -> (
        NeighbourTable | None
    ):
        """The table of a model folder, memory-mapped; None for a model trained before it existed."""
        if not (folder / files["rows"]).exists():
            return None
        arrays = load_arrays(folder, files, "neighbour table", mmap)
        rows, scores = arrays["rows"], arrays["scores"]
        if rows.ndim != 2 or rows.shape != scores.shape or rows.shape[0] != n_docs:
            raise ArtifactError(
                f"neighbour table in {folder} has shape {rows.shape} / {scores.shape}, expected ({n_docs}, k)"
            )
        return cls(rows, scores)


def precompute_neighbours(index: LoadedIndex, docvectors: np.ndarray, width: int) -> NeighbourTable:
    """Each document's ``width`` nearest rows by the index, asked with the document's own ``seed_query``."""
    n = int(docvectors.shape[0])
    width = min(width, n)
    rows = np.full((n, width), -1, dtype=np.int32)
    scores = np.full((n, width), -np.inf, dtype=np.float32)
    for lo in range(0, n, BATCH):
        hi = min(n, lo + BATCH)
        queries = np.stack([seed_query(docvectors, [r]) for r in range(lo, hi)])
        hits = search_index(index, queries, width)
        rows[lo:hi] = hits.rows
        scores[lo:hi] = hits.scores
    # a document without a vector has no neighbours: recommend answers it with an error, never from here
    empty = ~np.any(np.asarray(docvectors, dtype=np.float32) != 0, axis=1)
    rows[empty] = -1
    scores[empty] = -np.inf
    log.info("neighbours: %d documents x %d", n, width)
    return NeighbourTable(rows, scores)
