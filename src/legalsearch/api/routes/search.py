"""GET /search."""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from legalsearch.api.deps import ProtectedRoute, app_settings, check_api_key, check_text_length, served_model
from legalsearch.api.fastpath import Answer, FastPathDeclined
from legalsearch.api.limits import json_depth
from legalsearch.api.routes import errors, json_response, keywords_json
from legalsearch.api.schemas import (
    DateRangeFilter,
    FilterSpec,
    SearchParams,
    SearchResponse,
    facets_json,
    finite,
    parse_facets,
    to_filters,
)
from legalsearch.config import ServiceSettings
from legalsearch.engine import Model
from legalsearch.errors import InvalidRequestError
from legalsearch.ranking import search

router = APIRouter(tags=["search"], route_class=ProtectedRoute)

_FILTERS_ADAPTER: TypeAdapter[dict[str, FilterSpec]] = TypeAdapter(dict[str, FilterSpec])


def _parse_filters(raw: str | None, max_depth: int) -> dict[str, FilterSpec]:
    if raw is None or not raw.strip():
        return {}
    # a body's limit counts the body's own level; the parameter is the filters object itself
    depth = json_depth(raw, max_depth - 1)
    if depth > max_depth - 1:
        raise InvalidRequestError(f"filters nested {depth} levels deep: the limit is {max_depth - 1}")
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
async def get_search(request: Request, params: Annotated[SearchParams, Query()]) -> Response:
    """Search documents. Matched terms are wrapped in `<mark>…</mark>` in the (HTML-escaped) snippets."""
    return answer_search(served_model(request), app_settings(request), params)


#: the parameters a client may repeat (lists); any other repeated one leaves the request to FastAPI
_LIST_PARAMS = frozenset(("type", "law", "court"))
_SCALAR_PARAMS = frozenset(SearchParams.model_fields) - _LIST_PARAMS


async def fast_search(request: Request, body: bytes) -> Answer:
    """``get_search`` for the fast path (``legalsearch.api.fastpath``): raises on anything but a valid request.

    The query string is read as Starlette reads it and validated by the same model; a repeated scalar
    parameter raises, since which of its values FastAPI would take is FastAPI's business.
    """
    check_api_key(request)
    values: dict[str, Any] = {}
    for key, value in parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key in _LIST_PARAMS:
            values.setdefault(key, []).append(value)
        elif key in _SCALAR_PARAMS:
            if key in values:
                raise FastPathDeclined(f"repeated query parameter {key!r}")
            values[key] = value
    params = SearchParams.model_validate(values)
    return functools.partial(answer_search, served_model(request), app_settings(request), params)


def answer_search(model: Model, settings: ServiceSettings, params: SearchParams) -> Response:
    """The answer to a validated search."""
    q = params.q
    check_text_length(settings, "q", q)
    spec: dict[str, FilterSpec] = _parse_filters(params.filters, settings.max_json_depth)
    for name, values in (("type", params.type), ("law", params.law), ("court", params.court)):
        if values:
            spec[name] = list(values)
    if params.date_from is not None or params.date_to is not None:
        try:
            spec["date"] = DateRangeFilter.model_validate({"from": params.date_from, "to": params.date_to})
        except ValidationError as exc:
            raise InvalidRequestError(f"date_from/date_to: {exc.errors()[0].get('msg')}") from exc
    result = search(model, q, k=params.k, offset=params.offset, filters=to_filters(spec),
                    expand=params.expand, mode=params.mode, facets=parse_facets(params.facets),
                    facet_limit=params.facet_limit)
    body: dict[str, Any] = {
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
                "explanation": {"keywords": keywords_json(h.keywords), "cited_in_query": h.cited_in_query},
            }
            for h in result.hits
        ],
        "query_terms": list(result.query_terms),
        "expanded_terms": result.expanded_terms,
        "model": result.model,
        "facets": facets_json(result.facets) if result.facets is not None else None,
    }
    return json_response(body)
