"""Prometheus metrics: request counts and latencies by route template and status, and the served model.

Without ``PROMETHEUS_MULTIPROC_DIR`` every uvicorn worker counts for itself and ``/metrics`` shows the
numbers of the worker that answered the scrape. With it set (to an empty, writable folder, before the
workers start), prometheus-client's multiprocess mode writes every worker's values there and ``/metrics``
aggregates all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: metrics live in their own registry, so that several apps in one process (tests) share them safely
REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "legalsearch_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "legalsearch_http_request_duration_seconds",
    "HTTP request latency by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "legalsearch_model_info",
    "1 for the model version this process serves, 0 for versions it served before.",
    ["version"],
    registry=REGISTRY,
    multiprocess_mode="liveall",
)
RELOADS = Counter(
    "legalsearch_model_reloads_total",
    "Model reload attempts that changed the model (ok) or were refused (refused).",
    ["outcome"],
    registry=REGISTRY,
)

#: label for requests no route matched: keeps the label set bounded whatever paths clients try
UNMATCHED = "<unmatched>"


def set_served_model(version: str | None, previous: str | None) -> None:
    """Record which model version is being served."""
    if previous is not None and previous != version:
        MODEL_INFO.labels(version=previous).set(0)
    if version is not None:
        MODEL_INFO.labels(version=version).set(1)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type (aggregated over workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request, labelled by the matched route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # each label set's metric children, found once: prometheus-client sorts and checks the labels on every
        # .labels() call. Bounded: methods x route templates (or UNMATCHED) x status codes
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            key = (scope.get("method", ""), getattr(route, "path", None) or UNMATCHED, status)
            children = self._children.get(key)
            if children is None:
                labels = {"method": key[0], "route": key[1], "status": str(status)}
                children = self._children[key] = (REQUESTS.labels(**labels), LATENCY.labels(**labels))
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
