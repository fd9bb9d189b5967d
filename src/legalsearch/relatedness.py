"""Relatedness of documents to seed documents: the signals a recommendation fuses, each a named part.

Signals (``SIGNALS``) and the features each gives a candidate document ``c`` for the seeds ``S``:

* ``word2vec``: cosine of ``c``'s document vector with the seeds' query vector (``neighbours.seed_query``), and
  the reciprocal of ``c``'s rank in word2vec's own list.
* ``lexical``: More-Like-This, the model's BM25 over the seeds' best TF-IDF keywords (``MLT_TERMS``), scaled by
  the best candidate's score, and the reciprocal of ``c``'s rank in its list; the cosine of ``c``'s stored
  TF-IDF keyword weights with the seeds'.
* ``structure``: same law; the share of the seed's heading path that ``c`` shares (and whether all of it);
  closeness in the law by position (rows follow the order of the law), and whether ``c`` comes after the seed.
* ``citations``: ``c`` cites a seed, a seed cites ``c``; co-citation (documents citing both); shared references
  (sections both cite, weighted down by how often they are cited); how many documents cite ``c`` at all.
* ``feedback``: questions of a feedback file answered by ``c`` together with a seed (``corelevance``).

Candidates are the union of each signal's best ``CANDIDATES`` rows. ``Fusion`` holds boosted trees (or the
weights of a linear model) over the features, fitted on labelled questions (``recommend_eval.fit_fusion``), and
the signals it uses; ``rank_related`` ranks the candidates by it. ``reasons`` says in words why a candidate came up.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from legalsearch.errors import ArtifactError
from legalsearch.index import search_index
from legalsearch.keywords import PHRASE_JOINER, csr_rows
from legalsearch.model import load_arrays
from legalsearch.neighbours import NeighbourTable, seed_query

if TYPE_CHECKING:
    from legalsearch.engine import Model

SIGNALS = ("word2vec", "lexical", "structure", "citations", "feedback")
#: feature names per signal, in the order of the feature matrix's columns
FEATURES: dict[str, tuple[str, ...]] = {
    "word2vec": ("w2v_cosine", "w2v_cosine_sq", "w2v_rr"),
    "lexical": ("mlt_bm25", "mlt_bm25_sqrt", "mlt_rr", "kw_cosine"),
    "structure": ("same_law", "heading_shared", "heading_equal", "position_near", "position_log", "position_after"),
    "citations": ("cites_seed", "cited_by_seed", "co_cited", "shared_refs", "cited_count"),
    "feedback": ("co_relevant",),
}
FEATURE_NAMES: tuple[str, ...] = tuple(f for s in SIGNALS for f in FEATURES[s])
_COLUMNS: dict[str, int] = {f: i for i, f in enumerate(FEATURE_NAMES)}
#: the seed's best keywords asked of BM25 (More-Like-This)
MLT_TERMS = 25
#: best rows each signal adds to the candidates
CANDIDATES = 100
#: citing documents (and references) of a seed looked at for co-citation / shared references
MAX_LINKS = 2000
#: the related table's signal parts per slot (``precompute_related``), beside ``neighbours.RELATED_FILES``
RELATED_PARTS_FILE = "related_parts.npy"
#: filters letting through at most this many rows rank word2vec candidates by an exact product
EXACT_LIMIT = 20_000
#: positions in the law at which position_log reaches 0
POSITION_HORIZON = 200
FUSION_FILE = "recommend_fusion.json"
FEEDBACK_FILES = {"indptr": "corelevance_indptr.npy", "indices": "corelevance_indices.npy",
                  "counts": "corelevance_counts.npy"}


@dataclass(frozen=True)
class Trees:
    """Gradient-boosted regression trees over the features, as flat arrays (one row per node of all trees):
    a node sends a row left when its feature is at most the threshold; a leaf adds its value to the score."""

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    depth: int

    def score(self, x: np.ndarray) -> np.ndarray:
        """The trees' summed leaf values per row of ``x`` (all trees walked together, one step per level)."""
        n = x.shape[0]
        if n == 0:
            return np.zeros(0)
        feature, threshold, left, right = self._walk
        # feature-major: a node's value for every row is one flat gather
        flat = np.ascontiguousarray(x.T, dtype=np.float64).ravel()
        node = np.repeat(self.roots[:, None], n, axis=1)
        cols = np.arange(n)[None, :]
        for _ in range(self.depth):
            go_left = flat[feature[node] * n + cols] <= threshold[node]
            node = np.where(go_left, left[node], right[node])
        return np.asarray(self.value[node].sum(axis=0), dtype=np.float64)

    @cached_property
    def _walk(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feature, threshold and children per node, a leaf being its own child either way (threshold +inf)."""
        own = np.arange(self.feature.size, dtype=np.int64)
        return (np.where(self.leaf, 0, self.feature), np.where(self.leaf, np.inf, self.threshold),
                np.where(self.leaf, own, self.left), np.where(self.leaf, own, self.right))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (lists)."""
        return {"roots": self.roots.tolist(), "feature": [FEATURE_NAMES[f] for f in self.feature.tolist()],
                "threshold": self.threshold.tolist(), "left": self.left.tolist(), "right": self.right.tolist(),
                "leaf": self.leaf.astype(int).tolist(), "value": self.value.tolist(), "depth": self.depth}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trees:
        """From ``to_dict``'s form; ValueError / KeyError when it does not form trees."""
        trees = cls(np.asarray(data["roots"], dtype=np.int64),
                    np.asarray([FEATURE_NAMES.index(f) for f in data["feature"]], dtype=np.int64),
                    np.asarray(data["threshold"], dtype=np.float64), np.asarray(data["left"], dtype=np.int64),
                    np.asarray(data["right"], dtype=np.int64), np.asarray(data["leaf"], dtype=bool),
                    np.asarray(data["value"], dtype=np.float64), int(data["depth"]))
        n = trees.feature.size
        arrays = (trees.threshold, trees.left, trees.right, trees.leaf, trees.value)
        if any(a.shape != (n,) for a in arrays) or not np.isfinite(trees.value).all():
            raise ValueError("tree arrays of different lengths or non-finite leaf values")
        for a in (trees.roots, trees.left, trees.right):
            if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
                raise ValueError("a node index outside the trees")
        return trees


@dataclass(frozen=True)
class Fusion:
    """How the features of the ``signals`` it was fitted with make a score: ``intercept`` plus a weighted sum
    (``weights``), plus boosted ``trees`` when fitted with them (features of other signals count as 0)."""

    signals: tuple[str, ...]
    weights: Mapping[str, float]
    intercept: float = 0.0
    info: Mapping[str, Any] = field(default_factory=dict)
    trees: Trees | None = None

    def vector(self) -> np.ndarray:
        """The weights in ``FEATURE_NAMES`` order (0 for features of signals not used)."""
        return self._vector

    @cached_property
    def _vector(self) -> np.ndarray:
        return np.array([self.weights.get(f, 0.0) if _signal_of(f) in self.signals else 0.0
                         for f in FEATURE_NAMES], dtype=np.float64)

    @cached_property
    def _unused(self) -> list[int]:
        return [i for i, f in enumerate(FEATURE_NAMES) if _signal_of(f) not in self.signals]

    def mask(self, x: np.ndarray) -> np.ndarray:
        """``x`` with the features of signals not used set to 0."""
        if not self._unused:
            return x
        out = x.copy()
        out[:, self._unused] = 0.0
        return out

    def score(self, x: np.ndarray) -> np.ndarray:
        """The fused score of each row of a feature matrix (``FEATURE_NAMES`` columns)."""
        x = self.mask(x)
        out = x @ self.vector() + self.intercept
        if self.trees is not None:
            out = out + self.trees.score(x)
        return np.asarray(out, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``FUSION_FILE``."""
        return {"signals": list(self.signals), "weights": dict(self.weights), "intercept": self.intercept,
                "info": dict(self.info), "trees": self.trees.to_dict() if self.trees is not None else None}

    def save(self, folder: Path) -> Path:
        """Write ``FUSION_FILE`` into a model folder."""
        path = folder / FUSION_FILE
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> Fusion | None:
        """The fusion of a model folder; None when the model has none (recommendations by word2vec alone)."""
        path = folder / FUSION_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fusion = cls(tuple(data["signals"]), {str(k): float(v) for k, v in data["weights"].items()},
                         float(data.get("intercept", 0.0)), dict(data.get("info", {})),
                         Trees.from_dict(data["trees"]) if data.get("trees") else None)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"recommendation fusion {path} is unreadable: {exc}") from exc
        unknown = [s for s in fusion.signals if s not in SIGNALS] + [f for f in fusion.weights
                                                                       if f not in FEATURE_NAMES]
        if unknown or not all(math.isfinite(w) for w in [*fusion.weights.values(), fusion.intercept]):
            raise ArtifactError(f"recommendation fusion {path}: unknown or non-finite entries {unknown}")
        return fusion


def _signal_of(feature: str) -> str:
    return next(s for s, names in FEATURES.items() if feature in names)


@dataclass(frozen=True)
class CoRelevance:
    """Per document (CSR), the documents answered together with it in feedback questions, and how often."""

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray

    def of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The partners of one row and their counts."""
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        return self.indices[lo:hi], self.counts[lo:hi]

    @classmethod
    def from_groups(cls, groups: Sequence[Sequence[int]], n_docs: int) -> CoRelevance:
        """From the rows of each question's answer: every pair of rows of one answer counts once."""
        pairs: dict[tuple[int, int], int] = {}
        for group in groups:
            rows = sorted(set(group))
            for a in rows:
                for b in rows:
                    if a != b:
                        pairs[(a, b)] = pairs.get((a, b), 0) + 1
        keys = sorted(pairs)
        src = np.array([a for a, _ in keys], dtype=np.int64)
        indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.add.at(indptr, src + 1, 1)
        return cls(np.cumsum(indptr), np.array([b for _, b in keys], dtype=np.int32),
                   np.array([pairs[k] for k in keys], dtype=np.int32))

    def save(self, folder: Path) -> list[Path]:
        """Write the three arrays into a model folder."""
        paths = []
        for name, file in FEEDBACK_FILES.items():
            np.save(folder / file, getattr(self, name))
            paths.append(folder / file)
        return paths

    @classmethod
    def load(cls, folder: Path, n_docs: int, mmap: bool = True) -> CoRelevance | None:
        """The co-relevance of a model folder; None without feedback."""
        if not (folder / FEEDBACK_FILES["indptr"]).exists():
            return None
        arrays = load_arrays(folder, FEEDBACK_FILES, "co-relevance", mmap)
        table = cls(**arrays)
        m = int(table.indices.shape[0])
        if (table.indptr.shape != (n_docs + 1,) or int(table.indptr[-1]) != m or table.counts.shape != (m,)
                or (m and (int(table.indices.min()) < 0 or int(table.indices.max()) >= n_docs))):
            raise ArtifactError(f"co-relevance in {folder} does not fit {n_docs} documents")
        return table


@dataclass(frozen=True)
class Structure:
    """Per row the law code and the heading path as prefix ids (one column per depth, -1 below the path)."""

    law: np.ndarray
    prefixes: np.ndarray
    depth: np.ndarray
    #: per heading code, its components ("Untertitel 2 - Mietverhältnisse über Wohnraum")
    components: list[tuple[str, ...]]
    heading: np.ndarray


def structure_of(model: Model) -> Structure:
    """The model's statute structure columns, built once per model from the document store's codes (held by
    the model's ranking caches)."""
    caches = model.ranking_caches
    if caches.structure is None:
        caches.structure = _build_structure(model)
    return caches.structure


def _build_structure(model: Model) -> Structure:
    n = len(model.documents)
    law, _ = model.documents.column("law")
    heading, values = model.documents.column("heading_path")
    if law is None:
        law = np.full(n, -1, dtype=np.int32)
    components = [tuple(p.strip() for p in str(v).split(">")) if v else () for v in values]
    max_depth = max((len(c) for c in components), default=0)
    table = np.full((len(components) + 1, max(max_depth, 1)), -1, dtype=np.int32)
    ids: dict[tuple[str, ...], int] = {}
    for code, parts in enumerate(components):
        for d in range(len(parts)):
            table[code, d] = ids.setdefault(parts[: d + 1], len(ids))
    codes = heading if heading is not None else np.full(n, -1, dtype=np.int32)
    # code -1 (no heading) reads the last line of the table: all -1
    prefixes = table[codes]
    depth = np.array([len(c) for c in components] + [0], dtype=np.int32)[codes]
    return Structure(np.asarray(law), prefixes, depth, components, np.asarray(codes))


@dataclass(frozen=True)
class Related:
    """Candidates of one request, their feature matrix (``FEATURE_NAMES`` columns) and fused scores."""

    rows: np.ndarray
    features: np.ndarray
    scores: np.ndarray


def mlt_terms(model: Model, seeds: Sequence[int]) -> dict[int, float]:
    """The lexical query of More-Like-This: the seeds' ``MLT_TERMS`` best keywords split into lexical ids."""
    found = model.doc_keywords.rows(list(seeds))
    weights: dict[int, float] = {}
    for t, w in zip(found.terms, found.weights, strict=True):
        weights[t] = weights.get(t, 0.0) + w
    best = sorted(weights.items(), key=lambda tw: (-tw[1], tw[0]))[:MLT_TERMS]
    vocabulary, vocab = model.keyword_model.vocabulary, model.lexical.vocab
    out: dict[int, float] = {}
    for t, w in best:
        for part in vocabulary[t].split(PHRASE_JOINER):
            if (i := vocab.get(part)) is not None:
                out[i] = out.get(i, 0.0) + w
    return out


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k best finite positive scores (any order)."""
    ok = np.flatnonzero(np.isfinite(scores) & (scores > 0))
    if ok.size > k:
        ok = ok[np.argpartition(-scores[ok], k - 1)[:k]]
    return ok.astype(np.int64)


def _masked(values: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    if allowed is None:
        return values
    out = np.full(values.shape[0], -np.inf, dtype=np.float64)
    out[allowed] = values[allowed]
    return out


def _position_rows(st: Structure, seeds: Sequence[int], n: int) -> np.ndarray:
    half = CANDIDATES // 2
    parts = []
    for s in seeds:
        lo, hi = max(0, s - half), min(n, s + half + 1)
        window = np.arange(lo, hi, dtype=np.int64)
        parts.append(window[st.law[window] == st.law[s]] if st.law[s] >= 0 else window[:0])
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _link_counts(model: Model, seeds: Sequence[int]) -> tuple[dict[int, float], dict[int, float]]:
    """Co-citation (rows cited together with a seed by one document) and shared references (rows citing what
    a seed cites, each reference weighted 1 / log2(2 + its citing documents))."""
    graph = model.citations
    co: dict[int, float] = {}
    shared: dict[int, float] = {}
    if graph is None:
        return co, shared
    cites, cited_by = graph.cites, graph.cited_by
    for s in seeds:
        citers = cited_by.indices[cited_by.of(s)][:MAX_LINKS]
        if citers.size:
            spans = [cites.indices[cites.of(int(c))] for c in citers.tolist()]
            rows, counts = np.unique(np.concatenate(spans), return_counts=True)
            for r, c in zip(rows.tolist(), counts.tolist(), strict=True):
                co[r] = co.get(r, 0.0) + c
        refs = cites.indices[cites.of(s)][:MAX_LINKS]
        for ref in refs.tolist():
            sl = cited_by.of(ref)
            citing = cited_by.indices[sl]
            w = 1.0 / math.log2(2 + citing.size)
            for r in citing.tolist():
                shared[r] = shared.get(r, 0.0) + w
    for s in seeds:
        co.pop(s, None)
        shared.pop(s, None)
    return co, shared


def _direct(model: Model, seeds: Sequence[int]) -> tuple[set[int], set[int]]:
    """Rows that cite a seed, and rows a seed cites."""
    graph = model.citations
    if graph is None:
        return set(), set()
    citing = {int(r) for s in seeds for r in graph.cited_by.indices[graph.cited_by.of(s)].tolist()}
    cited = {int(r) for s in seeds for r in graph.cites.indices[graph.cites.of(s)].tolist()}
    return citing, cited


@dataclass
class Evidence:
    """What the signals found for one request, before candidates are scored."""

    query: np.ndarray
    mlt: np.ndarray | None = None
    mlt_max: float = 0.0
    #: the best ``CANDIDATES`` scores of word2vec and More-Like-This among the allowed rows, best first: the rank
    #: of any row in either list (``_reciprocal_rank``)
    w2v_top: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mlt_top: np.ndarray = field(default_factory=lambda: np.zeros(0))
    citing: set[int] = field(default_factory=set)
    cited: set[int] = field(default_factory=set)
    co: dict[int, float] = field(default_factory=dict)
    shared: dict[int, float] = field(default_factory=dict)
    feedback: dict[int, float] = field(default_factory=dict)


def evidence(model: Model, seeds: Sequence[int], signals: Sequence[str], negative: Sequence[int] = ()) -> Evidence:
    """What the seeds' query vector, citations and feedback say, without ranking anything (More-Like-This's
    scores are left out: they cost a pass over the lexical index)."""
    found = _direct_evidence(model, seeds, signals)
    if negative:
        found.query = seed_query(model.docvectors, list(seeds), list(negative))
    if "citations" in signals:
        found.co, found.shared = _link_counts(model, seeds)
    return found


def page_evidence(model: Model, seeds: Sequence[int], rows: Sequence[int], signals: Sequence[str]) -> Evidence:
    """``evidence`` for a few rows only (a page read from the related table): co-citation and shared references
    by intersecting the rows' citation lists with the seeds', instead of walking every document citing a seed."""
    found = _direct_evidence(model, seeds, signals)
    if "word2vec" in signals and found.query.any():
        listed, cos = _word2vec_rows(model, seeds, (), None, found.query)
        found.w2v_top = _best_first(cos, listed, seeds)
    graph = model.citations
    if "citations" in signals and graph is not None:
        cites, cited_by = graph.cites, graph.cited_by
        # sets, not np.intersect1d: the lists are short and a page has ten rows, so numpy's per-call cost dominates
        row_citers = {r: cited_by.indices[cited_by.of(r)].tolist() for r in rows}
        row_refs = {r: cites.indices[cites.of(r)].tolist() for r in rows}
        for s in seeds:
            citers = set(cited_by.indices[cited_by.of(s)][:MAX_LINKS].tolist())
            refs = set(cites.indices[cites.of(s)][:MAX_LINKS].tolist())
            for r in rows:
                co = len(citers.intersection(row_citers[r])) if citers else 0
                if co:
                    found.co[r] = found.co.get(r, 0.0) + co
                common = sorted(refs.intersection(row_refs[r])) if refs else []
                if common:
                    weight = sum(1.0 / math.log2(2 + cited_by.degree(c)) for c in common)
                    found.shared[r] = found.shared.get(r, 0.0) + weight
    return found


def _direct_evidence(model: Model, seeds: Sequence[int], signals: Sequence[str]) -> Evidence:
    found = Evidence(seed_query(model.docvectors, list(seeds)))
    if "citations" in signals:
        found.citing, found.cited = _direct(model, seeds)
    if "feedback" in signals and model.corelevance is not None:
        for s in seeds:
            partners, counts = model.corelevance.of(s)
            for r, c in zip(partners.tolist(), counts.tolist(), strict=True):
                found.feedback[r] = found.feedback.get(r, 0.0) + c
    return found


def _word2vec_rows(model: Model, seeds: Sequence[int], negative: Sequence[int], allowed: np.ndarray | None,
                   query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """word2vec's best rows among ``allowed`` and their cosines (any order; the seeds may be among them)."""
    table = model.neighbours
    if table is not None and allowed is None and len(seeds) == 1 and not negative:
        rows = np.asarray(table.rows[seeds[0], :CANDIDATES], dtype=np.int64)
        cos = np.asarray(table.scores[seeds[0], :CANDIDATES], dtype=np.float64)
    elif allowed is not None and allowed.size <= EXACT_LIMIT:
        # a few thousand rows: the product is cheaper than the index's filtered search (which reconstructs
        # the allowed vectors from the index one batch at a time)
        every = (np.asarray(model.docvectors[allowed], dtype=np.float32) @ query).astype(np.float64)
        best = _top(every + 2.0, CANDIDATES)
        rows, cos = allowed[best], every[best]
    else:
        hits = search_index(model.index, query[None, :], CANDIDATES, allowed_rows=allowed)
        rows, cos = hits.rows[0], hits.scores[0].astype(np.float64)
    ok = rows >= 0
    return rows[ok].astype(np.int64), cos[ok]


def _best_first(scores: np.ndarray, rows: np.ndarray, seeds: Sequence[int]) -> np.ndarray:
    """The scores of ``rows`` other than the seeds, best first."""
    return np.sort(scores[~np.isin(rows, np.asarray(seeds, dtype=np.int64))])[::-1]


def _reciprocal_rank(values: np.ndarray, top: np.ndarray) -> np.ndarray:
    """1 / (1 + rank) of each value among a signal's best scores (``top``, best first; rank 0 = the best), 0 for
    values below the last of them: the place a row has in that signal's own list."""
    if top.size == 0:
        return np.zeros(values.size)
    above = np.searchsorted(-top, -values, side="left")
    return np.where(values >= top[-1], 1.0 / (1.0 + above), 0.0)


def mlt_scores(model: Model, found: Evidence, seeds: Sequence[int], terms: Mapping[int, float] | None = None,
               allowed: np.ndarray | None = None) -> None:
    """More-Like-This's BM25 scores into ``found``, and their best among ``allowed`` rows other than the
    seeds, which scales the feature (the same for every candidate set of the request)."""
    terms = mlt_terms(model, seeds) if terms is None else terms
    if not terms:
        return
    found.mlt = np.asarray(model.lexical.scores_of_ids(terms), dtype=np.float64)
    masked = _masked(found.mlt, allowed).copy()
    masked[list(seeds)] = -np.inf
    best = _top(masked, CANDIDATES)
    found.mlt_top = np.sort(masked[best])[::-1]
    found.mlt_max = float(found.mlt_top[0]) if best.size else 0.0


def _gather(model: Model, seeds: Sequence[int], negative: Sequence[int], allowed: np.ndarray | None,
            signals: Sequence[str]) -> tuple[Evidence, dict[str, list[np.ndarray]]]:
    """Each signal's evidence and its best candidate rows."""
    found = evidence(model, seeds, signals, negative)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in signals}
    if "word2vec" in signals and found.query.any():
        rows, cos = _word2vec_rows(model, seeds, negative, allowed, found.query)
        found.w2v_top = _best_first(cos, rows, seeds)
        parts["word2vec"].append(rows)
    if "lexical" in signals:
        terms = mlt_terms(model, seeds)
        if terms:
            mlt_scores(model, found, seeds, terms, allowed)
            assert found.mlt is not None
            parts["lexical"].append(_top(_masked(found.mlt, allowed), CANDIDATES))
    if "structure" in signals:
        parts["structure"].append(_position_rows(structure_of(model), seeds, len(model.documents)))
    if "citations" in signals:
        parts["citations"].append(np.fromiter(found.citing | found.cited, dtype=np.int64))
        for counts in (found.co, found.shared):
            rows = np.fromiter(counts, dtype=np.int64, count=len(counts))
            values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            parts["citations"].append(rows[_top(values, CANDIDATES)] if rows.size else rows)
    if found.feedback:
        parts["feedback"].append(np.fromiter(found.feedback, dtype=np.int64, count=len(found.feedback)))
    return found, parts


def contribution_matrix(fusion: Fusion, features: np.ndarray) -> np.ndarray:
    """Per row, each signal's part of the fused score (columns ``fusion.signals``): how much the score falls
    with that signal's features set to 0 (for a weighted sum exactly its features times their weights)."""
    full = fusion.score(features)
    out = np.zeros((features.shape[0], len(fusion.signals)), dtype=np.float64)
    for j, signal in enumerate(fusion.signals):
        without = features.copy()
        without[:, [FEATURE_NAMES.index(f) for f in FEATURES[signal]]] = 0.0
        out[:, j] = full - fusion.score(without)
    return out


def contributions(fusion: Fusion, features: np.ndarray) -> list[dict[str, float]]:
    """``contribution_matrix`` as one ``{signal: part}`` per row, as answers carry them."""
    return parts_of(fusion, contribution_matrix(fusion, features))


def parts_of(fusion: Fusion, matrix: np.ndarray) -> list[dict[str, float]]:
    """Rows of a contribution matrix as ``{signal: part}`` (rounded as answers carry them)."""
    return [{s: round(v, 6) for s, v in zip(fusion.signals, row, strict=True)} for row in matrix.tolist()]


def features_of(model: Model, seeds: Sequence[int], rows: np.ndarray, found: Evidence) -> np.ndarray:
    """The feature matrix of the candidate rows (columns ``FEATURE_NAMES``)."""
    x = _link_columns(model, seeds, rows, found)
    if rows.size == 0:
        return x
    col = _COLUMNS
    cos = np.asarray(model.docvectors[rows], dtype=np.float32) @ found.query
    x[:, col["w2v_cosine"]] = cos
    x[:, col["w2v_cosine_sq"]] = np.maximum(cos, 0) ** 2
    x[:, col["w2v_rr"]] = _reciprocal_rank(cos.astype(np.float64), found.w2v_top)
    if found.mlt is not None:
        mlt = np.maximum(found.mlt[rows], 0)
        top = found.mlt_max
        if top > 0:
            x[:, col["mlt_bm25"]] = mlt / top
            x[:, col["mlt_bm25_sqrt"]] = np.sqrt(mlt / top)
            x[:, col["mlt_rr"]] = _reciprocal_rank(found.mlt[rows], found.mlt_top)
    x[:, col["kw_cosine"]] = keyword_cosine(model, seeds, rows)
    return x


def _link_columns(model: Model, seeds: Sequence[int], rows: np.ndarray, found: Evidence) -> np.ndarray:
    """The structure, citation and feedback columns of ``features_of`` (the others 0)."""
    x = np.zeros((rows.size, len(FEATURE_NAMES)), dtype=np.float64)
    if rows.size == 0:
        return x
    col = _COLUMNS
    _structure_columns(x, structure_of(model), seeds, rows)
    rl = rows.tolist()
    x[:, col["cites_seed"]] = [r in found.citing for r in rl]
    x[:, col["cited_by_seed"]] = [r in found.cited for r in rl]
    x[:, col["co_cited"]] = np.log1p([found.co.get(r, 0.0) for r in rl])
    x[:, col["shared_refs"]] = np.log1p([found.shared.get(r, 0.0) for r in rl])
    if model.citations is not None:
        indptr = model.citations.cited_by.indptr
        x[:, col["cited_count"]] = np.log1p(indptr[rows + 1] - indptr[rows])
    x[:, col["co_relevant"]] = np.log1p([found.feedback.get(r, 0.0) for r in rl])
    return x


def _structure_columns(x: np.ndarray, st: Structure, seeds: Sequence[int], rows: np.ndarray) -> None:
    """Same law, shared heading path, closeness and order in the law, into ``x``."""
    col = _COLUMNS
    same = np.zeros(rows.size, dtype=bool)
    shared = np.zeros(rows.size)
    equal = np.zeros(rows.size)
    near = np.zeros(rows.size)
    after = np.zeros(rows.size)
    for s in seeds:
        if st.law[s] < 0:
            continue
        here = st.law[rows] == st.law[s]
        same |= here
        d = int(st.depth[s])
        if d:
            match = np.cumprod(st.prefixes[rows, :d] == st.prefixes[s, :d], axis=1).sum(axis=1)
            shared = np.maximum(shared, match / d)
            equal = np.maximum(equal, (match == d) & (st.depth[rows] == d))
        distance = np.abs(rows - s).astype(np.float64)
        near = np.maximum(near, np.where(here, 1.0 / np.maximum(distance, 1.0), 0.0))
        after = np.maximum(after, here & (rows > s))
    x[:, col["same_law"]] = same
    x[:, col["heading_shared"]] = shared
    x[:, col["heading_equal"]] = equal
    x[:, col["position_near"]] = near
    x[:, col["position_after"]] = after
    with np.errstate(divide="ignore"):
        x[:, col["position_log"]] = np.where(
            near > 0, np.maximum(0.0, 1.0 - np.log(1.0 / np.maximum(near, 1e-9)) / math.log(POSITION_HORIZON)), 0.0)


def keyword_cosine(model: Model, seeds: Sequence[int], rows: np.ndarray) -> np.ndarray:
    """Cosine of each row's TF-IDF keyword weights (its stored best keywords) with the seeds' summed ones."""
    keywords = model.doc_keywords
    mine = csr_rows(keywords.indptr, list(seeds))
    seed_terms, where = np.unique(keywords.terms[mine.positions], return_inverse=True)
    seed_weights = np.bincount(where, weights=keywords.weights[mine.positions].astype(np.float64))
    seed_norm = float(np.sqrt((seed_weights ** 2).sum()))
    at = csr_rows(keywords.indptr, rows.tolist())
    if seed_norm == 0 or at.positions.size == 0:
        return np.zeros(rows.size)
    terms = keywords.terms[at.positions]
    weights = keywords.weights[at.positions].astype(np.float64)
    owner = np.repeat(np.arange(rows.size), np.diff(at.bounds))
    i = np.minimum(np.searchsorted(seed_terms, terms), seed_terms.size - 1)
    dot = np.bincount(owner, weights=np.where(seed_terms[i] == terms, weights * seed_weights[i], 0.0),
                      minlength=rows.size)
    norm = np.sqrt(np.bincount(owner, weights=weights ** 2, minlength=rows.size))
    return np.where(norm > 0, dot / np.maximum(norm, 1e-12) / seed_norm, 0.0)


@dataclass(frozen=True)
class Candidates:
    """The candidate rows of one request (sorted), their features (``FEATURE_NAMES`` columns), per row a bit
    mask of the signals that proposed it (bit i: ``SIGNALS[i]``), and the signals' evidence (``reasons``)."""

    rows: np.ndarray
    features: np.ndarray
    sources: np.ndarray
    found: Evidence


def candidates(model: Model, seeds: Sequence[int], negative: Sequence[int] = (),
               allowed: np.ndarray | None = None, signals: Sequence[str] = SIGNALS,
               exclude: set[int] | frozenset[int] = frozenset()) -> Candidates:
    """The union of each signal's best rows within ``allowed`` (None: all), without the seeds and ``exclude``."""
    found, parts = _gather(model, seeds, negative, allowed, signals)
    flat = [(SIGNALS.index(s), p) for s, ps in parts.items() for p in ps if p.size]
    rows = np.unique(np.concatenate([p for _, p in flat])) if flat else np.zeros(0, np.int64)
    drop = set(seeds) | set(negative) | set(exclude)
    if drop and rows.size:
        rows = rows[~np.isin(rows, np.fromiter(drop, dtype=np.int64))]
    if allowed is not None and rows.size:
        rows = rows[np.isin(rows, allowed)]
    sources = np.zeros(rows.size, dtype=np.uint8)
    for bit, p in flat:
        sources[np.isin(rows, p)] |= np.uint8(1 << bit)
    return Candidates(rows, features_of(model, seeds, rows, found), sources, found)


def rank_related(model: Model, fusion: Fusion, seeds: Sequence[int], negative: Sequence[int] = (),
                 allowed: np.ndarray | None = None, exclude: set[int] | frozenset[int] = frozenset()) -> (
    tuple[Related, Evidence]
):
    """The candidates ranked by the fusion (score desc, then row)."""
    found = candidates(model, seeds, negative, allowed, fusion.signals, exclude)
    scores = fusion.score(found.features)
    order = np.lexsort((found.rows, -scores))
    return Related(found.rows[order], found.features[order], scores[order]), found.found


def reasons(model: Model, seeds: Sequence[int], row: int, found: Evidence) -> list[str]:
    """Why ``row`` is related to the seeds, per signal that holds for it, in words.

    Read off the evidence and the structure columns for the one row: the conditions are those of the features'
    structure and citation columns (``features_of``) being non-zero, without building them for a page."""
    out: list[str] = []
    if row in found.citing:
        out.append("cites the seed")
    if row in found.cited:
        out.append("cited by the seed")
    co = round(found.co.get(row, 0.0))
    if co:
        out.append(f"cited together with the seed by {co} document{'s' if co != 1 else ''}")
    if found.shared.get(row, 0.0) > 0:
        out.append("cites what the seed cites")
    st = structure_of(model)
    law = int(st.law[row])
    # as in _structure_columns: only seeds within a law count for the law and its headings
    within = [s for s in seeds if int(st.law[s]) >= 0]
    same = [s for s in within if int(st.law[s]) == law]
    level = _shared_level(st, within, row)
    if level:
        out.append(level)
    elif same:
        out.append(f"same law: {model.documents.field_value('law', row)}")
    if same:
        distance = min(abs(row - s) for s in same)
        out.append("next section in the law" if distance == 1 else f"{distance} sections away in the law")
    together = int(found.feedback.get(row, 0))
    if together:
        out.append(f"answered together with the seed in {together} question{'s' if together != 1 else ''}")
    return out


def _shared_level(st: Structure, seeds: Sequence[int], row: int) -> str | None:
    """"same Titel: Mietvertrag, Pachtvertrag": the deepest heading the row shares with a seed."""
    best: tuple[int, str] | None = None
    for s in seeds:
        d = int(st.depth[s])
        # the leading headings in common; a loop over the few levels costs less than numpy's calls
        match = 0
        for a, b in zip(st.prefixes[row, :d].tolist(), st.prefixes[s, :d].tolist(), strict=True):
            if a != b:
                break
            match += 1
        if match and (best is None or match > best[0]):
            best = (match, st.components[int(st.heading[s])][match - 1])
    if best is None:
        return None
    level, sep, title = best[1].partition(" - ")
    name = heading_level(level)
    if not sep:
        return f"same heading: {best[1]}"
    return f"same {name or 'heading'}: {title}"


def heading_level(label: str) -> str | None:
    """The level a heading's label names: "Abschnitt" for "Abschnitt 8", "Erster Abschnitt", "1. Abschnitt" and
    "Abschnitt XVI" (the label's last word of two or more letters that is no roman numeral), None for a label
    without one ("§ 5", "II.")."""
    words = [w for w in label.split() if len(w) > 1 and w.isalpha() and not _ROMAN.fullmatch(w)]
    return words[-1] if words else None


_ROMAN = re.compile("[IVXLCDM]+")


#: rows per progress step while precomputing the related table
_PROGRESS_STEP = 1000


def precompute_related(model: Model, fusion: Fusion, width: int, progress: bool = False) -> (
    tuple[NeighbourTable, np.ndarray]
):
    """Every document's ``width`` best related rows by ``fusion`` (unfiltered, one seed), -1 padded, and each
    slot's signal parts (``contribution_matrix``, float32, 0 in padding): what ``/recommend`` by one id without
    filters reads instead of ranking its candidates and scoring the page's trees once per signal."""
    from tqdm import tqdm

    n = len(model.documents)
    rows = np.full((n, width), -1, dtype=np.int32)
    scores = np.full((n, width), -np.inf, dtype=np.float32)
    parts = np.zeros((n, width, len(fusion.signals)), dtype=np.float32)
    for row in tqdm(range(n), desc="related", unit="doc", disable=not progress, miniters=_PROGRESS_STEP):
        related, _ = rank_related(model, fusion, [row])
        top = min(width, related.rows.size)
        rows[row, :top] = related.rows[:top]
        scores[row, :top] = related.scores[:top]
        if top:
            parts[row, :top] = contribution_matrix(fusion, related.features[:top])
    return NeighbourTable(rows, scores), parts


def save_related_parts(folder: Path, parts: np.ndarray) -> Path:
    """Write the related table's signal parts beside it."""
    path = folder / RELATED_PARTS_FILE
    np.save(path, parts)
    return path


def load_related_parts(folder: Path, n_docs: int, mmap: bool = True) -> np.ndarray | None:
    """The related table's signal parts (documents x slots x signals), or None for a model fitted without."""
    path = folder / RELATED_PARTS_FILE
    if not path.exists():
        return None
    parts = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if parts.ndim != 3 or parts.shape[0] != n_docs:
        raise ArtifactError(f"{path}: shape {parts.shape} does not hold {n_docs} documents' slots and signals")
    return parts
