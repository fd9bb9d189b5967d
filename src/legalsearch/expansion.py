"""Stage: query expansion neighbours, each word's nearest corpus keywords in the word2vec space.

Entry point: ``build_expansions`` computes, at training time, the neighbours of the most frequent words (one
matrix product per block of words); ``ExpansionTable`` answers a query's words from that table and computes a
rarer word's neighbours on first use, memoised. On this machine a 40-word question's expansion cost ~20-40 ms as
a matrix product per request, more than everything else in a search together; from the table it is a lookup.
By default the table covers every word: with the 30,000 most frequent only, a 40-word lay question still brought
1.6 words beyond them on average, and a batch of new ones cost ~6.5 ms (the memo hid that from benchmarks that repeat
their questions).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from legalsearch.errors import ArtifactError
from legalsearch.keywords import KeywordModel
from legalsearch.model import load_array

log = logging.getLogger(__name__)

ROWS_FILE = "expansion_rows.npy"
SIMS_FILE = "expansion_sims.npy"
#: expansion candidates need this many documents: rarer terms are more often noise than synonyms
EXPANSION_MIN_DF = 5
#: words per matrix product when the table is built (512 x 70k float32 similarities: ~150 MB)
BLOCK = 512
#: columns of a block's similarities sampled for the top-list threshold (see ``_at_least_top``)
SAMPLE_COLUMNS = 4096
#: rarer words computed at query time are memoised up to this many; the memo then starts afresh
MEMO_LIMIT = 100_000


@dataclass(frozen=True)
class Neighbours:
    """The nearest expansion candidates of one word, best first (ties to the lower word row)."""

    rows: np.ndarray
    similarities: np.ndarray


def expansion_candidates(kv: KeyedVectors, keyword_model: KeywordModel) -> np.ndarray:
    """Word-vector rows (ascending) of the keywords that may expand a query: in enough documents and embedded."""
    index = kv.key_to_index
    return np.asarray(
        sorted(index[t] for t, df in zip(keyword_model.vocabulary, keyword_model.df.tolist(), strict=True)
               if df >= EXPANSION_MIN_DF and t in index),
        dtype=np.int64,
    )


def nearest_candidates(
    queries: np.ndarray, candidates: np.ndarray, candidate_vectors: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each query vector, the ``width`` best candidates by dot product: (word rows, similarities).

    Order is similarity descending, then word row ascending, so that the table and the on-the-fly path give
    the same neighbours. Fewer candidates than ``width`` are padded with row -1.
    """
    n = queries.shape[0]
    rows = np.full((n, width), -1, dtype=np.int32)
    sims = np.zeros((n, width), dtype=np.float32)
    want = min(width, candidates.size)
    if want == 0 or n == 0:
        return rows, sims
    scores = queries @ candidate_vectors.T
    line, col = _at_least_top(scores, want)
    value = scores[line, col]
    # one sort for the whole block: by query line, then similarity descending, then word row ascending
    order = np.lexsort((candidates[col], -value, line))
    line, col, value = line[order], col[order], value[order]
    starts = np.searchsorted(line, np.arange(n))
    rank = np.arange(line.size) - starts[line]
    keep = rank < want
    rows[line[keep], rank[keep]] = candidates[col[keep]]
    sims[line[keep], rank[keep]] = value[keep]
    return rows, sims


def _at_least_top(scores: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
    """(line, column) of every score at or above a threshold that keeps at least each line's ``want`` best.

    The threshold is the ``want``-th best of a strided sample of the columns: a subset's ``want``-th best is
    never above the whole line's, so nothing of the top list is lost, and about ``want / sample share`` entries
    per line survive. An argpartition over all columns cost ~6x the matrix product; this costs one comparison.
    """
    columns = scores.shape[1]
    stride = max(1, columns // SAMPLE_COLUMNS)
    sample = scores[:, ::stride]
    if sample.shape[1] <= want:
        line, col = np.nonzero(np.ones_like(scores, dtype=bool))
    else:
        threshold = -np.partition(-sample, want - 1, axis=1)[:, want - 1]
        # flat positions, then (line, column): a 2-D nonzero cost about three times as much
        line, col = np.divmod(np.flatnonzero(scores >= threshold[:, None]), columns)
    return line, col


def build_expansions(
    kv: KeyedVectors, keyword_model: KeywordModel, n_words: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour table of the ``n_words`` most frequent words (gensim orders words by frequency; 0: every word).

    Row i of both arrays belongs to word-vector row i. ``width`` is the number of neighbours kept per word: the
    expansion terms per query word plus one, since a word is usually its own nearest neighbour.
    """
    candidates = expansion_candidates(kv, keyword_model)
    cand_vectors = np.ascontiguousarray(kv.vectors[candidates], dtype=np.float32)
    n = len(kv) if n_words <= 0 else min(n_words, len(kv))
    rows = np.full((n, width), -1, dtype=np.int32)
    sims = np.zeros((n, width), dtype=np.float32)
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        block = np.ascontiguousarray(kv.vectors[lo:hi], dtype=np.float32)
        rows[lo:hi], sims[lo:hi] = nearest_candidates(block, candidates, cand_vectors, width)
    log.info("expansion table: %d words x %d neighbours among %d candidates", n, width, candidates.size)
    return rows, sims


def save_expansions(rows: np.ndarray, sims: np.ndarray, folder: Path) -> None:
    """Write the table as two .npy files."""
    np.save(folder / ROWS_FILE, rows)
    np.save(folder / SIMS_FILE, sims)


class ExpansionTable:
    """Neighbours per word: from the training-time table when there is one, else computed and memoised."""

    def __init__(self, kv: KeyedVectors, keyword_model: KeywordModel, width: int,
                 rows: np.ndarray | None = None, sims: np.ndarray | None = None) -> None:
        self._kv = kv
        self._keyword_model = keyword_model
        self.width = width
        self._rows = rows
        self._sims = sims
        self._candidates: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._memo: dict[int, Neighbours] = {}

    @classmethod
    def load(cls, folder: Path, kv: KeyedVectors, keyword_model: KeywordModel, width: int,
             mmap: bool = True) -> ExpansionTable:
        """The table of a model folder; a model trained without one computes every word on first use."""
        if not (folder / ROWS_FILE).exists():
            return cls(kv, keyword_model, width)
        try:
            rows = load_array(folder / ROWS_FILE, mmap)
            sims = load_array(folder / SIMS_FILE, mmap)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"expansion table in {folder} is unreadable: {exc}") from exc
        if rows.shape != sims.shape or rows.ndim != 2 or rows.shape[0] > len(kv):
            raise ArtifactError(f"expansion table in {folder} does not match the word vectors: {rows.shape}")
        if rows.size and int(rows.max()) >= len(kv):
            raise ArtifactError(f"expansion table in {folder} names word rows beyond the word vectors")
        if rows.shape[1] < width:
            log.warning("expansion table in %s keeps %d neighbours, %d are asked for: computing them per word",
                        folder, rows.shape[1], width)
            return cls(kv, keyword_model, width)
        # a wider table's first `width` columns are exactly the narrower top list (same total order)
        return cls(kv, keyword_model, width, rows[:, :width], sims[:, :width])

    @property
    def precomputed(self) -> int:
        """How many words the training-time table covers."""
        return 0 if self._rows is None else int(self._rows.shape[0])

    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """Candidate word rows and their vectors as one contiguous array (built once, on first need)."""
        with self._lock:
            if self._candidates is None:
                rows = expansion_candidates(self._kv, self._keyword_model)
                self._candidates = (rows, np.ascontiguousarray(self._kv.vectors[rows], dtype=np.float32))
            return self._candidates

    def neighbours(self, word_rows: list[int]) -> list[Neighbours]:
        """Neighbours of each word-vector row, in the order given."""
        out: list[Neighbours | None] = [None] * len(word_rows)
        missing: list[int] = []
        for i, row in enumerate(word_rows):
            if self._rows is not None and row < self._rows.shape[0]:
                out[i] = Neighbours(self._rows[row], self._sims[row])  # type: ignore[index]
            else:
                hit = self._memo.get(row)
                if hit is None:
                    missing.append(i)
                else:
                    out[i] = hit
        if missing:
            candidates, cand_vectors = self.candidates()
            queries = np.asarray(self._kv.vectors[[word_rows[i] for i in missing]], dtype=np.float32)
            rows, sims = nearest_candidates(queries, candidates, cand_vectors, self.width)
            if len(self._memo) + len(missing) > MEMO_LIMIT:
                self._memo = {}
            for j, i in enumerate(missing):
                found = Neighbours(rows[j], sims[j])
                self._memo[word_rows[i]] = found
                out[i] = found
        return [n for n in out if n is not None]
