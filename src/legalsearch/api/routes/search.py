"""GET /search."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from legalsearch.api.deps import ProtectedRoute, app_settings, check_text_length, served_model
from legalsearch.api.routes import errors, json_response, keywords_json
from legalsearch.api.schemas import (
    MAX_K,
    MAX_OFFSET,
    DateRangeFilter,
    FilterSpec,
    SearchResponse,
    finite,
    to_filters,
)
from legalsearch.errors import InvalidRequestError
from legalsearch.ranking import search

router = APIRouter(tags=["search"], route_class=ProtectedRoute)

_FILTERS_ADAPTER: TypeAdapter[dict[str, FilterSpec]] = TypeAdapter(dict[str, FilterSpec])


def _parse_filters(raw: str | None) -> dict[str, FilterSpec]:
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"filters is not valid JSON: {exc}") from exc
    try:
        return _FILTERS_ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidRequestError(f"filters{'.' + where if where else ''}: {first.get('msg')}") from exc


@router.get(
    "/search",
    response_model=SearchResponse,
    summary="Hybrid search: BM25 over the expanded query fused with embedding similarity",
    responses=errors(401, 413, 503),
)
async def get_search(
    request: Request,
    q: Annotated[str, Query(description="The query (German).", examples=["Kündigung wegen Eigenbedarf"])],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Number of results.")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip (stable pagination).")] = 0,
    type: Annotated[
        list[str] | None, Query(description="Only these document types (repeatable).", examples=[["statute"]])
    ] = None,
    law: Annotated[
        list[str] | None, Query(description="Only documents of these laws (repeatable).", examples=[["DMietG"]])
    ] = None,
    court: Annotated[
        list[str] | None, Query(description="Only decisions of these courts (repeatable).", examples=[["BGH"]])
    ] = None,
    date_from: Annotated[
        date | None, Query(description="Only documents dated on or after this day.", examples=["2018-01-01"])
    ] = None,
    date_to: Annotated[
        date | None, Query(description="Only documents dated on or before this day.", examples=["2022-12-31"])
    ] = None,
    filters: Annotated[
        str | None,
        Query(
            description="Further filters as a JSON object, same shape as in POST /recommend "
            '(field -> value | [values] | {"from": date, "to": date}); the parameters above take precedence.',
            examples=['{"court": ["BGH", "LG Berlin"]}'],
        ),
    ] = None,
    expand: Annotated[bool, Query(description="Add related terms from word2vec to the query.")] = True,
    mode: Annotated[
        Literal["hybrid", "lexical", "embedding"], Query(description="Retrievers used: both, or only one.")
    ] = "hybrid",
) -> Response:
    """Search documents. Matched terms are wrapped in `<mark>…</mark>` in the (HTML-escaped) snippets."""
    model, settings = served_model(request), app_settings(request)
    check_text_length(settings, "q", q)
    spec: dict[str, FilterSpec] = _parse_filters(filters)
    for name, values in (("type", type), ("law", law), ("court", court)):
        if values:
            spec[name] = list(values)
    if date_from is not None or date_to is not None:
        try:
            spec["date"] = DateRangeFilter.model_validate({"from": date_from, "to": date_to})
        except ValidationError as exc:
            raise InvalidRequestError(f"date_from/date_to: {exc.errors()[0].get('msg')}") from exc
    result = search(model, q, k=k, offset=offset, filters=to_filters(spec), expand=expand, mode=mode)
    return json_response({
        "hits": [
            {
                "id": h.doc_id,
                "title": h.title,
                "type": h.type,
                "score": finite(h.score),
                "lexical_score": finite(h.lexical_score),
                "embedding_score": finite(h.embedding_score),
                "metadata": dict(h.metadata),
                "snippet": h.snippet,
                "matched_terms": list(h.matched_terms),
                "explanation": {"keywords": keywords_json(h.keywords)},
            }
            for h in result.hits
        ],
        "query_terms": list(result.query_terms),
        "expanded_terms": [
            {"term": e.term, "source": e.source, "similarity": finite(e.similarity) or 0.0,
             "weight": finite(e.weight) or 0.0}
            for e in result.expanded_terms
        ],
        "model": result.model,
    })
