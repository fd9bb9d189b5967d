"""GET /search."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from legalsearch.api.answers import json_response, search_json
from legalsearch.api.deps import app_settings, check_text_length, served_model
from legalsearch.api.direct import DirectRoute, query_values, read_directly
from legalsearch.api.limits import json_depth
from legalsearch.api.routes import errors
from legalsearch.api.schemas import (
    SEARCH_LIST_PARAMS,
    DateRangeFilter,
    FilterSpec,
    SearchParams,
    SearchResponse,
    parse_facets,
    to_filters,
)
from legalsearch.config import ServiceSettings
from legalsearch.errors import InvalidRequestError
from legalsearch.ranking import search

router = APIRouter(tags=["search"], route_class=DirectRoute)

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


#: any repeated parameter but these leaves the request to FastAPI's handler
_LIST_PARAMS = frozenset(SEARCH_LIST_PARAMS)
_SCALAR_PARAMS = frozenset(SearchParams.model_fields) - _LIST_PARAMS


async def read_search(request: Request) -> dict[str, Any]:
    """``get_search``'s arguments: the query string read as Starlette reads it, validated by the same model.

    A repeated scalar parameter is left to FastAPI's handler: which of its values counts is FastAPI's business.
    """
    values = query_values(request, _SCALAR_PARAMS, _LIST_PARAMS)
    return {"request": request, "params": SearchParams.model_validate(values)}


@router.get(
    "/search",
    response_model=SearchResponse,
    summary="Hybrid search: BM25 over the expanded query fused with embedding similarity",
    responses=errors(401, 413, 503),
)
@read_directly(read_search)
async def get_search(request: Request, params: Annotated[SearchParams, Query()]) -> Response:
    """Search documents. Matched terms are wrapped in `<mark>…</mark>` in the (HTML-escaped) snippets."""
    model, settings = served_model(request), app_settings(request)
    check_text_length(settings, "q", params.q)
    result = search(model, params.q, k=params.k, offset=params.offset, filters=to_filters(_filters(params, settings)),
                    expand=params.expand, mode=params.mode, facets=parse_facets(params.facets),
                    facet_limit=params.facet_limit)
    return json_response(search_json(result))


def _filters(params: SearchParams, settings: ServiceSettings) -> dict[str, FilterSpec]:
    """The filters of a search: ``filters``, then the list parameters and the date range, which take precedence."""
    spec: dict[str, FilterSpec] = _parse_filters(params.filters, settings.max_json_depth)
    for name in SEARCH_LIST_PARAMS:
        values = getattr(params, name)
        if values:
            spec[name] = list(values)
    if params.date_from is not None or params.date_to is not None:
        try:
            spec["date"] = DateRangeFilter.model_validate({"from": params.date_from, "to": params.date_to})
        except ValidationError as exc:
            raise InvalidRequestError(f"date_from/date_to: {exc.errors()[0].get('msg')}") from exc
    return spec
