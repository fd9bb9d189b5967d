"""BM25 over the project's own German tokens (bm25s), and the fixed reference BM25 used in evaluation.

bm25s precomputes BM25(term, doc) for every posting into a sparse matrix stored column-wise (one column per
term). A query's score vector is then a weighted sum of a few columns, which is what query expansion needs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenized
from scipy import sparse

from legalsearch.config import LexicalConfig
from legalsearch.errors import ArtifactError, InvalidRequestError
from legalsearch.index import IndexHits

logger = logging.getLogger(__name__)
# bm25s logs each index build at DEBUG through its own handler; that is noise in our progress output
logging.getLogger("bm25s").setLevel(logging.WARNING)

#: the BM25 index's folder inside a model folder
LEXICAL_DIR = "lexical"

#: the fixed reference: changing any of these breaks comparisons with earlier evaluation runs
REFERENCE_K1 = 1.5
REFERENCE_B = 0.75
REFERENCE_STEMMER = "german"
REFERENCE_STOPWORDS = "de"


def score_matrix(retriever: Any) -> sparse.csc_array:
    """bm25s's precomputed BM25(term, doc) as a (docs x terms) CSC array over the same memory.

    The column pointers are narrowed to the postings' int32 when they fit: scipy would otherwise widen the
    postings to int64, a private copy of the largest array in every worker.
    """
    scores = retriever.scores
    indptr = np.asarray(scores["indptr"])
    indices = np.asarray(scores["indices"])
    if indices.dtype == np.int32 and int(indptr[-1]) < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    return sparse.csc_array(
        (np.asarray(scores["data"]), indices, indptr),
        shape=(int(scores["num_docs"]), indptr.shape[0] - 1),
        copy=False,
    )


def _weighted_scores(matrix: sparse.csc_array, nonoccurrence: np.ndarray | None, term_ids: np.ndarray,
                     weights: np.ndarray, exact: bool = False) -> np.ndarray:
    """sum_t weights[t] * BM25(t, doc) for every doc (float32), from the CSC columns of the precomputed scores;
    ``exact`` sums in float64 and rounds once (the reference BM25, which must not move between runs)."""
    n_docs = matrix.shape[0]
    if term_ids.size == 0:
        return np.zeros(n_docs, dtype=np.float32)
    # the query's columns times their weights, summed column by column by scipy's C++ loop: a question expands to
    # ~100 terms and ~150k postings, which numpy needed gathers and copies for. In float32, like the stored
    # scores: with two workers busy, a float64 sum and its conversion cost ~7 % more per search in memory
    # traffic, for differences of ~3e-7 relative (the same 200 best rows on the benchmark questions)
    dtype = np.dtype(np.float64 if exact else np.float32)
    scores: np.ndarray = np.asarray(matrix[:, term_ids] @ np.asarray(weights, dtype=dtype), dtype=dtype)
    if nonoccurrence is not None:
        # bm25l / bm25+ give every document a floor score per query term
        scores = scores + dtype.type(np.dot(nonoccurrence[term_ids].astype(np.float64), weights))
    return scores.astype(np.float32, copy=False)


def _top_k(scores: np.ndarray, k: int, allowed_rows: np.ndarray | None = None) -> IndexHits:
    """Best k documents with a positive score, ties to the lower row; padded with -1 / -inf."""
    if k < 1:
        raise InvalidRequestError(f"k must be at least 1, got {k}")
    n = scores.shape[0]
    if allowed_rows is None:
        rows = np.flatnonzero(scores > 0)
    else:
        allowed = np.unique(np.asarray(allowed_rows, dtype=np.int64))
        if allowed.size and (allowed[0] < 0 or allowed[-1] >= n):
            raise InvalidRequestError(f"allowed_rows must lie in [0, {n}), got {allowed[0]}..{allowed[-1]}")
        rows = allowed[scores[allowed] > 0]
    cand = scores[rows]
    if rows.size > k:
        # argpartition picks arbitrarily among ties at the cut: keep everything above the k-th score,
        # then the lowest rows among those equal to it (rows is ascending)
        kth = np.partition(cand, rows.size - k)[rows.size - k]
        above = np.flatnonzero(cand > kth)
        equal = np.flatnonzero(cand == kth)[: k - above.size]
        keep = np.concatenate([above, equal])
        rows, cand = rows[keep], cand[keep]
    order = np.lexsort((rows, -cand))
    out_s = np.full((1, k), -np.inf, dtype=np.float32)
    out_r = np.full((1, k), -1, dtype=np.int64)
    out_s[0, : order.size] = cand[order]
    out_r[0, : order.size] = rows[order]
    return IndexHits(scores=out_s, rows=out_r)


class LexicalIndex:
    """A bm25s retriever over our own token ids, with weighted-term scoring."""

    def __init__(self, retriever: Any, vocab: Mapping[str, int]) -> None:
        for key in ("data", "indices", "indptr"):
            # plain ndarray views of bm25s's maps: numpy's memmap subclass costs microseconds on every slice
            retriever.scores[key] = np.asarray(retriever.scores[key])
        self.retriever = retriever
        self.vocab: Mapping[str, int] = vocab
        self.n_docs: int = int(retriever.scores["num_docs"])
        indptr = retriever.scores["indptr"]
        n_columns = indptr.shape[0] - 1
        if any(not 0 <= i < n_columns for i in vocab.values()):
            raise ArtifactError("lexical index: vocabulary ids exceed the score matrix")
        self._df = np.diff(indptr).astype(np.int64)
        self._matrix = score_matrix(retriever)
        self._nonoccurrence: np.ndarray | None = getattr(retriever, "nonoccurrence_array", None)

    def scores(self, query_terms: Mapping[str, float]) -> np.ndarray:
        """All scores (n_docs,) float32: sum of weight * BM25(term, doc); unknown terms ignored."""
        vocab = self.vocab
        return self.scores_of_ids({i: w for t, w in query_terms.items() if (i := vocab.get(t)) is not None})

    def scores_of_ids(self, term_weights: Mapping[int, float]) -> np.ndarray:
        """``scores`` for terms given by id (``vocab``), summed in the mapping's order."""
        kept = {i: float(w) for i, w in term_weights.items() if w != 0}
        return _weighted_scores(self._matrix, self._nonoccurrence, np.fromiter(kept, np.int64, len(kept)),
                                np.fromiter(kept.values(), np.float64, len(kept)))

    def top_k(
        self, query_terms: Mapping[str, float], k: int, allowed_rows: np.ndarray | None = None
    ) -> IndexHits:
        """The k best documents that match at least one term (score > 0), optionally among ``allowed_rows``.

        Returns IndexHits with one line; fewer matches than k are padded with row -1 / score -inf.
        """
        return _top_k(self.scores(query_terms), k, allowed_rows)

    @property
    def n_terms(self) -> int:
        """Columns of the score matrix: every term id is below this."""
        return int(self._df.shape[0])

    def document_frequency(self, term: str) -> int:
        """Number of documents containing ``term`` (0 when unknown)."""
        tid = self.vocab.get(term)
        return 0 if tid is None else int(self._df[tid])

    def has_term(self, term: str) -> bool:
        """Whether ``term`` occurs in the indexed documents."""
        return term in self.vocab


def build_lexical_index(token_lists: Iterable[list[str]], config: LexicalConfig) -> LexicalIndex:
    """Index already-preprocessed tokens per document with BM25; bm25s never re-tokenises them."""
    vocab: dict[str, int] = {}
    corpus_ids: list[list[int]] = []
    for tokens in token_lists:
        # first-seen order gives the same ids for the same corpus on every run
        corpus_ids.append([vocab.setdefault(t, len(vocab)) for t in tokens])
    if not corpus_ids:
        raise InvalidRequestError("cannot build a lexical index over zero documents")
    if not vocab:
        raise InvalidRequestError("cannot build a lexical index: no document has any token")
    retriever = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
    retriever.index(Tokenized(ids=corpus_ids, vocab=vocab), create_empty_token=False, show_progress=False)
    logger.info("lexical index: %d documents, %d terms", len(corpus_ids), len(vocab))
    return LexicalIndex(retriever, retriever.vocab_dict)


def save_lexical_index(index: LexicalIndex, folder: Path) -> None:
    """Write the index in bm25s's native format (npy arrays + json) into ``folder``."""
    folder = Path(folder)
    try:
        index.retriever.save(str(folder), show_progress=False)
    except (OSError, TypeError, ValueError) as exc:
        raise ArtifactError(f"cannot save the lexical index to {folder}: {exc}") from exc


def load_lexical_index(folder: Path, mmap: bool = True) -> LexicalIndex:
    """Load an index written by :func:`save_lexical_index`; the score arrays are memory-mapped by default."""
    folder = Path(folder)
    if not (folder / "params.index.json").is_file():
        raise ArtifactError(f"{folder} holds no lexical index (params.index.json is missing)")
    try:
        retriever = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot load the lexical index from {folder}: {exc}") from exc
    if retriever.scores.get("num_docs") is None:
        raise ArtifactError(f"{folder}/params.index.json does not give num_docs")
    n_postings = int(retriever.scores["indptr"][-1])
    if n_postings != len(retriever.scores["data"]) or n_postings != len(retriever.scores["indices"]):
        raise ArtifactError(f"lexical index in {folder} is inconsistent: arrays of different lengths")
    return LexicalIndex(retriever, retriever.vocab_dict)


class ReferenceBM25:
    """The fixed evaluation baseline: bm25s, Snowball German stemmer, bm25s German stopwords, k1=1.5, b=0.75.

    Feed it "title + text" strings; it tokenises them itself (lowercase, ``\\w\\w+``). Never tune it: its
    purpose is to stay comparable over time.
    """

    def __init__(self, retriever: Any) -> None:
        self.retriever = retriever
        self.n_docs: int = int(retriever.scores["num_docs"])
        self._stemmer = Stemmer.Stemmer(REFERENCE_STEMMER)
        self._matrix = score_matrix(retriever)
        self._nonoccurrence: np.ndarray | None = getattr(retriever, "nonoccurrence_array", None)

    @classmethod
    def build(cls, texts: Sequence[str]) -> ReferenceBM25:
        """Tokenise, stem and index ``texts`` (row i = texts[i])."""
        if not texts:
            raise InvalidRequestError("cannot build the reference BM25 over zero documents")
        tokenized = bm25s.tokenize(
            list(texts),
            lower=True,
            stopwords=REFERENCE_STOPWORDS,
            stemmer=Stemmer.Stemmer(REFERENCE_STEMMER),
            show_progress=False,
        )
        retriever = bm25s.BM25(k1=REFERENCE_K1, b=REFERENCE_B, method="lucene")
        retriever.index(tokenized, create_empty_token=False, show_progress=False)
        return cls(retriever)

    def query_terms(self, query: str) -> list[str]:
        """The stemmed tokens of a query, as the reference sees them (repeats kept)."""
        tokens = bm25s.tokenize(
            [query],
            lower=True,
            stopwords=REFERENCE_STOPWORDS,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        return list(tokens[0]) if tokens else []

    def search(self, queries: Sequence[str], k: int) -> IndexHits:
        """Top-k rows per query (score > 0 only, ties to the lower row), padded with -1 / -inf."""
        if k < 1:
            raise InvalidRequestError(f"k must be at least 1, got {k}")
        vocab = self.retriever.vocab_dict
        out_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_r = np.full((len(queries), k), -1, dtype=np.int64)
        for q, query in enumerate(queries):
            # a repeated query word counts once per occurrence, as in bm25s's own retrieve()
            ids = np.array([vocab[t] for t in self.query_terms(query) if t in vocab], dtype=np.int64)
            scores = _weighted_scores(self._matrix, self._nonoccurrence, ids, np.ones(ids.size), exact=True)
            hits = _top_k(scores, k)
            out_s[q], out_r[q] = hits.scores[0], hits.rows[0]
        return IndexHits(scores=out_s, rows=out_r)
