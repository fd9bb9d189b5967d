"""Search and recommendations over a sharded model: each shard returns its candidates, the front merges them
and fuses them with ``ranking``'s own functions, as ``ranking.rank``, ``ranking.search`` and ``ranking.recommend``
do on one node.

What lives where. A shard (``shards/<k>/``, a contiguous range of the single-node rows) holds what a query scores
or renders per document: its BM25 postings (with the collection's statistics, ``scale.bm25``), FAISS index,
document vectors, documents and snippet index. The front (``global/``) holds what is collection-wide: the query's
analysis (phrases, keywords, word vectors, expansions), the collection's document frequencies, the citation
graph (sections a query names), the document store's metadata (filters, facets, structure, near-duplicates) and the
document vectors (seed queries and the few rows a page explains), all memory-mapped, read only where a request
needs them.

Why the answers equal the single-node ones: a document's lexical and embedding scores are the ones the single-node
model computes. Each shard returns its best ``pool`` rows by BM25 and its best ``emb_k`` rows by the index, with
both scores of each, and the named sections it holds; the collection's best rows by each side are among them. The
front takes the best of the union by each side, as one node would, then z-scores and fuses those candidates
(``fusion._score_parts``, ``fuse``) and orders them as ``rank`` does. Differences can only come from ties at the
cut of a candidate list (one node breaks them arbitrarily, ``ranking.candidates._top_rows``).

Not served by shards yet: the feedback signals (a model trained with ``--feedback``) and the fitted /recommend
fusion (``fit-recommend``): a sharded build trains neither.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from legalsearch import ranking, relatedness
from legalsearch.citegraph import CitationGraph, named_sections
from legalsearch.config import config_from_dict
from legalsearch.docstore import DocumentStore, FilterValue, check_facets
from legalsearch.docvectors import load_docvectors, text_vector
from legalsearch.embeddings import load_vectors, thesaurus_folders
from legalsearch.engine import Model
from legalsearch.errors import ArtifactError, EmptyQueryError, InvalidRequestError, UnknownDocumentError
from legalsearch.expansion import ExpansionTable
from legalsearch.index import IDS_FILE, LoadedIndex, search_index
from legalsearch.keywords import PHRASE_JOINER, DocumentKeywords, KeywordModel, PhraseModel
from legalsearch.lexical import LEXICAL_DIR, load_lexical_index
from legalsearch.model import MANIFEST_NAME, resolve_model_dir, verify_model
from legalsearch.neighbours import seed_query
from legalsearch.ranking.candidates import _allowed_rows, _top_rows, _union
from legalsearch.ranking.explain import (
    _explain,
    _marked_ids,
    _marked_keywords,
    _request_ids,
    _request_keywords,
    _snippets,
)
from legalsearch.ranking.fusion import _score_parts, _sum
from legalsearch.ranking.recommend import _collapse
from legalsearch.ranking.search import _facets
from legalsearch.scale.build import GLOBAL_DIR, LAYOUT
from legalsearch.text import Preprocessor
from legalsearch.types import Keyword, Recommendation, SearchHit


@dataclass(frozen=True)
class Candidates:
    """One shard's candidates for a query, by collection row (sorted), with both scores of each."""

    rows: np.ndarray
    lex: np.ndarray
    #: the lexical scores with -inf outside the filters (what the top list is taken from)
    lex_ranked: np.ndarray
    emb: np.ndarray
    #: the index's hits (collection rows) and scores: the embedding side's candidates
    emb_rows: np.ndarray
    emb_scores: np.ndarray
    #: the sections the query names that this shard holds and the filters let through (collection rows)
    named: tuple[int, ...] = ()
    #: with ``matched``: the shard's rows of a positive lexical score within the filters (``np.packbits``)
    matched: np.ndarray | None = None


@dataclass(frozen=True)
class HitParts:
    """What a shard adds to one hit: its record, snippet, matched terms and shared keywords."""

    doc_id: str
    title: str
    type: str
    metadata: dict[str, Any]
    snippet: str
    matched: tuple[str, ...]
    keywords: tuple[Keyword, ...]


def shard_candidates(model: Model, offset: int, lex_terms: Mapping[int, float], counts: Mapping[int, int],
                     qvec: np.ndarray, pool: int, emb_k: int, filters: Mapping[str, FilterValue] | None,
                     named: Sequence[int] = (), matched: bool = False, mode: str = "hybrid") -> Candidates:
    """A shard's part of ``ranking.score_candidates`` (hybrid mode): its best ``pool`` rows by BM25 and its best
    ``emb_k`` rows by the index, within the filters, and the rows of ``named`` (collection rows) it holds.
    ``counts``: the query tokens' counts by lexical id (for the rows of lexical profiles that weigh query terms
    otherwise). A filter field this shard's documents lack matches none of them (the front checks the field).
    ``mode``: "lexical" and "embedding" leave out the other side, as ``rank`` does in those modes."""
    n = len(model.documents)
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    known = all(f in model.documents.fields for f in (filters or {}))
    allowed = _allowed_rows(model, filters, ()) if known else np.zeros(0, dtype=np.int64)
    if allowed is not None and allowed.size == 0:
        return Candidates(empty_i, np.zeros(0, np.float32), np.zeros(0, np.float32), empty_f, empty_i, empty_f,
                          (), np.packbits(np.zeros(n, dtype=np.bool_)) if matched else None)
    lexical_side = mode != "embedding"
    lex_scores = (model.lexical.scores_of_ids(lex_terms, counts if model.lexical.reweights else None)
                  if lexical_side else np.zeros(n, np.float32))
    if allowed is not None:
        lex_ranked = np.full(n, -np.inf, dtype=np.float32)
        lex_ranked[allowed] = lex_scores[allowed]
    else:
        lex_ranked = lex_scores
    found = [_top_rows(lex_ranked, min(n, pool))] if lexical_side else []
    emb_rows, emb_scores = empty_i, empty_f
    if mode != "lexical" and float(np.linalg.norm(qvec)) > 0:
        hits = search_index(model.index, qvec[None, :], min(n, emb_k), allowed_rows=allowed, ordered=False)
        keep = hits.rows[0] >= 0
        emb_rows = hits.rows[0][keep].astype(np.int64)
        emb_scores = hits.scores[0][keep].astype(np.float64)
        found.append(emb_rows)
    mine = [r - offset for r in named if offset <= r < offset + n]
    if mine and allowed is not None:
        mine = [r for r, ok in zip(mine, np.isin(np.asarray(mine, dtype=np.int64), allowed).tolist(), strict=True)
                if ok]
    if mine:
        found.append(np.asarray(mine, dtype=np.int64))
    rows = _union(found) if found else empty_i
    emb = (np.asarray(model.docvectors[rows], dtype=np.float32) @ qvec).astype(np.float64)
    return Candidates(rows + offset, lex_scores[rows], lex_ranked[rows], emb, emb_rows + offset, emb_scores,
                      tuple(r + offset for r in mine), np.packbits(lex_ranked > 0) if matched else None)


def shard_similar(model: Model, offset: int, query: np.ndarray, fetch: int,
                  filters: Mapping[str, FilterValue] | None, exclude: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """A shard's part of /recommend by seed documents: its best ``fetch`` rows (collection rows) for the seeds'
    query vector, within the filters and without ``exclude`` (collection rows) when there are filters, as
    ``ranking.recommend`` asks its index; their scores."""
    n = len(model.documents)
    allowed = None
    if filters:
        if not all(f in model.documents.fields for f in filters):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        mine = [r - offset for r in exclude if offset <= r < offset + n]
        allowed = _allowed_rows(model, filters, mine)
        if allowed is not None and allowed.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    hits = search_index(model.index, query[None, :], min(n, fetch), allowed_rows=allowed)
    keep = hits.rows[0] >= 0
    return hits.rows[0][keep].astype(np.int64) + offset, hits.scores[0][keep]


def shard_hits(model: Model, local_rows: Sequence[int], marks: Mapping[int, str] | None,
               request_ids: Mapping[int, float]) -> list[HitParts]:
    """The parts of the hits of a shard's rows, as ``ranking.search`` and ``ranking.recommend`` build them: the
    snippets mark ``marks`` (lexical id -> term: a query's), or with None the request's keywords (``request_ids``,
    by keyword id: seed documents')."""
    rows = list(local_rows)
    marked = _marked_ids(marks) if marks is not None else _marked_keywords(model, request_ids)
    records = [model.documents.record(row) for row in rows]
    snippets = _snippets(model, rows, [r["text"] for r in records], marked, model.config.search.snippet_chars)
    explained = _explain(model, rows, request_ids)
    return [HitParts(r["id"], r["title"], r["type"], r["metadata"], s.html, s.matched, e)
            for r, s, e in zip(records, snippets, explained, strict=True)]


class Shard(Protocol):
    """A shard as the front calls it: in this process (``LocalShard``) or a Ray Serve deployment."""

    def candidates(self, lex_terms: Mapping[int, float], counts: Mapping[int, int], qvec: np.ndarray, pool: int,
                   emb_k: int, filters: Mapping[str, FilterValue] | None, named: Sequence[int],
                   matched: bool, mode: str) -> Candidates: ...

    def similar(self, query: np.ndarray, fetch: int, filters: Mapping[str, FilterValue] | None,
                exclude: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...

    def hits(self, local_rows: Sequence[int], marks: Mapping[int, str] | None,
             request_ids: Mapping[int, float]) -> list[HitParts]: ...


@dataclass
class LocalShard:
    """A shard model loaded in this process."""

    model: Model
    offset: int

    def candidates(self, lex_terms: Mapping[int, float], counts: Mapping[int, int], qvec: np.ndarray, pool: int,
                   emb_k: int, filters: Mapping[str, FilterValue] | None, named: Sequence[int] = (),
                   matched: bool = False, mode: str = "hybrid") -> Candidates:
        return shard_candidates(self.model, self.offset, lex_terms, counts, qvec, pool, emb_k, filters, named,
                                matched, mode)

    def similar(self, query: np.ndarray, fetch: int, filters: Mapping[str, FilterValue] | None,
                exclude: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return shard_similar(self.model, self.offset, query, fetch, filters, exclude)

    def hits(self, local_rows: Sequence[int], marks: Mapping[int, str] | None,
             request_ids: Mapping[int, float]) -> list[HitParts]:
        return shard_hits(self.model, local_rows, marks, request_ids)


def read_layout(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """A sharded version folder (or the ``current`` one of a models folder), verified, and its manifest."""
    folder = resolve_model_dir(Path(path)) if not (Path(path) / MANIFEST_NAME).exists() else Path(path)
    manifest = verify_model(folder)
    if manifest.get("layout") != LAYOUT:
        raise ArtifactError(f"{folder} is not a sharded model (train it with --ray ... --shards K)")
    return folder, manifest


def is_sharded(path: str | Path) -> bool:
    """Whether a version folder (or a models folder's ``current`` one) is a sharded model, without verifying."""
    try:
        folder = resolve_model_dir(Path(path)) if not (Path(path) / MANIFEST_NAME).exists() else Path(path)
        return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8")).get("layout") == LAYOUT
    except (OSError, ValueError, ArtifactError):
        return False


def load_front(folder: Path, manifest: Mapping[str, Any]) -> Model:
    """The front of a sharded version (already verified): a ``Model`` of ``global/`` that analyses queries, names
    sections, filters, counts facets and explains, with the collection's ids, lexical vocabulary and document
    frequencies; it has no index, postings or snippets of its own (the shards have them)."""
    gdir = folder / GLOBAL_DIR
    gmanifest = json.loads((gdir / MANIFEST_NAME).read_text(encoding="utf-8"))
    config = config_from_dict(manifest["config"])
    n = int(manifest["counts"]["documents"])
    ids: list[str] = []
    df: np.ndarray | None = None
    lexical = None
    for entry in manifest["shards"]:
        sdir = folder / entry["path"]
        ids.extend((sdir / IDS_FILE).read_text(encoding="utf-8").splitlines())
        shard_lexical = load_lexical_index(sdir / LEXICAL_DIR)
        part = np.diff(np.asarray(shard_lexical.retriever.scores["indptr"])).astype(np.int64)
        df = part if df is None else df + part
        lexical = lexical or shard_lexical
    assert lexical is not None and df is not None  # a sharded version has at least one shard
    if len(ids) != n:
        raise ArtifactError(f"{folder}: the shards list {len(ids)} ids for {n} documents")
    # the collection's document frequencies and size: query expansion drops expansions too common in the
    # collection; the postings stay the first shard's, and the front never scores with them
    lexical = copy.copy(lexical)
    lexical._df = df
    lexical.n_docs = n
    vectors = load_vectors(gdir)
    keyword_model = KeywordModel.load(gdir)
    docvectors = load_docvectors(gdir)
    return Model(
        path=folder, manifest=dict(manifest), config=config, documents=DocumentStore(gdir),
        index=LoadedIndex(None, tuple(ids), {doc_id: row for row, doc_id in enumerate(ids)}, "shards"),
        lexical=lexical, vectors=vectors, keyword_model=keyword_model,
        doc_keywords=DocumentKeywords.load(gdir), phrases=PhraseModel.load(gdir), docvectors=docvectors,
        preprocessor=Preprocessor(config.preprocess),
        expansions=ExpansionTable.load(gdir, vectors, keyword_model, config.search.expansion_width),
        thesaurus=tuple(load_vectors(gdir / sub) for sub in thesaurus_folders(gmanifest)),
        citations=CitationGraph.load(gdir, n),
    )


@dataclass
class Loaded:
    """A sharded version loaded in this process: its front and shards."""

    folder: Path
    manifest: dict[str, Any]
    shards: list[LocalShard]
    front: Model

    @property
    def offsets(self) -> list[int]:
        return [s.offset for s in self.shards]

    def search(self, query: str, k: int = 10, offset: int = 0, filters: Mapping[str, FilterValue] | None = None,
               expand: bool = True, mode: str = "hybrid", facets: Sequence[str] = (),
               facet_limit: int = 20) -> ranking.SearchResult:
        return search(self.front, self.shards, self.offsets, query, k, offset, filters, expand, mode, facets,
                      facet_limit)

    def recommend(self, **kwargs: Any) -> ranking.RecommendResult:
        return recommend(self.front, self.shards, self.offsets, **kwargs)


def load_shards(path: str | Path) -> Loaded:
    """A sharded version loaded here: the front and every shard (each verified against the hash the top
    manifest lists)."""
    folder, manifest = read_layout(path)
    shards = [LocalShard(Model.load(folder / entry["path"], manifest_sha256=entry["manifest_sha256"]),
                         int(entry["rows"][0])) for entry in manifest["shards"]]
    return Loaded(folder, manifest, shards, load_front(folder, manifest))


def query_counts(front: Model, tokens: Sequence[str]) -> dict[int, int]:
    """The query tokens' counts by lexical id (``ranking.candidates._token_counts``, for every shard: whether a
    shard's profiles reweigh depends on the document types it holds)."""
    vocab = front.lexical.vocab
    counts: dict[int, int] = {}
    for t in tokens:
        if (i := vocab.get(t)) is not None:
            counts[i] = counts.get(i, 0) + 1
    return counts


def merge(parts: Sequence[Candidates], pool: int, emb_k: int, named: Sequence[int]) -> (
    tuple[np.ndarray, np.ndarray, np.ndarray]
):
    """The collection's candidates from its shards': the best ``pool`` by BM25 and the best ``emb_k`` by the
    index among them (ties to the lower row), and the ``named`` rows; their rows (sorted), lexical and embedding
    scores."""
    rows = np.concatenate([p.rows for p in parts])
    lex = np.concatenate([p.lex for p in parts])
    lex_ranked = np.concatenate([p.lex_ranked for p in parts])
    emb = np.concatenate([p.emb for p in parts])
    order = np.argsort(rows, kind="stable")
    rows, lex, lex_ranked, emb = rows[order], lex[order], lex_ranked[order], emb[order]
    found = [rows[_top_rows(lex_ranked, pool)]] if rows.size and pool > 0 else []
    emb_rows = np.concatenate([p.emb_rows for p in parts])
    if emb_rows.size:
        emb_scores = np.concatenate([p.emb_scores for p in parts])
        found.append(emb_rows[np.lexsort((emb_rows, -emb_scores))[:emb_k]])
    if named:
        found.append(np.asarray(named, dtype=np.int64))
    chosen = _union(found) if found else np.zeros(0, dtype=np.int64)
    at = np.searchsorted(rows, chosen)
    return chosen, lex[at].astype(np.float64), emb[at]


def _check_filters(front: Model, filters: Mapping[str, FilterValue] | None) -> None:
    """The single node's error for a filter field no document has (shards only match none)."""
    for field in filters or {}:
        if field not in front.documents.fields:
            raise InvalidRequestError(
                f"unknown filter field {field!r}; filterable fields: {', '.join(front.documents.fields)}"
            )


def rank(front: Model, shards: Sequence[Shard], query: str, k: int = 10,
         filters: Mapping[str, FilterValue] | None = None, expand: bool = True, mode: str = "hybrid",
         matched: bool = False) -> ranking.Ranking:
    """``ranking.rank`` over shards: the same rows, scores, parts, named sections and matched rows."""
    if k < 1:
        raise InvalidRequestError("k must be at least 1")
    if mode not in ranking.MODES:
        raise InvalidRequestError(f"unknown search mode {mode!r} for this model; known: {', '.join(ranking.MODES)}")
    _check_filters(front, filters)
    cfg = front.config.search
    n = len(front.documents)
    analysis = ranking.analyze_text(front, query)
    lex_terms, marks, expanded = ranking.lexical_query(front, analysis, expand)
    qvec = text_vector({kw.term: kw.weight for kw in analysis.keywords}, front.vectors)
    pool = min(n, max(cfg.candidates, k))
    emb_k = min(pool, max(cfg.embedding_candidates, k))
    named_all = named_sections(front, query)
    counts = query_counts(front, analysis.tokens)
    parts = _each(shards, lambda _, s: s.candidates(lex_terms, counts, qvec, pool, emb_k, filters,
                                                    list(named_all), matched, mode))
    passed = {r for p in parts for r in p.named}
    named = {row: cite for row, cite in named_all.items() if row in passed}
    rows, lex, emb = merge(parts, pool if mode != "embedding" else 0, emb_k, list(named))
    mask = None
    if matched:
        sizes = [len(r) for r in _shard_sizes(front, parts)]
        mask = np.concatenate([np.unpackbits(p.matched, count=size).astype(np.bool_)
                               for p, size in zip(parts, sizes, strict=True) if p.matched is not None])
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return ranking.Ranking(np.zeros(0, dtype=np.int64), empty, empty, empty, analysis, expanded, marks,
                               np.zeros(n, dtype=np.bool_) if matched else None)
    first = np.full(rows.size, len(named), dtype=np.int64)
    for place, row in enumerate(named):
        first[np.searchsorted(rows, row)] = place
    scored = ranking.Scored(rows, lex, emb, _score_parts(front, mode, lex, emb), None, None, first,
                            np.zeros(0, dtype=np.float32), named)
    fused_parts = ranking.fuse(front, scored, mode)
    fused = _sum(fused_parts)
    order = np.lexsort((rows, -fused, first))[:k]
    if mask is not None:
        mask[rows] = True
    return ranking.Ranking(rows[order], fused[order], lex[order], emb[order], analysis, expanded, marks, mask, named,
                           {name: part[order] for name, part in fused_parts.items()})


def _shard_sizes(front: Model, parts: Sequence[Candidates]) -> list[range]:
    """Each shard's rows, from the front's offsets (``front.manifest['shards']``)."""
    bounds = [tuple(e["rows"]) for e in front.manifest["shards"]]
    if len(bounds) != len(parts):
        raise ArtifactError("the front and its shards disagree on the number of shards")
    return [range(lo, hi) for lo, hi in bounds]


def _offsets(front: Model) -> np.ndarray:
    return np.asarray([e["rows"][0] for e in front.manifest["shards"]], dtype=np.int64)


_T = TypeVar("_T")
_POOL: ThreadPoolExecutor | None = None


def _each(shards: Sequence[Shard], call: Callable[[int, Shard], _T]) -> list[_T]:
    """``call(i, shard)`` for every shard, in order. Shards in other processes (``remote``: Serve deployments) are
    called all at once from a thread pool, so that their work overlaps; shards in this process one by one."""
    global _POOL
    if len(shards) < 2 or not all(getattr(s, "remote", False) for s in shards):
        return [call(i, s) for i, s in enumerate(shards)]
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="shards")
    return list(_POOL.map(call, range(len(shards)), shards))


def _hit_parts(front: Model, shards: Sequence[Shard], rows: Sequence[int], marks: Mapping[int, str] | None,
               request_ids: Mapping[int, float]) -> dict[int, HitParts]:
    """Each page row's parts, from the shard that holds it."""
    starts = _offsets(front)
    page = np.asarray(rows, dtype=np.int64)
    owner = np.searchsorted(starts, page, side="right") - 1
    owners = sorted(set(owner.tolist()))
    mine = {k: page[owner == k] for k in owners}
    found = _each([shards[k] for k in owners],
                  lambda i, s: s.hits((mine[owners[i]] - starts[owners[i]]).tolist(), marks, request_ids))
    out: dict[int, HitParts] = {}
    for k, parts in zip(owners, found, strict=True):
        for row, hp in zip(mine[k].tolist(), parts, strict=True):
            out[row] = hp
    return out


def search(front: Model, shards: Sequence[Shard], offsets: Sequence[int], query: str, k: int = 10,
           offset: int = 0, filters: Mapping[str, FilterValue] | None = None, expand: bool = True,
           mode: str = "hybrid", facets: Sequence[str] = (), facet_limit: int = 20) -> ranking.SearchResult:
    """``ranking.search`` over shards (``offsets``: each shard's first row, as the front's manifest
    lists them)."""
    if k < 1 or offset < 0:
        raise InvalidRequestError("k must be at least 1 and offset at least 0")
    check_facets(facets)
    if list(offsets) != _offsets(front).tolist():
        raise ArtifactError("the shards' offsets differ from the front's manifest")
    ranked = rank(front, shards, query, offset + k, filters, expand, mode, matched=bool(facets))
    analysis = ranked.analysis
    request_ids = _request_ids(front, {kw.term: kw.weight for kw in analysis.keywords})
    page = ranked.rows[offset:].tolist()
    parts = _hit_parts(front, shards, page, ranked.marks, request_ids)
    hits = tuple(
        SearchHit(doc_id=hp.doc_id, score=round(score, 6), title=hp.title, type=hp.type, metadata=hp.metadata,
                  snippet=hp.snippet, matched_terms=hp.matched, lexical_score=round(lexical, 6),
                  embedding_score=round(embedding, 6), keywords=hp.keywords, cited_in_query=ranked.named.get(row))
        for row, score, lexical, embedding in zip(page, ranked.scores[offset:].tolist(),
                                                  ranked.lexical[offset:].tolist(),
                                                  ranked.embedding[offset:].tolist(), strict=True)
        for hp in [parts[row]]
    )
    counted = _facets(front, facets, ranked.matched, facet_limit) if ranked.matched is not None else None
    return ranking.SearchResult(hits, analysis.tokens, ranked.expanded_terms, front.version, counted)


def recommend(front: Model, shards: Sequence[Shard], offsets: Sequence[int], positive: Sequence[str] = (),
              negative: Sequence[str] = (), text: str | None = None, keywords: Sequence[str] = (), k: int = 10,
              offset: int = 0, filters: Mapping[str, FilterValue] | None = None, exclude: Sequence[str] = (),
              collapse: bool = True, facets: Sequence[str] = (), facet_limit: int = 20) -> ranking.RecommendResult:
    """``ranking.recommend`` over shards, for a model without a fitted fusion (a sharded build fits none):
    seed documents by word2vec similarity (each shard searches its index, the front merges), a text or keywords
    as ``search`` ranks them."""
    if k < 1 or offset < 0:
        raise InvalidRequestError("k must be at least 1 and offset at least 0")
    check_facets(facets)
    if list(offsets) != _offsets(front).tolist():
        raise ArtifactError("the shards' offsets differ from the front's manifest")
    given = bool(positive) + (text is not None) + bool(keywords)
    if given != 1:
        raise InvalidRequestError("give exactly one of: positive document ids, text, keywords")
    if not positive:
        query_text = text if text is not None else " ".join(t.replace(PHRASE_JOINER, " ") for t in keywords)
        return _recommend_by_query(front, shards, query_text, k, offset, filters, exclude, collapse, facets,
                                   facet_limit)
    rows_of = front.index.rows
    pos_rows = [rows_of[i] for i in positive if i in rows_of]
    neg_rows = [rows_of[i] for i in negative if i in rows_of]
    ignored = tuple(i for i in [*positive, *negative] if i not in rows_of)
    if not pos_rows:
        raise UnknownDocumentError(list(positive))
    query = seed_query(front.docvectors, pos_rows, neg_rows)
    seeds = front.doc_keywords.rows(pos_rows)
    vocabulary = front.keyword_model.vocabulary
    keyword_ids: dict[int, float] = {}
    for t, w in zip(seeds.terms, seeds.weights, strict=True):
        keyword_ids[t] = keyword_ids.get(t, 0.0) + w / len(pos_rows)
    request = {vocabulary[t]: w for t, w in keyword_ids.items()}
    if not query.any():
        raise EmptyQueryError("none of the request's terms is known to the model")
    exclude_rows = set(pos_rows + neg_rows) | {rows_of[i] for i in exclude if i in rows_of}
    if filters:
        _check_filters(front, filters)
        allowed = _allowed_rows(front, filters, exclude_rows)
        if allowed is not None and allowed.size == 0:
            return ranking.RecommendResult((), ignored, front.version, (),
                                           _facets(front, facets, np.zeros(0, dtype=np.int64), facet_limit))
    want = offset + k
    fetch = want * 2 + len(exclude_rows) + 10
    excluded = sorted(exclude_rows)
    found = _each(shards, lambda _, s: s.similar(query, fetch, filters, excluded))
    all_rows = np.concatenate([f[0] for f in found])
    all_scores = np.concatenate([f[1] for f in found])
    best = np.lexsort((all_rows, -all_scores))[:fetch]
    hit_rows = all_rows[best].tolist()
    scores = dict(zip(hit_rows, all_scores[best].tolist(), strict=True))
    rows = [r for r in hit_rows if r not in exclude_rows]
    if collapse:
        rows = _collapse(front, rows)
    counted = _facets(front, facets, np.asarray(rows, dtype=np.int64), facet_limit)
    page = rows[offset:want]
    results = _seed_results(front, shards, pos_rows, page, scores, keyword_ids)
    return ranking.RecommendResult(results, ignored, front.version, _request_keywords(request), counted)


def _seed_results(front: Model, shards: Sequence[Shard], pos_rows: list[int], page: list[int],
                  scores: dict[int, float], keyword_ids: dict[int, float]) -> tuple[Recommendation, ...]:
    """A page of recommendations for seed documents, with the single node's reasons (structure, citations)."""
    parts = _hit_parts(front, shards, page, None, keyword_ids)
    evidence = relatedness.page_evidence(front, pos_rows, page, ("structure", "citations", "feedback"))
    return tuple(
        Recommendation(
            doc_id=hp.doc_id, score=round(scores[row], 6), title=hp.title, type=hp.type, metadata=hp.metadata,
            snippet=hp.snippet, keywords=hp.keywords,
            reasons=tuple(relatedness.reasons(front, pos_rows, row, evidence)),
            signals={"word2vec": round(scores[row], 6)},
        )
        for row in page for hp in [parts[row]]
    )


def _recommend_by_query(front: Model, shards: Sequence[Shard], query: str, k: int, offset: int,
                        filters: Mapping[str, FilterValue] | None, exclude: Sequence[str], collapse: bool,
                        facets: Sequence[str], facet_limit: int) -> ranking.RecommendResult:
    """``ranking.recommend._recommend_by_query`` over shards."""
    rows_of = front.index.rows
    exclude_rows = {rows_of[i] for i in exclude if i in rows_of}
    want = offset + k
    ranked = rank(front, shards, query, want * 2 + len(exclude_rows) + 10, filters, matched=bool(facets))
    if ranked.rows.size == 0 and not ranked.marks:
        raise EmptyQueryError("none of the request's terms is known to the model")
    at = {row: i for i, row in enumerate(ranked.rows.tolist())}
    rows = [row for row in at if row not in exclude_rows]
    if collapse:
        rows = _collapse(front, rows)
    counted = None
    if ranked.matched is not None:
        matched = ranked.matched
        if exclude_rows:
            matched = matched.copy()
            matched[np.fromiter(exclude_rows, dtype=np.int64)] = False
        counted = _facets(front, facets, matched, facet_limit)
    page = rows[offset:want]
    request = {kw.term: kw.weight for kw in ranked.analysis.keywords}
    parts = _hit_parts(front, shards, page, ranked.marks, _request_ids(front, request))
    results = tuple(
        Recommendation(
            doc_id=hp.doc_id, score=round(float(ranked.scores[at[row]]), 6), title=hp.title, type=hp.type,
            metadata=hp.metadata, snippet=hp.snippet, keywords=hp.keywords,
            reasons=(f"named in the request: {ranked.named[row]}",) if row in ranked.named else (),
            signals={name: round(float(part[at[row]]), 6) for name, part in ranked.parts.items()},
        )
        for row in page for hp in [parts[row]]
    )
    return ranking.RecommendResult(results, (), front.version, _request_keywords(request), counted)
