"""POST /recommend."""

from __future__ import annotations

import functools
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from legalsearch.api.deps import ProtectedRoute, app_settings, check_api_key, check_text_length, served_model
from legalsearch.api.fastpath import Answer, FastPathDeclined
from legalsearch.api.routes import errors, json_response, keywords_json
from legalsearch.api.schemas import (
    RecommendRequest,
    RecommendResponse,
    facets_json,
    finite,
    parse_facets,
    to_filters,
)
from legalsearch.config import ServiceSettings
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError
from legalsearch.ranking import recommend

router = APIRouter(tags=["recommendations"], route_class=ProtectedRoute)


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    summary="Documents related to seed documents, a text, or keywords",
    responses=errors(400, 401, 404, 413, 503),
)
async def post_recommend(body: RecommendRequest, request: Request) -> Response:
    """Recommend documents. Give exactly one of `positive` (with optional `negative`), `text`, `keywords`.

    Seeds and `exclude` ids never come back; unknown seed ids are listed in `ignored_ids`; when no positive
    id is known the answer is 404. Empty or stopword-only text gives 422.
    """
    return answer_recommend(served_model(request), app_settings(request), body)


#: the media types the fast path reads as JSON; others (and every odd case) are left to FastAPI
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


async def fast_recommend(request: Request, body: bytes) -> Answer:
    """``post_recommend`` for the fast path (``legalsearch.api.fastpath``): raises on anything but a valid request.

    The body is parsed as FastAPI parses it (JSON, then the same model in Python mode). orjson rejects what
    ``json.loads`` would turn into something odd (NaN, lone surrogates, other encodings); such bodies raise
    here and FastAPI answers them.
    """
    check_api_key(request)
    content_type = next((v for k, v in request.scope["headers"] if k == b"content-type"), b"").lower()
    if content_type not in _JSON_TYPES:
        raise FastPathDeclined("not a plain JSON body")
    request_body = RecommendRequest.model_validate(orjson.loads(body))
    return functools.partial(answer_recommend, served_model(request), app_settings(request), request_body)


def answer_recommend(model: Model, settings: ServiceSettings, body: RecommendRequest) -> Response:
    """The answer to a validated recommendation request."""
    if body.text is not None:
        check_text_length(settings, "text", body.text)
        if not body.text.strip():
            # ranking counts an empty text as "not given"; the client did give one, so say what is wrong
            raise EmptyQueryError("the text is empty")
    if body.keywords is not None:
        check_text_length(settings, "keywords", *body.keywords)
    result = recommend(
        model,
        positive=body.positive or (),
        negative=body.negative,
        text=body.text,
        keywords=body.keywords or (),
        k=body.k,
        offset=body.offset,
        filters=to_filters(body.filters),
        exclude=body.exclude,
        collapse=body.collapse,
        facets=parse_facets(body.facets),
        facet_limit=body.facet_limit,
    )
    answer: dict[str, Any] = {
        "results": [
            {
                "id": r.doc_id,
                "title": r.title,
                "type": r.type,
                "score": finite(r.score),
                "metadata": dict(r.metadata),
                "snippet": r.snippet,
                "explanation": {"keywords": keywords_json(r.keywords), "reasons": list(r.reasons),
                                "signals": dict(r.signals)},
            }
            for r in result.results
        ],
        "ignored_ids": list(result.ignored_ids),
        "model": result.model,
        "facets": facets_json(result.facets) if result.facets is not None else None,
    }
    return json_response(answer)
