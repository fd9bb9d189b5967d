"""GET /suggest."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from legalsearch.api.answers import json_response, suggest_json
from legalsearch.api.deps import served_model
from legalsearch.api.direct import DirectRoute, query_values, read_directly
from legalsearch.api.routes import errors
from legalsearch.api.schemas import SuggestParams, SuggestResponse

router = APIRouter(tags=["suggest"], route_class=DirectRoute)

_PARAMS = frozenset(SuggestParams.model_fields)


async def read_suggest(request: Request) -> dict[str, Any]:
    """``get_suggest``'s arguments: the query string read as Starlette reads it, validated by the same model."""
    return {"request": request, "params": SuggestParams.model_validate(query_values(request, _PARAMS))}


@router.get(
    "/suggest",
    response_model=SuggestResponse,
    summary="Completions of what the user typed: keywords, phrases, laws and sections, typos tolerated",
    responses=errors(401, 503),
)
@read_directly(read_suggest)
async def get_suggest(request: Request, params: Annotated[SuggestParams, Query()]) -> Response:
    """Suggestions for a search box: entries that start with `q` (case and umlauts folded), most frequent first,
    then entries within one typo of `q` (from 5 characters) or two (from 9), fewer typos first."""
    model = served_model(request)
    return json_response(suggest_json(params.q, model.suggestions.suggest(params.q, params.k), model.version))
