"""One builder per result type: the frozen core type as the JSON object the API answers with.

Every route builds its answer here, from plain data (``json_response`` writes it with orjson), and the response
models of ``api.schemas`` describe the same objects for OpenAPI: ``tests/api/test_answers.py`` holds each
builder's keys equal to its model's fields and validates what it builds. Building, validating and dumping ~50
pydantic objects per answer cost more than ranking a recommendation, which is why the hot routes do not
return the models themselves.

Figures the core computes from the model (keyword weights, expansion similarities) are finite by construction:
keyword weights and idf values are checked at load, and expansions with a NaN similarity are dropped. Scores
are made finite here (``finite``): JSON has no NaN, and orjson would write it as null silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

from legalsearch.citegraph import CitationLink, Incoming, Outgoing
from legalsearch.ranking import ExpandedTerm, RecommendResult, SearchResult
from legalsearch.suggest import Suggestion
from legalsearch.types import Document, Keyword, Recommendation, Scalar, SearchHit, SimilarTerm

JSON = dict[str, Any]


def json_response(body: JSON) -> Response:
    """``body`` as a JSON response: orjson writes the same compact UTF-8 JSON as ``json.dumps`` several times
    faster."""
    return Response(orjson.dumps(body), media_type="application/json")


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such scores become null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def keyword_json(kw: Keyword) -> JSON:
    """A weighted term (``KeywordOut``)."""
    return {"term": kw.term, "weight": kw.weight}


def keywords_json(keywords: Iterable[Keyword]) -> list[JSON]:
    """Weighted terms, in their order."""
    return [keyword_json(kw) for kw in keywords]


def facet_count_json(value: Scalar, count: int) -> JSON:
    """One facet value and its count (``FacetCountOut``)."""
    return {"value": value, "count": count}


def facets_json(facets: Mapping[str, Sequence[tuple[Scalar, int]]] | None) -> dict[str, list[JSON]] | None:
    """Per facet its counted values; None when no facets were asked for."""
    if facets is None:
        return None
    return {name: [facet_count_json(v, n) for v, n in counts] for name, counts in facets.items()}


def search_hit_json(h: SearchHit) -> JSON:
    """One search result (``SearchHitOut``, its explanation ``SearchExplanation``)."""
    return {
        "id": h.doc_id,
        "title": h.title,
        "type": h.type,
        "score": finite(h.score),
        "lexical_score": finite(h.lexical_score),
        "embedding_score": finite(h.embedding_score),
        "metadata": dict(h.metadata),
        "snippet": h.snippet,
        "matched_terms": list(h.matched_terms),
        "explanation": {"keywords": keywords_json(h.keywords), "cited_in_query": h.cited_in_query},
    }


def expanded_term_json(e: ExpandedTerm) -> JSON:
    """A term the query was expanded with (``ExpandedTermOut``)."""
    return {"term": e.term, "source": e.source, "similarity": e.similarity, "weight": e.weight}


def search_json(result: SearchResult) -> JSON:
    """A search answer (``SearchResponse``)."""
    return {
        "results": [search_hit_json(h) for h in result.results],
        "query_terms": list(result.query_terms),
        "expanded_terms": [expanded_term_json(e) for e in result.expanded_terms],
        "model": result.model,
        "facets": facets_json(result.facets),
    }


def recommendation_json(r: Recommendation) -> JSON:
    """One recommended document (``Recommendation``, its explanation ``RecommendExplanation``)."""
    return {
        "id": r.doc_id,
        "title": r.title,
        "type": r.type,
        "score": finite(r.score),
        "metadata": dict(r.metadata),
        "snippet": r.snippet,
        "explanation": {"keywords": keywords_json(r.keywords), "reasons": list(r.reasons),
                        "signals": dict(r.signals)},
    }


def recommend_json(result: RecommendResult) -> JSON:
    """A recommendation answer (``RecommendResponse``)."""
    return {
        "results": [recommendation_json(r) for r in result.results],
        "ignored_ids": list(result.ignored_ids),
        "model": result.model,
        "facets": facets_json(result.facets),
    }


def suggestion_json(s: Suggestion) -> JSON:
    """One completion (``SuggestionOut``)."""
    return {"text": s.text, "kind": s.kind, "id": s.doc_id, "df": s.df, "law": s.law, "edits": s.edits}


def suggest_json(query: str, found: Iterable[Suggestion], version: str) -> JSON:
    """A suggestion answer (``SuggestResponse``)."""
    return {"query": query, "suggestions": [suggestion_json(s) for s in found], "model": version}


def similar_term_json(s: SimilarTerm) -> JSON:
    """A related term (``SimilarTermOut``)."""
    return {"term": s.term, "score": finite(s.score) or 0.0}


def similar_terms_json(term: str, found: Iterable[SimilarTerm], version: str) -> JSON:
    """Terms related to a term (``SimilarTermsResponse``)."""
    return {"term": term, "similar": [similar_term_json(s) for s in found], "model": version}


def citation_counts_json(counts: Mapping[str, int]) -> JSON:
    """A document's links in the citation graph (``CitationCountsOut``)."""
    return {"cites": counts["cites"], "cited_by": counts["cited_by"], "unresolved": counts["unresolved"]}


def document_json(doc: Document, keywords: Iterable[Keyword], counts: Mapping[str, int] | None,
                  version: str) -> JSON:
    """One document with its top keywords and citation counts (``DocumentResponse``)."""
    return {
        "id": doc.id,
        "title": doc.title,
        "type": doc.type,
        "metadata": dict(doc.metadata),
        "text": doc.text,
        "keywords": keywords_json(keywords),
        "citations": citation_counts_json(counts) if counts is not None else None,
        "model": version,
    }


def citation_link_json(link: CitationLink) -> JSON:
    """One edge of the citation graph seen from one end (``CitationLinkOut``)."""
    return {"id": link.id, "title": link.title, "type": link.type, "count": link.count, "start": link.start,
            "end": link.end, "surface": link.surface, "kind": link.kind}


def unresolved_citation_json(item: Mapping[str, Any]) -> JSON:
    """A citation that names no document, as written (``UnresolvedCitationOut``)."""
    return {"start": item["start"], "end": item["end"], "surface": item["surface"], "reason": item["reason"],
            "law": item["law"]}


def citations_json(out: Outgoing, version: str) -> JSON:
    """What a document cites (``CitationsResponse``)."""
    return {"id": out.doc_id, "citations": [citation_link_json(link) for link in out.links],
            "unresolved": [unresolved_citation_json(item) for item in out.unresolved], "model": version}


def cited_by_json(page: Incoming, offset: int, limit: int, version: str) -> JSON:
    """One page of the documents citing a document (``CitedByResponse``)."""
    return {"id": page.doc_id, "total": page.total, "offset": offset, "limit": limit,
            "cited_by": [citation_link_json(link) for link in page.links], "model": version}
