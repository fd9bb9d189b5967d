"""The HTTP front of a sharded model: today's routes, with /search and /recommend answered over shards.

``create_sharded_app(front, shards)`` is the FastAPI app the Ray Serve ingress serves (``scale.serve``), and the
same app in one process over ``LocalShard``s (tests, ``legalsearch serve --ray`` falls back to nothing else). It
reuses the single-node app's pieces: request parsing and validation (``read_search``, ``read_recommend``), the
answer builders (``api.answers``), the error handlers, body limits and request ids, and the routers whose answers
the front model gives by itself: /documents/{id} (and its citations), /terms/{term}/similar, /suggest,
/models/current, /livez, /readyz, /metrics. /search and /recommend call ``scale.search`` over the shards, in a
thread (a Serve shard's answer is waited for there, not on the event loop).

The served model is fixed: a new sharded version is served by deploying the application again (Serve replaces
replicas one by one), not by the single-node server's hot swap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from legalsearch.api.answers import json_response, recommend_json, search_json
from legalsearch.api.deps import app_settings, check_text_length
from legalsearch.api.direct import DirectRoute, DirectStats, read_directly
from legalsearch.api.errors import install_error_handlers
from legalsearch.api.limits import BodyLimitMiddleware
from legalsearch.api.logs import RequestIdMiddleware
from legalsearch.api.routes import documents, errors, health, models, suggest, terms
from legalsearch.api.routes.recommend import read_recommend
from legalsearch.api.routes.search import _filters, read_search
from legalsearch.api.schemas import (
    RecommendRequest,
    RecommendResponse,
    SearchParams,
    SearchResponse,
    parse_facets,
    to_filters,
)
from legalsearch.api.state import ModelHolder
from legalsearch.config import ServiceSettings
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError
from legalsearch.scale import search as sharded


def create_sharded_app(front: Model, shards: Sequence[sharded.Shard],
                       settings: ServiceSettings | None = None) -> FastAPI:
    """The app over a sharded model's ``front`` (``scale.search.load_front``) and its ``shards`` (in row order)."""
    settings = settings if settings is not None else ServiceSettings()
    app = FastAPI(title="legalsearch (sharded)", docs_url=None, redoc_url=None)
    app.state.settings = settings
    holder = ModelHolder(settings.models_dir)
    holder.model = front
    holder.served_name = front.version
    app.state.holder = holder
    app.state.direct_stats = DirectStats()
    app.state.shards = list(shards)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(_router(list(shards)))
    for router in (suggest.router, terms.router, documents.router, models.router):
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       body_timeout_s=settings.body_timeout_s, budget_s=settings.request_budget_s)
    app.add_middleware(RequestIdMiddleware, request_log=settings.request_log)
    return app


def _router(shards: list[sharded.Shard]) -> APIRouter:
    router = APIRouter(route_class=DirectRoute)

    @router.get("/search", response_model=SearchResponse, responses=errors(401, 413, 503))
    @read_directly(read_search)
    async def get_search(request: Request, params: Annotated[SearchParams, Query()]) -> Response:
        front, settings = request.app.state.holder.require(), app_settings(request)
        check_text_length(settings, "q", params.q)
        offsets = [int(e["rows"][0]) for e in front.manifest["shards"]]
        result = await run_in_threadpool(
            sharded.search, front, shards, offsets, params.q, k=params.k, offset=params.offset,
            filters=to_filters(_filters(params, settings)), expand=params.expand, mode=params.mode,
            facets=parse_facets(params.facets), facet_limit=params.facet_limit)
        return json_response(search_json(result))

    @router.post("/recommend", response_model=RecommendResponse, responses=errors(400, 401, 404, 413, 503))
    @read_directly(read_recommend)
    async def post_recommend(body: RecommendRequest, request: Request) -> Response:
        front, settings = request.app.state.holder.require(), app_settings(request)
        if body.text is not None:
            check_text_length(settings, "text", body.text)
            if not body.text.strip():
                raise EmptyQueryError("the text is empty")
        if body.keywords is not None:
            check_text_length(settings, "keywords", *body.keywords)
        offsets = [int(e["rows"][0]) for e in front.manifest["shards"]]
        kwargs: dict[str, Any] = dict(
            positive=body.positive or (), negative=body.negative, text=body.text, keywords=body.keywords or (),
            k=body.k, offset=body.offset, filters=to_filters(body.filters), exclude=body.exclude,
            collapse=body.collapse, facets=parse_facets(body.facets), facet_limit=body.facet_limit)
        result = await run_in_threadpool(sharded.recommend, front, shards, offsets, **kwargs)
        return json_response(recommend_json(result))

    return router
