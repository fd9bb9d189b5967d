"""GET /models/current and POST /admin/reload."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from legalsearch.api import metrics
from legalsearch.api.deps import HolderDep, ModelDep, ProtectedRoute
from legalsearch.api.routes import errors
from legalsearch.api.schemas import ModelResponse, ReloadResponse
from legalsearch.api.state import ModelHolder, ReloadOutcome

router = APIRouter(tags=["models"], route_class=ProtectedRoute)
admin_router = APIRouter(tags=["admin"], route_class=ProtectedRoute)


@router.get(
    "/models/current",
    response_model=ModelResponse,
    summary="The manifest of the model being served",
    responses=errors(401, 503),
)
async def get_current_model(model: ModelDep) -> ModelResponse:
    """The served model's version and manifest (config, counts, file hashes, timings)."""
    return ModelResponse(model=model.version, manifest=model.manifest)


async def reload_model(holder: ModelHolder, force: bool) -> ReloadOutcome:
    """Check ``current`` and swap models if it moved; loading and verifying run in a worker thread."""
    outcome = await asyncio.to_thread(holder.refresh, force)
    if outcome.changed:
        metrics.RELOADS.labels(outcome="ok").inc()
        metrics.set_served_model(outcome.model, outcome.previous)
    elif outcome.refused:
        metrics.RELOADS.labels(outcome="refused").inc()
    return outcome


@admin_router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    summary="Load the model models/current points at now (instead of waiting for the watcher)",
    responses=errors(401),
)
async def post_reload(holder: HolderDep) -> ReloadResponse:
    """Force a reload check; a model that fails verification is refused and the old one keeps serving.

    The refusal reason is shown by `/readyz` under `last_reload_error`.
    """
    outcome = await reload_model(holder, force=True)
    return ReloadResponse(changed=outcome.changed, model=outcome.model, previous=outcome.previous)
