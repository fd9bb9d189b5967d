"""POST /recommend."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from legalsearch.api.answers import json_response, recommend_json
from legalsearch.api.deps import app_settings, check_text_length, served_model
from legalsearch.api.direct import DirectRoute, ReadByFastAPI, read_directly
from legalsearch.api.routes import errors
from legalsearch.api.schemas import RecommendRequest, RecommendResponse, parse_facets, to_filters
from legalsearch.errors import EmptyQueryError
from legalsearch.ranking import recommend

router = APIRouter(tags=["recommendations"], route_class=DirectRoute)

#: the media types the direct reader reads as JSON; FastAPI's handler reads the others
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


async def read_recommend(request: Request) -> dict[str, Any]:
    """``post_recommend``'s arguments, read as FastAPI reads them (JSON, then the same model in Python mode).

    orjson refuses what ``json.loads`` would turn into something odd (NaN, lone surrogates, other encodings);
    FastAPI's handler then reads such a body and answers it.
    """
    content_type = next((v for k, v in request.scope["headers"] if k == b"content-type"), b"").lower()
    if content_type not in _JSON_TYPES:
        raise ReadByFastAPI("not a plain JSON body")
    return {"body": RecommendRequest.model_validate(orjson.loads(await request.body())), "request": request}


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    summary="Documents related to seed documents, a text, or keywords",
    responses=errors(400, 401, 404, 413, 503),
)
@read_directly(read_recommend)
async def post_recommend(body: RecommendRequest, request: Request) -> Response:
    """Recommend documents. Give exactly one of `positive` (with optional `negative`), `text`, `keywords`.

    Seeds and `exclude` ids never come back; unknown seed ids are listed in `ignored_ids`; when no positive
    id is known the answer is 404. Empty or stopword-only text gives 422.
    """
    model, settings = served_model(request), app_settings(request)
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
    return json_response(recommend_json(result))
