"""Recommendations: documents related to seed documents (fused signals or word2vec), a text or keywords."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from legalsearch import budget, relatedness
from legalsearch.docstore import FilterValue, check_facets
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError, InvalidRequestError, UnknownDocumentError
from legalsearch.index import search_index
from legalsearch.keywords import PHRASE_JOINER
from legalsearch.neighbours import seed_query
from legalsearch.ranking.candidates import _allowed_rows
from legalsearch.ranking.explain import (
    _explain,
    _Marked,
    _marked_keywords,
    _ranking_marked,
    _request_ids,
    _request_keywords,
    _snippet_html,
)
from legalsearch.ranking.results import RecommendResult
from legalsearch.ranking.search import _facets, rank
from legalsearch.types import Recommendation


def recommend(
    model: Model,
    positive: Sequence[str] = (),
    negative: Sequence[str] = (),
    text: str | None = None,
    keywords: Sequence[str] = (),
    k: int = 10,
    offset: int = 0,
    filters: Mapping[str, FilterValue] | None = None,
    exclude: Sequence[str] = (),
    collapse: bool = True,
    facets: Sequence[str] = (),
    facet_limit: int = 20,
    fused: bool = True,
) -> RecommendResult:
    """Documents related to seed documents, a text, or keywords; seeds and excluded ids never come back.

    Seed documents are ranked by the model's fusion of relatedness signals (``relatedness``) when it has one
    and ``fused`` is true; by word2vec similarity alone otherwise. A text or keywords are ranked as ``search``
    ranks that query (``_recommend_by_query``). ``facets`` are counted over the candidates the ranking fetched
    for seed documents, over every matching document for a text or keywords (see docs/api.md), after the
    filters, without seeds and excluded ids."""
    if k < 1 or offset < 0:
        raise InvalidRequestError("k must be at least 1 and offset at least 0")
    check_facets(facets)
    given = bool(positive) + (text is not None) + bool(keywords)
    if given != 1:
        raise InvalidRequestError("give exactly one of: positive document ids, text, keywords")
    if not positive:
        query_text = text if text is not None else " ".join(t.replace(PHRASE_JOINER, " ") for t in keywords)
        return _recommend_by_query(model, query_text, k, offset, filters, exclude, collapse, facets, facet_limit)
    pos_rows = [model.index.rows[i] for i in positive if i in model.index.rows]
    neg_rows = [model.index.rows[i] for i in negative if i in model.index.rows]
    ignored = [i for i in [*positive, *negative] if i not in model.index.rows]
    if not pos_rows:
        raise UnknownDocumentError(list(positive))
    seed_rows = pos_rows + neg_rows
    # the very query the neighbour table was searched with at training time
    query = seed_query(model.docvectors, pos_rows, neg_rows)
    seeds = model.doc_keywords.rows(pos_rows)
    vocabulary = model.keyword_model.vocabulary
    # kept by keyword id too: explanations and marked snippet terms look the request up by id
    request_ids: dict[int, float] = {}
    for t, w in zip(seeds.terms, seeds.weights, strict=True):
        request_ids[t] = request_ids.get(t, 0.0) + w / len(pos_rows)
    request = {vocabulary[t]: w for t, w in request_ids.items()}
    marked = _marked_keywords(model, request_ids)
    if not query.any():
        raise EmptyQueryError("none of the request's terms is known to the model")
    exclude_rows = set(seed_rows) | {model.index.rows[i] for i in exclude if i in model.index.rows}
    # exclusions are dropped after the search (it over-fetches by their number): an allow-list of all other
    # rows would cost more than the search itself
    allowed = _allowed_rows(model, filters, exclude_rows) if filters else None
    if allowed is not None and allowed.size == 0:
        return RecommendResult((), tuple(ignored), model.version, (),
                               _facets(model, facets, np.zeros(0, dtype=np.int64), facet_limit))
    req = _Request(pos_rows, neg_rows, exclude_rows, request, request_ids, marked, tuple(ignored))
    if fused and model.fusion is not None:
        return _recommend_fused(model, req, offset, k, allowed, collapse, facets, facet_limit)
    return _recommend_by_vector(model, req, query, offset, k, allowed, collapse, facets, facet_limit)


def _recommend_by_vector(model: Model, req: _Request, query: np.ndarray, offset: int, k: int,
                         allowed: np.ndarray | None, collapse: bool, facets: Sequence[str], facet_limit: int) -> (
    RecommendResult
):
    """Seed documents' recommendations by word2vec similarity alone (models without a fitted fusion)."""
    want = offset + k
    exclude_rows = req.exclude
    fetch = want * 2 + len(exclude_rows) + 10
    table = model.neighbours
    if (table is not None and len(req.positive) == 1 and not req.negative and allowed is None
            and fetch <= table.width):
        # one seed, no filter: the search this request would make was made at training time
        hits = table.hits(req.positive[0], fetch)
    else:
        hits = search_index(model.index, query[None, :], fetch, allowed_rows=allowed)
    hit_rows: list[int] = hits.rows[0].tolist()
    rows = [r for r in hit_rows if r >= 0 and r not in exclude_rows]
    scores = dict(zip(hit_rows, hits.scores[0].tolist(), strict=True))
    if collapse:
        rows = _collapse(model, rows)
    counted = _facets(model, facets, np.asarray(rows, dtype=np.int64), facet_limit)
    page = rows[offset:want]
    chars = model.config.search.snippet_chars
    # records, not Documents: a frozen dataclass per result is a cost for nothing here
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippet_html(model, page, [r["text"] for r in records], req.marked, chars)
    # the reasons the other signals give, though they did not rank: the evidence of the page's rows alone
    found = relatedness.page_evidence(model, req.positive, page, ("structure", "citations", "feedback"))
    results = [
        Recommendation(
            doc_id=r["id"], score=round(scores[row], 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip, keywords=explained,
            reasons=tuple(relatedness.reasons(model, req.positive, row, found)),
            signals={"word2vec": round(scores[row], 6)},
        )
        for row, r, snip, explained in zip(page, records, snippets, _explain(model, page, req.keyword_ids),
                                           strict=True)
    ]
    return RecommendResult(tuple(results), req.ignored, model.version, _request_keywords(req.keywords), counted)


def _recommend_by_query(model: Model, query: str, k: int, offset: int, filters: Mapping[str, FilterValue] | None,
                        exclude: Sequence[str], collapse: bool, facets: Sequence[str], facet_limit: int) -> (
    RecommendResult
):
    """Recommendations for a text or keywords: the ranking ``search`` serves for that query (``rank``: the same
    candidates, expansions, fusion and named sections first), without the excluded ids, near-duplicates
    collapsed, explained as search explains its hits (shared keywords, each signal's part, the naming citation).
    Facets count every document the query matches within the filters, as search's do, less the excluded ids."""
    exclude_rows = {model.index.rows[i] for i in exclude if i in model.index.rows}
    want = offset + k
    # over-fetched by what exclusions and collapsing may drop, as for seed documents; up to the search's
    # candidate pool (200 by default) the order of the rows does not depend on how many are fetched
    ranked = rank(model, query, want * 2 + len(exclude_rows) + 10, filters, matched=bool(facets))
    if ranked.rows.size == 0 and not ranked.marks:
        raise EmptyQueryError("none of the request's terms is known to the model")
    at = {row: i for i, row in enumerate(ranked.rows.tolist())}
    rows = [row for row in at if row not in exclude_rows]
    if collapse:
        rows = _collapse(model, rows)
    counted = None
    if ranked.matched is not None:
        matched = ranked.matched
        if exclude_rows:
            matched = matched.copy()
            matched[np.fromiter(exclude_rows, dtype=np.int64)] = False
        counted = _facets(model, facets, matched, facet_limit)
    page = rows[offset:want]
    request = {kw.term: kw.weight for kw in ranked.analysis.keywords}
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippet_html(model, page, [r["text"] for r in records], _ranking_marked(model, ranked),
                         model.config.search.snippet_chars)
    results = [
        Recommendation(
            doc_id=r["id"], score=round(float(ranked.scores[at[row]]), 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip, keywords=explained,
            reasons=(f"named in the request: {ranked.named[row]}",) if row in ranked.named else (),
            signals={name: round(float(part[at[row]]), 6) for name, part in ranked.parts.items()},
        )
        for row, r, snip, explained in zip(page, records, snippets,
                                           _explain(model, page, _request_ids(model, request)), strict=True)
    ]
    return RecommendResult(tuple(results), (), model.version, _request_keywords(request), counted)


@dataclass(frozen=True)
class _Request:
    """A recommendation request by seed documents, resolved to rows and keyword weights."""

    positive: list[int]
    negative: list[int]
    exclude: set[int]
    keywords: dict[str, float]
    keyword_ids: dict[int, float]
    marked: _Marked
    ignored: tuple[str, ...]


def _recommend_fused(model: Model, req: _Request, offset: int, k: int, allowed: np.ndarray | None,
                     collapse: bool, facets: Sequence[str], facet_limit: int) -> RecommendResult:
    """Seed documents' recommendations by the fusion of relatedness signals (``relatedness``).

    One seed without filter or negative ids reads its ranking from the table precomputed at training time
    (``legalsearch fit-recommend``) when it is deep enough; everything else ranks the candidates now."""
    fusion = model.fusion
    assert fusion is not None
    want = offset + k
    table = model.related
    fetch = want * 2 + len(req.exclude) + 10
    if (table is not None and len(req.positive) == 1 and not req.negative and allowed is None
            and fetch <= table.width):
        hits = table.hits(req.positive[0], fetch)
        ranked = [(r, s) for r, s in zip(hits.rows[0].tolist(), hits.scores[0].tolist(), strict=True)
                  if r >= 0 and r not in req.exclude]
        rows = [r for r, _ in ranked]
        scores = dict(ranked)
        slots = {r: i for i, r in enumerate(hits.rows[0].tolist())}
        found = None
        related = None
    else:
        related, found = relatedness.rank_related(model, fusion, req.positive, req.negative, allowed,
                                                  req.exclude)
        budget.check("after ranking the related documents")
        rows = related.rows.tolist()
        scores = dict(zip(rows, related.scores.tolist(), strict=True))
    if collapse:
        rows = _collapse(model, rows)
    counted = _facets(model, facets, np.asarray(rows, dtype=np.int64), facet_limit)
    page = rows[offset:want]
    if found is None:  # the evidence of the page's rows alone: what its explanations need
        found = relatedness.page_evidence(model, req.positive, page, fusion.signals)
    if related is None and model.related_parts is not None:
        # the table's own parts: no More-Like-This pass and no tree scoring per signal for the page
        parts = relatedness.parts_of(fusion, model.related_parts[req.positive[0], [slots[r] for r in page]])
    else:
        parts = _fused_parts(model, fusion, req.positive, page, found, related)
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippet_html(model, page, [r["text"] for r in records], req.marked, model.config.search.snippet_chars)
    results = [
        Recommendation(
            doc_id=r["id"], score=round(scores[row], 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip, keywords=explained,
            reasons=tuple(relatedness.reasons(model, req.positive, row, found)), signals=signal_parts,
        )
        for row, r, snip, explained, signal_parts in zip(
            page, records, snippets, _explain(model, page, req.keyword_ids), parts, strict=True)
    ]
    return RecommendResult(tuple(results), req.ignored, model.version, _request_keywords(req.keywords), counted)


def _fused_parts(model: Model, fusion: relatedness.Fusion, seeds: Sequence[int], page: Sequence[int],
                 found: relatedness.Evidence, related: relatedness.Related | None) -> list[dict[str, float]]:
    """Each signal's part of the page's scores; from the precomputed table (``related`` None) the features of
    the page alone are computed."""
    if related is not None:
        at = {r: i for i, r in enumerate(related.rows.tolist())}
        features = related.features[[at[r] for r in page]] if page else related.features[:0]
        return relatedness.contributions(fusion, features)
    if "lexical" in fusion.signals:
        relatedness.mlt_scores(model, found, seeds)
    features = relatedness.features_of(model, seeds, np.asarray(page, dtype=np.int64), found)
    return relatedness.contributions(fusion, features)


def _collapse(model: Model, rows: Sequence[int]) -> list[int]:
    """Keep the first of each group of near-identical texts (same fingerprint, see docstore)."""
    seen: set[int] = set()
    kept: list[int] = []
    for row, fingerprint in zip(rows, model.documents.text_hashes[rows].tolist(), strict=True):
        if fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(row)
    return kept
