"""GET /models/current and POST /admin/reload."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from legalsearch.api import metrics, peers
from legalsearch.api.deps import AdminRoute, HolderDep, ModelDep, ProtectedRoute, SettingsDep, has_admin_key
from legalsearch.api.routes import errors
from legalsearch.api.schemas import ModelResponse, ReloadResponse, WorkerStatus
from legalsearch.api.state import ModelHolder, ReloadOutcome

router = APIRouter(tags=["models"], route_class=ProtectedRoute)
admin_router = APIRouter(tags=["admin"], route_class=AdminRoute)


@router.get(
    "/models/current",
    response_model=ModelResponse,
    summary="The manifest of the model being served",
    responses=errors(401, 503),
)
async def get_current_model(model: ModelDep, request: Request) -> ModelResponse:
    """The served model's version and manifest (config, counts, file hashes, timings).

    The corpus paths it was trained from (`manifest.corpus.paths`, `.extra_text`) show only to an admin key
    (LEGALSEARCH_ADMIN_KEYS); anyone else sees `"<hidden>"` in their place.
    """
    manifest = model.manifest if has_admin_key(request) else public_manifest(model.manifest)
    return ModelResponse(model=model.version, manifest=manifest)


#: manifest.corpus fields that name paths on the training machine
_PATH_FIELDS = ("paths", "extra_text")


def public_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the corpus paths (each replaced by "<hidden>", so lists keep their length)."""
    corpus = manifest.get("corpus")
    if not isinstance(corpus, dict):
        return manifest
    hidden = {
        key: ["<hidden>"] * len(value) if isinstance(value, list) else "<hidden>"
        for key, value in corpus.items()
        if key in _PATH_FIELDS
    }
    return {**manifest, "corpus": {**corpus, **hidden}}


async def reload_model(holder: ModelHolder, force: bool) -> ReloadOutcome:
    """Check ``current`` and swap models if it moved; loading and verifying run in a worker thread."""
    before = holder.status()
    outcome = await asyncio.to_thread(holder.refresh, force)
    if outcome.changed:
        metrics.set_served_model(outcome.model, outcome.previous)
    if outcome.refused:
        metrics.RELOADS.labels(outcome="refused").inc()
    elif outcome.changed:
        metrics.RELOADS.labels(outcome="ok").inc()
    status = holder.status()
    if peers.LINK is not None and (status != before or force):
        peers.LINK.report(status)
    return outcome


@admin_router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    summary="Load the model models/current points at now (instead of waiting for the watcher)",
    responses=errors(401, 403),
)
async def post_reload(holder: HolderDep, settings: SettingsDep) -> ReloadResponse:
    """Force a reload check in every worker; a model that fails verification is refused and the old one keeps
    serving.

    The worker that got the request reloads, then has every other worker reload (under `legalsearch serve
    --workers N`) and answers once each has reported back or `reload_wait_s` has passed (`pending` names the
    ones that had not). `workers` is each worker's status afterwards; a refusal reason is in `last_reload_error`
    (here and in `/readyz`).
    """
    outcome = await reload_model(holder, force=True)
    pending: list[int] = []
    if peers.LINK is not None:
        pending = await peers.LINK.reload_others(settings.reload_wait_s)
    return ReloadResponse(changed=outcome.changed, model=outcome.model, previous=outcome.previous,
                          workers=worker_statuses(holder), pending=pending)


def worker_statuses(holder: ModelHolder) -> list[WorkerStatus]:
    """Every worker's status as this worker knows it (its own as it is now)."""
    return [WorkerStatus.from_status(s) for s in peers.workers_status(holder.status())]
