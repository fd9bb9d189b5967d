"""The FastAPI application: ``create_app`` (a uvicorn factory) wires settings, model, routes and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from legalsearch.api import metrics, peers
from legalsearch.api.deps import API_KEY_HEADER, API_KEY_SCHEME, api_key_scheme
from legalsearch.api.direct import DirectStats
from legalsearch.api.errors import install_error_handlers
from legalsearch.api.limits import BodyLimitMiddleware
from legalsearch.api.logs import REQUEST_ID_HEADER, RequestIdMiddleware, configure_logging
from legalsearch.api.routes import documents, health, models, page, recommend, search, suggest, terms
from legalsearch.api.state import ModelHolder
from legalsearch.config import ServiceSettings
from legalsearch.index import set_faiss_threads
from legalsearch.text import set_memo_budget

log = logging.getLogger(__name__)

DESCRIPTION = """\
Search and recommendations over German legal content (statutes, decisions).

Every answer that uses the model names its version in `model`; a model swap never mixes two versions in
one answer. Errors are `{"detail": "..."}` (validation errors: FastAPI's list of problems).
See docs/api.md for filters, pagination, limits, API keys and metrics.
"""


def _limit_threads(settings: ServiceSettings) -> None:
    set_faiss_threads(settings.faiss_threads)
    if settings.blas_threads > 0:
        from threadpoolctl import threadpool_limits

        # applied process-wide and kept: several workers on a small machine must not oversubscribe cores
        threadpool_limits(limits=settings.blas_threads)


async def _watch(app: FastAPI, holder: ModelHolder, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await models.reload_model(holder, force=False)
        except Exception:  # the watcher must outlive any surprise, or swaps would silently stop
            log.exception("model watcher: reload check failed")


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServiceSettings = app.state.settings
    holder: ModelHolder = app.state.holder
    _limit_threads(settings)
    # the word memos of query preprocessing: a flood of new words must not grow the worker
    set_memo_budget(settings.memo_mb * 2**20)
    # the first load blocks startup (in a thread, so the loop stays free): the server accepts requests
    # only once it can answer them, unless there is no usable model, which readyz then reports
    await models.reload_model(holder, force=True)
    if holder.model is None:
        log.warning("starting without a model: %s", holder.unavailable_reason())
    link = peers.LINK
    if link is not None:
        # a balanced worker: reloads asked of another worker reach this one through the main process

        async def reload_here() -> None:
            await models.reload_model(holder, force=True)

        link.on_reload = reload_here
        link.report(holder.status())
    watcher: asyncio.Task[None] | None = None
    if settings.watch_interval_s > 0:
        holder.watching = True
        watcher = asyncio.create_task(_watch(app, holder, settings.watch_interval_s))
    try:
        yield
    finally:
        holder.watching = False
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        holder.close()


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the application; settings default to the ``LEGALSEARCH_*`` environment."""
    settings = settings if settings is not None else ServiceSettings()
    configure_logging(settings.log_level, settings.log_json, settings.request_log)
    app = FastAPI(
        title="legalsearch",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=_lifespan,
        # /docs comes from routes.page, with its scripts served from the package instead of a CDN; no ReDoc
        docs_url=None,
        redoc_url=None,
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.holder = ModelHolder(settings.models_dir)
    install_error_handlers(app)
    app.include_router(health.router)
    # these routers' routes are ProtectedRoute: they check X-API-Key themselves (the hot ones, DirectRoute,
    # also read their own requests)
    for router in (recommend.router, search.router, suggest.router, terms.router, documents.router,
                   models.router, models.admin_router):
        app.include_router(router)
    page.install_pages(app)
    app.openapi = functools.partial(_openapi, app)  # type: ignore[method-assign]
    # the hot routes (api.direct) count which reader read each request
    app.state.direct_stats = DirectStats()
    # outermost last: metrics time everything, including bodies refused for size
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       body_timeout_s=settings.body_timeout_s, budget_s=settings.request_budget_s)
    app.add_middleware(metrics.MetricsMiddleware)
    if settings.cors_origins:
        # outside metrics: a preflight is answered here and never reaches a route
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER, REQUEST_ID_HEADER], expose_headers=[REQUEST_ID_HEADER],
            max_age=600,
        )
    # outermost: every answer (a refused body, a preflight) carries and logs its request id
    app.add_middleware(RequestIdMiddleware, request_log=settings.request_log)
    return app


#: operation ids (names in generated clients) where the handler's name is not the one to show
_OPERATION_IDS = {
    "post_recommend": "recommend",
    "get_search": "search",
    "get_suggest": "suggest",
    "get_similar_terms": "similar_terms",
    "post_reload": "reload_model",
    "get_metrics": "metrics",
}


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operation id: what it does (``search``, ``get_document``), without FastAPI's default
    path and method suffix (``get_search_search_get``)."""
    return _OPERATION_IDS.get(route.name, route.name)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description plus the API-key scheme the protected routes name (no dependency declares it)."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[API_KEY_SCHEME] = api_key_scheme()
        app.openapi_schema = schema
    return app.openapi_schema


def _package_version() -> str:
    import legalsearch

    return str(legalsearch.__version__)
