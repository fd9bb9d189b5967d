"""GET /suggest."""

from __future__ import annotations

import functools
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response

from legalsearch.api.deps import ProtectedRoute, check_api_key, served_model
from legalsearch.api.fastpath import Answer, FastPathDeclined
from legalsearch.api.routes import errors, json_response
from legalsearch.api.schemas import SuggestParams, SuggestResponse
from legalsearch.engine import Model

router = APIRouter(tags=["suggest"], route_class=ProtectedRoute)


@router.get(
    "/suggest",
    response_model=SuggestResponse,
    summary="Completions of what the user typed: keywords, phrases, laws and sections, typos tolerated",
    responses=errors(401, 503),
)
async def get_suggest(request: Request, params: Annotated[SuggestParams, Query()]) -> Response:
    """Suggestions for a search box: entries that start with `q` (case and umlauts folded), most frequent first,
    then entries within one typo of `q` (from 5 characters) or two (from 9), fewer typos first."""
    return answer_suggest(served_model(request), params)


_PARAMS = frozenset(SuggestParams.model_fields)


async def fast_suggest(request: Request, body: bytes) -> Answer:
    """``get_suggest`` for the fast path (``legalsearch.api.fastpath``): raises on anything but a valid request."""
    check_api_key(request)
    values: dict[str, Any] = {}
    for key, value in parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key in _PARAMS:
            if key in values:
                raise FastPathDeclined(f"repeated query parameter {key!r}")
            values[key] = value
    params = SuggestParams.model_validate(values)
    return functools.partial(answer_suggest, served_model(request), params)


def answer_suggest(model: Model, params: SuggestParams) -> Response:
    """The answer to a validated suggestion request."""
    found = model.suggestions.suggest(params.q, params.k)
    return json_response({
        "query": params.q,
        "suggestions": [
            {"text": s.text, "kind": s.kind, "id": s.doc_id, "df": s.df, "law": s.law, "edits": s.edits}
            for s in found
        ],
        "model": model.version,
    })
