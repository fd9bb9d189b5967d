"""BM25 over the project's own German tokens (bm25s), and the fixed reference BM25 used in evaluation.

bm25s precomputes BM25(term, doc) for every posting into a sparse matrix stored column-wise (one column per
term). A query's score vector is then a weighted sum of a few columns, which is what query expansion needs.

Lexical profiles: the parameters above (k1 2.0, b 0.9, square-root query weights) were chosen on lay questions
against statutes, and on questions about long court decisions they lose to plain BM25. Each document type therefore
has a named profile (``LexicalProfile``): statutes and annexes keep the statute-tuned parameters, every other type
gets safe defaults near plain BM25 (``[lexical] other_*``), or parameters tuned on feedback questions about that type
(``tune_profiles``). Rows of a profile whose k1/b differ from the main index are scored from a matrix of their own
(``profile_matrix``); see ``LexicalIndex.scores_of_ids`` for why scores of different types stay comparable.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenized
from scipy import sparse
from scipy.sparse import _sparsetools  # private: tests/unit/test_lexical.py holds it to scipy's public path

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
    fast = None if exact else _column_sum(matrix, term_ids, np.asarray(weights, dtype=np.float32))
    scores: np.ndarray = (fast if fast is not None else
                          np.asarray(matrix[:, term_ids] @ np.asarray(weights, dtype=dtype), dtype=dtype))
    if nonoccurrence is not None:
        # bm25l / bm25+ give every document a floor score per query term
        scores = scores + dtype.type(np.dot(nonoccurrence[term_ids].astype(np.float64), weights))
    return scores.astype(np.float32, copy=False)


def _column_sum(matrix: sparse.csc_array, term_ids: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """``matrix[:, term_ids] @ weights`` for a float32 matrix with int32 indices, by the same two C++ routines of
    scipy (``csr_row_index`` gathers the columns, ``csc_matvec`` sums them column by column: the same float32
    operations in the same order, so the very same scores), without the ~0.1 ms of index dtype checks and array
    construction a search paid around them; None for other dtypes (scipy's own path then)."""
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    if indptr.dtype != np.int32 or indices.dtype != np.int32 or data.dtype != np.float32:
        return None
    n_docs, n_terms = matrix.shape
    ids = term_ids.astype(np.int32)
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n_terms):
        raise IndexError(f"term ids must lie in [0, {n_terms})")
    sub_indptr = np.empty(ids.size + 1, dtype=np.int32)
    sub_indptr[0] = 0
    np.cumsum(indptr[ids + 1] - indptr[ids], out=sub_indptr[1:])
    nnz = int(sub_indptr[-1])
    sub_indices = np.empty(nnz, dtype=np.int32)
    sub_data = np.empty(nnz, dtype=np.float32)
    # a column of a CSC matrix is a row of its transpose (CSR): scipy's column indexing makes this very call
    _sparsetools.csr_row_index(ids.size, ids, indptr, indices, data, sub_indices, sub_data)
    out = np.zeros(n_docs, dtype=np.float32)
    _sparsetools.csc_matvec(n_docs, ids.size, sub_indptr, sub_indices, sub_data, np.ascontiguousarray(weights), out)
    return out


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


#: document types that keep the statute-tuned parameters ([lexical] k1, b; [search] query_term_weighting)
STATUTE_TYPES = ("statute", "annex")
#: the profiles of a lexical index folder, beside bm25s's files
PROFILES_FILE = "profiles.json"
PROFILES_FORMAT = 1


@dataclass(frozen=True)
class LexicalProfile:
    """The lexical parameters of one document type, and where they come from.

    ``source``: "statute defaults" ([lexical] k1/b, [search] query_term_weighting), "plain defaults" ([lexical]
    other_*), or "feedback" (tuned on ``questions`` feedback questions about the type; ``tuned`` holds the tune
    figures)."""

    type: str
    k1: float
    b: float
    query_term_weighting: str
    source: str
    documents: int
    questions: int = 0
    tuned: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[float, float, str]:
        return (self.k1, self.b, self.query_term_weighting)


def default_profiles(types: Sequence[str], config: LexicalConfig, weighting: str) -> list[LexicalProfile]:
    """One profile per document type of ``types`` (a type per row), sorted by type: statute defaults for
    ``STATUTE_TYPES``, plain defaults for the others; none when ``config.profiles`` is off."""
    if not config.profiles:
        return []
    seen: dict[str, int] = {}
    for t in types:
        seen[t] = seen.get(t, 0) + 1
    out = []
    for t in sorted(seen):
        if t in STATUTE_TYPES:
            out.append(LexicalProfile(t, config.k1, config.b, weighting, "statute defaults", seen[t]))
        else:
            out.append(LexicalProfile(t, config.other_k1, config.other_b, config.other_query_term_weighting,
                                      "plain defaults", seen[t]))
    return out


def weigh_counts(count: float, scheme: str) -> float:
    """Lexical weight of a query term found ``count`` times: count, 1 or sqrt(count) (``[search]
    query_term_weighting``)."""
    if scheme == "count":
        return float(count)
    if scheme == "once":
        return 1.0
    if scheme == "sqrt":
        return math.sqrt(count)
    raise InvalidRequestError(f"unknown query term weighting {scheme!r}")


@dataclass(frozen=True)
class _Group:
    """Rows scored alike: one k1/b (``matrix``: their own BM25 columns, None: the main index's) and one query term
    weighting."""

    name: str
    rows: np.ndarray
    matrix: sparse.csc_array | None
    nonoccurrence: np.ndarray | None
    weighting: str


class LexicalIndex:
    """A bm25s retriever over our own token ids, with weighted-term scoring (per document type's profile)."""

    def __init__(self, retriever: Any, vocab: Mapping[str, int], profiles: Sequence[LexicalProfile] = (),
                 groups: Sequence[_Group] = (), weighting: str = "sqrt") -> None:
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
        #: the profile of every document type (empty: a model trained before profiles, or with them off)
        self.profiles: tuple[LexicalProfile, ...] = tuple(profiles)
        #: rows whose profile differs from the main index's k1/b or from ``weighting``
        self.groups: tuple[_Group, ...] = tuple(groups)
        #: the query term weighting the caller's weights follow (the statute profile's)
        self.weighting = weighting

    @property
    def reweights(self) -> bool:
        """Whether some rows weigh query terms otherwise than ``weighting`` (``scores_of_ids`` wants counts)."""
        return any(g.weighting != self.weighting for g in self.groups)

    def scores(self, query_terms: Mapping[str, float]) -> np.ndarray:
        """All scores (n_docs,) float32: sum of weight * BM25(term, doc); unknown terms ignored."""
        vocab = self.vocab
        return self.scores_of_ids({i: w for t, w in query_terms.items() if (i := vocab.get(t)) is not None})

    def scores_of_ids(self, term_weights: Mapping[int, float], counts: Mapping[int, int] | None = None) -> np.ndarray:
        """``scores`` for terms given by id (``vocab``), summed in the mapping's order.

        Rows of a profile group are scored with their own k1/b and, given the query tokens' ``counts`` by id, their
        own query term weighting. Scores of different profiles stay comparable for the fusion (which z-scores
        the lexical scores of all candidates together): every profile shares the main index's vocabulary, IDF and
        average document length (its matrix is bm25s over *all* documents with the profile's k1/b, cut to its
        rows); bm25s's lucene score of a term lies in [0, idf) whatever k1 and b; and a profile's query weights are
        rescaled to the same total as the caller's, so that a question repeating its words gives no type more
        weight than another. Expansion terms (ids not in ``counts``) keep the weight given.
        """
        kept = {i: float(w) for i, w in term_weights.items() if w != 0}
        ids = np.fromiter(kept, np.int64, len(kept))
        weights = np.fromiter(kept.values(), np.float64, len(kept))
        scores = _weighted_scores(self._matrix, self._nonoccurrence, ids, weights)
        if not self.groups or ids.size == 0:
            return scores
        scores = scores.copy() if not scores.flags.writeable else scores
        for group in self.groups:
            w = weights
            if counts and group.weighting != self.weighting:
                w = _reweighted(ids, weights, counts, self.weighting, group.weighting)
            matrix = group.matrix if group.matrix is not None else self._matrix
            nonocc = group.nonoccurrence if group.matrix is not None else self._nonoccurrence
            if group.matrix is None and w is weights:
                continue
            scores[group.rows] = _weighted_scores(matrix, nonocc, ids, w)[group.rows]
        return scores

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


def _reweighted(ids: np.ndarray, weights: np.ndarray, counts: Mapping[int, int], given: str,
                wanted: str) -> np.ndarray:
    """``weights`` with the query tokens' (``counts``) weighted by ``wanted`` instead of ``given``, rescaled to
    the same total as the given weights of those tokens."""
    out = weights.copy()
    mine = [j for j, i in enumerate(ids.tolist()) if i in counts]
    if not mine:
        return out
    new = np.array([weigh_counts(counts[int(ids[j])], wanted) for j in mine], dtype=np.float64)
    old = float(weights[mine].sum())
    total = float(new.sum())
    out[mine] = new * (old / total) if total > 0 else new
    return out


def profile_matrix(corpus_ids: list[list[int]], vocab: Mapping[str, int], rows: np.ndarray, k1: float, b: float,
                   method: str) -> tuple[sparse.csc_array, np.ndarray | None]:
    """BM25 with ``k1``/``b`` of every (docs x terms) posting of ``rows``, and bm25l/bm25+'s floor per term.

    bm25s has one k1/b per index, so a profile with other ones is a second bm25s index over *all* documents
    (public ``BM25.index``: the same IDF and average length as the main index, hence comparable scores), of
    which only the profile's rows are kept. Only profiles that differ from the main index's k1/b are built.
    """
    retriever = bm25s.BM25(k1=k1, b=b, method=method)
    retriever.index(Tokenized(ids=corpus_ids, vocab=dict(vocab)), create_empty_token=False, show_progress=False)
    if retriever.vocab_dict != vocab:
        raise ArtifactError("lexical profile: bm25s numbered the vocabulary otherwise than the main index")
    full = score_matrix(retriever)
    keep = np.zeros(full.shape[0], dtype=np.float32)
    keep[rows] = 1.0
    # a diagonal mask keeps the profile's rows; CSC columns stay the term ids
    cut = sparse.csc_array(sparse.diags_array(keep) @ full)
    cut.eliminate_zeros()
    cut.sort_indices()
    nonocc = getattr(retriever, "nonoccurrence_array", None)
    return cut, (None if nonocc is None else np.asarray(nonocc))


def build_lexical_index(token_lists: Iterable[list[str]], config: LexicalConfig,
                        profiles: Sequence[LexicalProfile] = (), row_types: Sequence[str] = (),
                        weighting: str = "sqrt") -> LexicalIndex:
    """Index already-preprocessed tokens per document with BM25; bm25s never re-tokenises them.

    ``profiles`` (one per document type) with ``row_types`` (each row's type) and the caller's query term
    ``weighting`` score the rows of a type with its profile (``LexicalIndex.scores_of_ids``)."""
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
    groups = _build_groups(corpus_ids, retriever.vocab_dict, profiles, row_types, config, weighting)
    return LexicalIndex(retriever, retriever.vocab_dict, profiles, groups, weighting)


def _build_groups(corpus_ids: list[list[int]], vocab: Mapping[str, int], profiles: Sequence[LexicalProfile],
                  row_types: Sequence[str], config: LexicalConfig, weighting: str) -> list[_Group]:
    """The row groups of the profiles that differ from the main index (k1/b or query term weighting)."""
    if not profiles:
        return []
    if len(row_types) != len(corpus_ids):
        raise InvalidRequestError(f"{len(row_types)} row types for {len(corpus_ids)} documents")
    types = np.asarray(list(row_types), dtype=object)
    keys: dict[tuple[float, float, str], list[str]] = {}
    for p in profiles:
        if p.key != (config.k1, config.b, weighting):
            keys.setdefault(p.key, []).append(p.type)
    groups = []
    for n, ((k1, b, scheme), names) in enumerate(keys.items(), 1):
        rows = np.flatnonzero(np.isin(types, names)).astype(np.int64)
        if rows.size == 0:
            continue
        if (k1, b) == (config.k1, config.b):
            matrix, nonocc = None, None
        else:
            matrix, nonocc = profile_matrix(corpus_ids, vocab, rows, k1, b, config.method)
        groups.append(_Group(f"group-{n}", rows, matrix, nonocc, scheme))
        logger.info("lexical profile group %d (%s): %d rows, k1 %s, b %s, %s", n, ", ".join(names), rows.size,
                    k1, b, scheme)
    return groups


def save_lexical_index(index: LexicalIndex, folder: Path) -> None:
    """Write the index in bm25s's native format (npy arrays + json) into ``folder``, and its profiles."""
    folder = Path(folder)
    try:
        index.retriever.save(str(folder), show_progress=False)
    except (OSError, TypeError, ValueError) as exc:
        raise ArtifactError(f"cannot save the lexical index to {folder}: {exc}") from exc
    save_profiles(index, folder)


def save_profiles(index: LexicalIndex, folder: Path) -> None:
    """``profiles.json`` and each group's rows (and own BM25 columns) as .npy; nothing without profiles."""
    if not index.profiles:
        return
    groups = []
    for g in index.groups:
        np.save(folder / f"{g.name}.rows.npy", g.rows)
        entry: dict[str, Any] = {"name": g.name, "rows": int(g.rows.size), "query_term_weighting": g.weighting,
                                 "matrix": g.matrix is not None}
        if g.matrix is not None:
            for part in ("data", "indices", "indptr"):
                np.save(folder / f"{g.name}.{part}.npy", getattr(g.matrix, part))
            if g.nonoccurrence is not None:
                np.save(folder / f"{g.name}.nonoccurrence.npy", g.nonoccurrence)
        groups.append(entry)
    doc = {"format": PROFILES_FORMAT, "query_term_weighting": index.weighting,
           "profiles": [asdict(p) for p in index.profiles], "groups": groups}
    (folder / PROFILES_FILE).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def profiles_of(folder: Path) -> list[dict[str, Any]]:
    """The profiles a lexical index folder records (the manifest's ``lexical_profiles``); [] without any."""
    path = Path(folder) / PROFILES_FILE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8"))["profiles"])


def _load_profiles(folder: Path, n_docs: int, n_terms: int, mmap: bool) -> tuple[
    list[LexicalProfile], list[_Group], str
]:
    path = folder / PROFILES_FILE
    if not path.is_file():
        return [], [], "sqrt"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != PROFILES_FORMAT:
            raise ArtifactError(f"{path}: unknown profiles format {doc.get('format')!r}")
        profiles = [LexicalProfile(**p) for p in doc["profiles"]]
        groups = []
        mode: Literal["r"] | None = "r" if mmap else None
        for g in doc["groups"]:
            rows = np.load(folder / f"{g['name']}.rows.npy", mmap_mode=mode)
            if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n_docs):
                raise ArtifactError(f"{path}: group {g['name']} names rows beyond the index")
            matrix = nonocc = None
            if g["matrix"]:
                parts = [np.asarray(np.load(folder / f"{g['name']}.{x}.npy", mmap_mode=mode))
                         for x in ("data", "indices", "indptr")]
                if parts[2].shape[0] != n_terms + 1 or int(parts[2][-1]) != parts[0].shape[0]:
                    raise ArtifactError(f"{path}: group {g['name']}'s matrix does not match the index")
                matrix = sparse.csc_array((parts[0], parts[1], parts[2]), shape=(n_docs, n_terms), copy=False)
                extra = folder / f"{g['name']}.nonoccurrence.npy"
                nonocc = np.load(extra) if extra.is_file() else None
            groups.append(_Group(g["name"], np.asarray(rows, dtype=np.int64), matrix, nonocc,
                                 g["query_term_weighting"]))
        return profiles, groups, str(doc["query_term_weighting"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"lexical profiles in {folder} are unreadable: {exc}") from exc


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
    n_terms = int(np.asarray(retriever.scores["indptr"]).shape[0]) - 1
    profiles, groups, weighting = _load_profiles(folder, int(retriever.scores["num_docs"]), n_terms, mmap)
    return LexicalIndex(retriever, retriever.vocab_dict, profiles, groups, weighting)


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


# ------------------------------------------------------------------------------------------ tuning on feedback
#: what ``tune_profiles`` tries per document type (the plain defaults and the statute parameters among them)
K1_GRID = (0.9, 1.2, 1.5, 2.0)
B_GRID = (0.5, 0.75, 0.9)
WEIGHTING_GRID = ("count", "sqrt")
#: a tuned profile replaces the defaults only when it beats them by this much nDCG@10 on the tune questions
MIN_GAIN = 0.005
#: the depth of the measure profiles are tuned by
TUNE_DEPTH = 10


@dataclass(frozen=True)
class TuneQuestion:
    """A feedback question as the lexical side sees it: its query tokens' ids and counts, its relevant rows."""

    counts: Mapping[int, int]
    relevant: frozenset[int]


def question_type(relevant: Iterable[int], row_types: Sequence[str]) -> str | None:
    """The document type most of a question's relevant rows have (ties: the first named); None without rows."""
    seen: dict[str, int] = {}
    for row in relevant:
        seen[row_types[row]] = seen.get(row_types[row], 0) + 1
    return max(seen, key=lambda t: seen[t]) if seen else None


def _tf_matrix(corpus_ids: Sequence[Sequence[int]], n_terms: int) -> tuple[sparse.csc_array, np.ndarray]:
    """Term counts (docs x terms, CSC) and document lengths, as bm25s counts them."""
    lengths = np.fromiter((len(ids) for ids in corpus_ids), dtype=np.int64, count=len(corpus_ids))
    rows = np.repeat(np.arange(len(corpus_ids), dtype=np.int64), lengths)
    cols = np.fromiter((i for ids in corpus_ids for i in ids), dtype=np.int64, count=int(lengths.sum()))
    tf = sparse.coo_array((np.ones(cols.size, dtype=np.float64), (rows, cols)),
                          shape=(len(corpus_ids), n_terms)).tocsc()
    tf.sum_duplicates()
    return tf, lengths.astype(np.float64)


def bm25_values(tf: sparse.csc_array, lengths: np.ndarray, k1: float, b: float) -> sparse.csc_array:
    """bm25s's lucene BM25 of every posting of ``tf``: idf * tf / (tf + k1 * (1 - b + b * len / avg len))."""
    n_docs = tf.shape[0]
    df = np.diff(tf.indptr).astype(np.float64)
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    column = np.repeat(np.arange(tf.shape[1]), np.diff(tf.indptr))
    norm = k1 * (1.0 - b + b * lengths[tf.indices] / lengths.mean())
    data = idf[column] * tf.data / (tf.data + norm)
    return sparse.csc_array((data, tf.indices, tf.indptr), shape=tf.shape)


def _ndcg(scores: np.ndarray, rows: np.ndarray, relevant: frozenset[int]) -> float:
    """nDCG@TUNE_DEPTH of the best ``rows`` by score (ties: lower row), binary gains."""
    if not relevant:
        return 0.0
    sub = scores[rows]
    depth = min(TUNE_DEPTH, rows.size)
    top = np.lexsort((rows, -sub))[:depth]
    gains = [1.0 / math.log2(r + 2) for r, j in enumerate(top.tolist()) if sub[j] > 0 and int(rows[j]) in relevant]
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), TUNE_DEPTH)))
    return sum(gains) / ideal


def tune_profiles(corpus_ids: Sequence[Sequence[int]], n_terms: int, row_types: Sequence[str],
                  profiles: Sequence[LexicalProfile], questions: Sequence[TuneQuestion],
                  min_questions: int) -> list[LexicalProfile]:
    """``profiles`` with every non-statute type that has ``min_questions`` feedback questions or more tuned on them.

    A question belongs to the type most of its relevant rows have. For each such type, k1 x b x query weighting
    (``K1_GRID`` x ``B_GRID`` x ``WEIGHTING_GRID``) are tried, ranking the type's own rows by the query tokens alone
    (no expansion), with the IDF and average length of the whole index, as served; the best mean nDCG@10 replaces
    the defaults if it beats them by ``MIN_GAIN``. Statutes keep their parameters: they were chosen on lay
    questions against statutes, with expansions and fusion, which this lexical-only measure does not see.
    """
    by_type: dict[str, list[TuneQuestion]] = {}
    for q in questions:
        t = question_type(sorted(q.relevant), row_types)
        if t is not None and t not in STATUTE_TYPES:
            by_type.setdefault(t, []).append(q)
    wanted = [p for p in profiles if len(by_type.get(p.type, ())) >= min_questions]
    if not wanted:
        return list(profiles)
    tf, lengths = _tf_matrix(corpus_ids, n_terms)
    types = np.asarray(list(row_types), dtype=object)
    out = {p.type: p for p in profiles}
    cache: dict[tuple[float, float], sparse.csc_array] = {}
    for p in wanted:
        rows = np.flatnonzero(types == p.type)
        asked = by_type[p.type]
        results: dict[tuple[float, float, str], float] = {}
        for k1 in K1_GRID:
            for b in B_GRID:
                if (k1, b) not in cache:
                    cache = {(k1, b): bm25_values(tf, lengths, k1, b)}
                values = cache[(k1, b)]
                for scheme in WEIGHTING_GRID:
                    total = 0.0
                    for q in asked:
                        ids = np.fromiter(q.counts, np.int64, len(q.counts))
                        w = np.array([weigh_counts(n, scheme) for n in q.counts.values()], dtype=np.float64)
                        scores = np.asarray(values[:, ids] @ w) if ids.size else np.zeros(tf.shape[0])
                        total += _ndcg(scores, rows, q.relevant & frozenset(rows.tolist()))
                    results[(k1, b, scheme)] = total / len(asked)
        default = results.get(p.key)
        if default is None:  # defaults off the grid: measure them too
            values = bm25_values(tf, lengths, p.k1, p.b)
            default = sum(_ndcg(np.asarray(values[:, np.fromiter(q.counts, np.int64, len(q.counts))]
                                           @ np.array([weigh_counts(n, p.query_term_weighting)
                                                       for n in q.counts.values()])), rows,
                                q.relevant & frozenset(rows.tolist())) for q in asked) / len(asked)
        # best first; ties to the grid's order (lower k1, lower b, count)
        best = max(results, key=lambda key: results[key])
        figures = {"ndcg@10": round(results[best], 4), "default_ndcg@10": round(default, 4)}
        if results[best] >= default + MIN_GAIN:
            k1, b, scheme = best
            out[p.type] = LexicalProfile(p.type, k1, b, scheme, "feedback", p.documents, len(asked), figures)
        else:
            out[p.type] = LexicalProfile(p.type, p.k1, p.b, p.query_term_weighting, p.source, p.documents,
                                         len(asked), figures)
        logger.info("lexical profile %s: %d questions, defaults %.4f, best %s %.4f -> %s", p.type, len(asked),
                    default, best, results[best], out[p.type].source)
    return [out[p.type] for p in profiles]


def retune_folder(folder: Path, token_lists: Iterable[list[str]], row_types: Sequence[str],
                  questions: Sequence[tuple[Sequence[str], frozenset[int]]], config: LexicalConfig) -> (
    list[LexicalProfile]
):
    """Tune the profiles of the index saved in ``folder`` on feedback ``questions`` (query tokens, relevant rows;
    ``tune_profiles``) and rewrite its profile files when that changed them; returns the profiles."""
    folder = Path(folder)
    index = load_lexical_index(folder, mmap=False)
    if not index.profiles:
        return []
    vocab = index.vocab
    corpus_ids = [[vocab[t] for t in tokens] for tokens in token_lists]
    tune = []
    for tokens, relevant in questions:
        counts: dict[int, int] = {}
        for t in tokens:
            if (i := vocab.get(t)) is not None:
                counts[i] = counts.get(i, 0) + 1
        if counts and relevant:
            tune.append(TuneQuestion(counts, relevant))
    profiles = tune_profiles(corpus_ids, index.n_terms, row_types, index.profiles, tune,
                             config.profile_min_questions)
    if profiles == list(index.profiles):
        return profiles
    for g in index.groups:
        for path in folder.glob(f"{g.name}.*.npy"):
            path.unlink()
    groups = _build_groups(corpus_ids, vocab, profiles, row_types, config, index.weighting)
    save_profiles(LexicalIndex(index.retriever, vocab, profiles, groups, index.weighting), folder)
    return profiles
