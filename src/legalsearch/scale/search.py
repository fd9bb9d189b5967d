"""Search over a sharded model: each shard returns its candidates, the front merges them and fuses them with
``ranking``'s own functions, as ``ranking.rank`` and ``ranking.search`` do on one node.

Why the answers equal the single-node ones: a shard is a contiguous range of the single-node rows and scores BM25
with the collection's statistics (``scale.bm25``), so a document's lexical and embedding scores are the ones the
single-node model computes. Each shard returns its best ``pool`` rows by BM25 and its best ``embedding`` rows by
the index, with both scores of each; the collection's best rows by each side are among them. The front takes the
best of the union by each side, as one node would, then z-scores and fuses those candidates (``score_parts``,
``fuse``) and orders them as ``rank`` does. Differences can only come from ties at the cut of a candidate list
(one node breaks them arbitrarily, ``ranking.candidates._top_rows``) and from float rounding of the
document-vector products.

Not served by shards yet: sections named in the query ranked first (the citation graph is collection-wide),
facets, feedback signals, and /recommend by seed documents.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from legalsearch import ranking
from legalsearch.docstore import FilterValue
from legalsearch.docvectors import text_vector
from legalsearch.engine import Model
from legalsearch.errors import ArtifactError, InvalidRequestError
from legalsearch.index import search_index
from legalsearch.model import resolve_model_dir, verify_model
from legalsearch.ranking.candidates import _allowed_rows, _top_rows, _union
from legalsearch.ranking.explain import _explain, _marked_ids, _request_ids, _snippets
from legalsearch.ranking.fusion import _score_parts, _sum
from legalsearch.scale.build import LAYOUT
from legalsearch.types import Keyword, SearchHit


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
    #: filter fields this shard's documents do not have (it then matches none): unknown to every shard, a field
    #: is an invalid request, as on one node
    unknown_fields: tuple[str, ...] = ()


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
                     qvec: np.ndarray, pool: int, emb_k: int,
                     filters: Mapping[str, FilterValue] | None) -> Candidates:
    """A shard's part of ``ranking.score_candidates`` (hybrid mode): its best ``pool`` rows by BM25 and its best
    ``emb_k`` rows by the index, within the filters. ``counts``: the query tokens' counts by lexical id (for the
    rows of lexical profiles that weigh query terms otherwise)."""
    n = len(model.documents)
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    unknown = tuple(f for f in (filters or {}) if f not in model.documents.fields)
    allowed = _allowed_rows(model, filters, ()) if not unknown else np.zeros(0, dtype=np.int64)
    if allowed is not None and allowed.size == 0:
        return Candidates(empty_i, np.zeros(0, np.float32), np.zeros(0, np.float32), empty_f, empty_i, empty_f,
                          unknown)
    lex_scores = model.lexical.scores_of_ids(lex_terms, counts if model.lexical.reweights else None)
    if allowed is not None:
        lex_ranked = np.full(n, -np.inf, dtype=np.float32)
        lex_ranked[allowed] = lex_scores[allowed]
    else:
        lex_ranked = lex_scores
    found = [_top_rows(lex_ranked, min(n, pool))]
    emb_rows, emb_scores = empty_i, empty_f
    if float(np.linalg.norm(qvec)) > 0:
        hits = search_index(model.index, qvec[None, :], min(n, emb_k), allowed_rows=allowed, ordered=False)
        keep = hits.rows[0] >= 0
        emb_rows = hits.rows[0][keep].astype(np.int64)
        emb_scores = hits.scores[0][keep].astype(np.float64)
        found.append(emb_rows)
    rows = _union(found)
    emb = (np.asarray(model.docvectors[rows], dtype=np.float32) @ qvec).astype(np.float64)
    return Candidates(rows + offset, lex_scores[rows], lex_ranked[rows], emb, emb_rows + offset, emb_scores)


def shard_hits(model: Model, local_rows: Sequence[int], marks: Mapping[int, str],
               request_ids: Mapping[int, float]) -> list[HitParts]:
    """The parts of the hits of a shard's rows, as ``ranking.search`` builds them."""
    rows = list(local_rows)
    records = [model.documents.record(row) for row in rows]
    snippets = _snippets(model, rows, [r["text"] for r in records], _marked_ids(dict(marks)),
                         model.config.search.snippet_chars)
    explained = _explain(model, rows, request_ids)
    return [HitParts(r["id"], r["title"], r["type"], r["metadata"], s.html, s.matched, e)
            for r, s, e in zip(records, snippets, explained, strict=True)]


class Shard(Protocol):
    """A shard as the front calls it: in this process (``LocalShard``) or a Ray Serve deployment."""

    def candidates(self, lex_terms: Mapping[int, float], counts: Mapping[int, int], qvec: np.ndarray, pool: int,
                   emb_k: int, filters: Mapping[str, FilterValue] | None) -> Candidates: ...

    def hits(self, local_rows: Sequence[int], marks: Mapping[int, str],
             request_ids: Mapping[int, float]) -> list[HitParts]: ...


@dataclass
class LocalShard:
    """A shard model loaded in this process."""

    model: Model
    offset: int

    def candidates(self, lex_terms: Mapping[int, float], counts: Mapping[int, int], qvec: np.ndarray, pool: int,
                   emb_k: int, filters: Mapping[str, FilterValue] | None) -> Candidates:
        return shard_candidates(self.model, self.offset, lex_terms, counts, qvec, pool, emb_k, filters)

    def hits(self, local_rows: Sequence[int], marks: Mapping[int, str],
             request_ids: Mapping[int, float]) -> list[HitParts]:
        return shard_hits(self.model, local_rows, marks, request_ids)


def read_layout(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """A sharded version folder (or the ``current`` one of a models folder), verified, and its manifest."""
    folder = resolve_model_dir(Path(path)) if not (Path(path) / "manifest.json").exists() else Path(path)
    manifest = verify_model(folder)
    if manifest.get("layout") != LAYOUT:
        raise ArtifactError(f"{folder} is not a sharded model (train it with --ray ... --shards K)")
    return folder, manifest


def collection_front(model: Model, df: np.ndarray, n_docs: int) -> Model:
    """A shard's model as the front of the collection: its lexical index answers the collection's document
    frequencies and size (query expansion drops expansions that are too common in the collection), while its
    postings stay the shard's (the front never scores with them)."""
    lexical = copy.copy(model.lexical)
    lexical._df = np.asarray(df, dtype=np.int64)
    lexical.n_docs = int(n_docs)
    return dataclasses.replace(model, lexical=lexical)


def collection_df(models: Sequence[Model]) -> np.ndarray:
    """The collection's document frequency per lexical term id: the sum of the shards' (same term ids)."""
    total = np.zeros(models[0].lexical.n_terms, dtype=np.int64)
    for m in models:
        total += np.diff(np.asarray(m.lexical.retriever.scores["indptr"])).astype(np.int64)
    return total


@dataclass
class Loaded:
    """A sharded version loaded in this process: its shards, the front, the collection's size."""

    folder: Path
    manifest: dict[str, Any]
    shards: list[LocalShard]
    front: Model
    n_docs: int

    @property
    def offsets(self) -> list[int]:
        return [s.offset for s in self.shards]

    def search(self, query: str, k: int = 10, offset: int = 0, filters: Mapping[str, FilterValue] | None = None,
               expand: bool = True) -> ranking.SearchResult:
        return search(self.front, self.shards, self.offsets, query, k, offset, filters, expand, n_docs=self.n_docs)


def load_shards(path: str | Path) -> Loaded:
    """Every shard of a sharded version, loaded here (each verified against the hash the top manifest lists)."""
    folder, manifest = read_layout(path)
    shards = [LocalShard(Model.load(folder / entry["path"], manifest_sha256=entry["manifest_sha256"]),
                         int(entry["rows"][0])) for entry in manifest["shards"]]
    n_docs = int(manifest["counts"]["documents"])
    front = collection_front(shards[0].model, collection_df([s.model for s in shards]), n_docs)
    return Loaded(folder, manifest, shards, front, n_docs)


def query_counts(front: Model, tokens: Sequence[str]) -> dict[int, int]:
    """The query tokens' counts by lexical id (``ranking.candidates._token_counts``, for every shard: whether a
    shard's profiles reweigh depends on the document types it holds)."""
    vocab = front.lexical.vocab
    counts: dict[int, int] = {}
    for t in tokens:
        if (i := vocab.get(t)) is not None:
            counts[i] = counts.get(i, 0) + 1
    return counts


def merge(parts: Sequence[Candidates], pool: int, emb_k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The collection's candidates from its shards': the best ``pool`` by BM25 and the best ``emb_k`` by the
    index among them (ties to the lower row); their rows (sorted), lexical and embedding scores."""
    rows = np.concatenate([p.rows for p in parts])
    lex = np.concatenate([p.lex for p in parts])
    lex_ranked = np.concatenate([p.lex_ranked for p in parts])
    emb = np.concatenate([p.emb for p in parts])
    order = np.argsort(rows, kind="stable")
    rows, lex, lex_ranked, emb = rows[order], lex[order], lex_ranked[order], emb[order]
    found = [rows[_top_rows(lex_ranked, pool)]] if rows.size else []
    emb_rows = np.concatenate([p.emb_rows for p in parts])
    if emb_rows.size:
        emb_scores = np.concatenate([p.emb_scores for p in parts])
        found.append(emb_rows[np.lexsort((emb_rows, -emb_scores))[:emb_k]])
    chosen = _union(found) if found else np.zeros(0, dtype=np.int64)
    at = np.searchsorted(rows, chosen)
    return chosen, lex[at].astype(np.float64), emb[at]


def search(front: Model, shards: Sequence[Shard], offsets: Sequence[int], query: str, k: int = 10,
           offset: int = 0, filters: Mapping[str, FilterValue] | None = None, expand: bool = True,
           *, n_docs: int) -> ranking.SearchResult:
    """``ranking.search`` (hybrid mode) over shards; ``front`` is a shard's model as the collection's front
    (``collection_front``: preprocessing, phrases, keywords, word vectors, expansions and the lexical vocabulary are
    the same in all shards, document frequencies are the collection's);
    ``n_docs`` the collection's size (the top manifest's ``counts``)."""
    if k < 1 or offset < 0:
        raise InvalidRequestError("k must be at least 1 and offset at least 0")
    cfg = front.config.search
    want = offset + k
    analysis = ranking.analyze_text(front, query)
    lex_terms, marks, expanded = ranking.lexical_query(front, analysis, expand)
    qvec = text_vector({kw.term: kw.weight for kw in analysis.keywords}, front.vectors)
    n = int(n_docs)
    pool = min(n, max(cfg.candidates, want))
    emb_k = min(pool, max(cfg.embedding_candidates, want))
    counts = query_counts(front, analysis.tokens)
    parts = [s.candidates(lex_terms, counts, qvec, pool, emb_k, filters) for s in shards]
    unknown = set.intersection(*(set(p.unknown_fields) for p in parts)) if parts else set()
    if unknown:
        raise InvalidRequestError(f"unknown filter field {sorted(unknown)[0]!r}")
    rows, lex, emb = merge(parts, pool, emb_k)
    if rows.size == 0:
        return ranking.SearchResult((), analysis.tokens, expanded, front.version, None)
    first = np.zeros(rows.size, dtype=np.int64)
    scored = ranking.Scored(rows, lex, emb, _score_parts(front, "hybrid", lex, emb), None, None, first,
                            np.zeros(0, dtype=np.float32), {})
    fused = _sum(ranking.fuse(front, scored, "hybrid"))
    order = np.lexsort((rows, -fused, first))[:want]
    page = order[offset:]
    page_rows = rows[page]
    request_ids = _request_ids(front, {kw.term: kw.weight for kw in analysis.keywords})
    starts = np.asarray(offsets, dtype=np.int64)
    owner = np.searchsorted(starts, page_rows, side="right") - 1
    parts_by_row: dict[int, HitParts] = {}
    for s in sorted(set(owner.tolist())):
        mine = page_rows[owner == s]
        for row, hp in zip(mine.tolist(), shards[s].hits((mine - starts[s]).tolist(), marks, request_ids),
                           strict=True):
            parts_by_row[row] = hp
    hits = tuple(
        SearchHit(doc_id=hp.doc_id, score=round(float(fused[i]), 6), title=hp.title, type=hp.type,
                  metadata=hp.metadata, snippet=hp.snippet, matched_terms=hp.matched,
                  lexical_score=round(float(lex[i]), 6), embedding_score=round(float(emb[i]), 6),
                  keywords=hp.keywords, cited_in_query=None)
        for i in page.tolist() for hp in [parts_by_row[int(rows[i])]]
    )
    return ranking.SearchResult(hits, analysis.tokens, expanded, front.version, None)
