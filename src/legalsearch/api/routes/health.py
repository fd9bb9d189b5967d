"""GET /livez, /readyz and /metrics (always open, no API key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from legalsearch.api import metrics, peers
from legalsearch.api.deps import HolderDep
from legalsearch.api.schemas import LiveResponse, ReadyResponse, ReloadFailure, WorkerStatus

router = APIRouter(tags=["health"])


@router.get("/livez", response_model=LiveResponse, summary="Liveness: 200 while the process runs")
async def livez() -> LiveResponse:
    """Always 200; needs no model."""
    return LiveResponse(status="alive")


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness: 200 once a verified model is served, else 503 with the reason",
    responses={503: {"model": ReadyResponse, "description": "No model is being served; `detail` says why."}},
)
async def readyz(holder: HolderDep) -> JSONResponse:
    """Ready when this worker serves a verified model; details name the served version, the last refusal, a
    fallback (current refused, another version served), and every worker's status in `workers`."""
    model = holder.model
    failure = holder.last_failure
    status = holder.status()
    body = ReadyResponse(
        ready=model is not None,
        detail="ready" if model is not None else holder.unavailable_reason(),
        model=model.version if model is not None else None,
        current=status["current"],
        last_reload_error=(
            ReloadFailure(version=failure.version, reason=failure.reason, at=failure.at) if failure else None
        ),
        fallback=holder.fallback,
        watching=holder.watching,
        worker=status["pid"],
        workers=[WorkerStatus.from_status(s) for s in peers.workers_status(status)],
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if model is not None else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (per worker unless PROMETHEUS_MULTIPROC_DIR is set)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format."}},
)
async def get_metrics() -> Response:
    """Request counts and latency histograms by route template and status; the served model version."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
