"""Search: a query ranked (analysis, candidates, fusion), its hits built; and related terms."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from legalsearch import budget
from legalsearch.docstore import FilterValue, check_facets
from legalsearch.embeddings import similar_terms as _similar_terms
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError, InvalidRequestError
from legalsearch.keywords import PHRASE_JOINER
from legalsearch.ranking.candidates import _matched_rows, score_candidates
from legalsearch.ranking.explain import _explain, _ranking_marked, _request_ids, _snippets
from legalsearch.ranking.fusion import FEEDBACK_MODES, MODES, _sum, fuse
from legalsearch.ranking.query import analyze_text, lexical_query
from legalsearch.ranking.results import Ranking, SearchResult
from legalsearch.text import split_groups
from legalsearch.types import Scalar, SearchHit, SimilarTerm


def rank(
    model: Model,
    query: str,
    k: int = 10,
    filters: Mapping[str, FilterValue] | None = None,
    expand: bool = True,
    mode: str = "hybrid",
    matched: bool = False,
) -> Ranking:
    """The best ``k`` rows for a query (score desc, then row), as ``search`` serves them, without snippets.

    With ``matched``, also every row the query matches within the filters: a positive lexical score for the
    analysed query (its terms and expansions), or among the embedding candidates fused with the lexical ones.
    A model trained with feedback adds its signals to the hybrid with the weights fitted at training."""
    if k < 1:
        raise InvalidRequestError("k must be at least 1")
    if mode not in MODES and not (mode in FEEDBACK_MODES and model.feedback is not None):
        known = MODES + (FEEDBACK_MODES if model.feedback is not None else ())
        raise InvalidRequestError(f"unknown search mode {mode!r} for this model; known: {', '.join(known)}")
    analysis = analyze_text(model, query)
    lex_terms, marks, expanded = lexical_query(model, analysis, expand)
    scored = score_candidates(model, analysis, query, lex_terms, k, filters, mode)
    if scored is None:
        empty = np.zeros(0, dtype=np.float64)
        return Ranking(np.zeros(0, dtype=np.int64), empty, empty, empty, analysis, expanded, marks,
                       np.zeros(len(model.documents), dtype=np.bool_) if matched else None)
    parts = fuse(model, scored, mode)
    fused = _sum(parts)
    order = np.lexsort((scored.rows, -fused, scored.first))[:k]
    rows = scored.rows
    return Ranking(rows[order], fused[order], scored.lex[order], scored.emb[order], analysis, expanded, marks,
                   _matched_rows(scored.lex_ranked, rows) if matched else None, scored.named,
                   {name: part[order] for name, part in parts.items()})


def search(
    model: Model,
    query: str,
    k: int = 10,
    offset: int = 0,
    filters: Mapping[str, FilterValue] | None = None,
    expand: bool = True,
    mode: str = "hybrid",
    facets: Sequence[str] = (),
    facet_limit: int = 20,
) -> SearchResult:
    """Hybrid retrieval: BM25 over expanded query terms fused with embedding similarity.

    ``facets`` are counted over every document the query matches within the filters (``rank``'s ``matched``)."""
    if k < 1 or offset < 0:
        raise InvalidRequestError("k must be at least 1 and offset at least 0")
    check_facets(facets)
    cfg = model.config.search
    ranked = rank(model, query, offset + k, filters, expand, mode, matched=bool(facets))
    analysis, expanded = ranked.analysis, ranked.expanded_terms
    marked_terms = _ranking_marked(model, ranked)
    request_ids = _request_ids(model, {kw.term: kw.weight for kw in analysis.keywords})
    page = ranked.rows[offset:].tolist()
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippets(model, page, [r["text"] for r in records], marked_terms, cfg.snippet_chars)
    hits_out = tuple(
        SearchHit(
            doc_id=r["id"], score=round(score, 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip.html, matched_terms=snip.matched,
            lexical_score=round(lexical, 6), embedding_score=round(embedding, 6), keywords=explained,
            cited_in_query=ranked.named.get(row),
        )
        for row, r, snip, explained, score, lexical, embedding in zip(
            page, records, snippets, _explain(model, page, request_ids), ranked.scores[offset:].tolist(),
            ranked.lexical[offset:].tolist(), ranked.embedding[offset:].tolist(), strict=True,
        )
    )
    counted = _facets(model, facets, ranked.matched, facet_limit) if ranked.matched is not None else None
    return SearchResult(hits_out, analysis.tokens, expanded, model.version, counted)


def _facets(model: Model, names: Sequence[str], rows: np.ndarray, limit: int) -> (
    dict[str, list[tuple[Scalar, int]]] | None
):
    """Facet counts over ``rows``; None when no facet was asked for (the answer then has no ``facets``)."""
    return model.documents.facets(names, rows, limit) if names else None


def similar_terms(model: Model, term: str, k: int = 10, intersection: bool = False) -> list[SimilarTerm]:
    """Related terms from the keyword vocabulary (a multiword term may be given with spaces or '_').

    With ``intersection``, only neighbours that the main model and every seed variant agree on are kept
    (the model must have been trained with ``word2vec.intersection_models`` > 0)."""
    with model.preprocessor.transient():
        words = split_groups(model.preprocessor.query_groups(term))[0]
    if not words:
        raise EmptyQueryError(f"{term!r} has no usable term after preprocessing")
    key = PHRASE_JOINER.join(words)
    if key not in model.vectors.key_to_index:
        literal = re.sub(r"\s+", PHRASE_JOINER, term.strip().lower())
        key = literal if literal in model.vectors.key_to_index else key
    if intersection:
        if not model.thesaurus:
            raise InvalidRequestError(
                "this model has no seed variants for the intersection method: train it with "
                "[word2vec] intersection_models > 0"
            )
        found = _similar_terms([model.vectors, *model.thesaurus], key, k, allowed=model.keyword_terms)
    else:
        first = _associated_first(model, key, k)
        if first is not None:
            return first
        found = _similar_terms(model.vectors, key, k, allowed=model.keyword_terms)
    return found


def _associated_first(model: Model, key: str, k: int) -> list[SimilarTerm] | None:
    """A feedback model's associated keywords of ``key`` (score: NPMI), then its word2vec neighbours; None when
    the model has no association for it (the neighbours alone, as before)."""
    fb = model.feedback
    found = fb.associations.of(key) if fb is not None and fb.associations is not None else ()
    if not found:
        return None
    first = [SimilarTerm(a.term, a.npmi) for a in found]
    taken = {s.term for s in first} | {key}
    rest = ([s for s in _similar_terms(model.vectors, key, k + len(first), allowed=model.keyword_terms)
             if s.term not in taken] if key in model.vectors.key_to_index else [])
    return (first + rest)[:k]
