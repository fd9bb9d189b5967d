"""A fast path for the hot routes: valid requests answered without FastAPI's per-request machinery.

FastAPI declares, validates and documents every route. Per request, though, its routing, dependency solving,
body reading and exception middleware cost about 0.8 ms of CPU on the 2-core reference machine: as much as
ranking a recommendation, and the difference between meeting and missing the latency targets at 16
connections. For ``POST /recommend`` and ``GET /search`` this middleware reads the request itself, validates
it with the same pydantic model and calls the same answer function as the FastAPI route.

A fast handler reads and validates the request and returns the answer to compute. Whenever it raises (a
validation error, a missing API key, a media type it does not read, a bug), the request goes on to FastAPI with
its body replayed, and FastAPI answers it as if the fast path did not exist. Once the answer is being computed,
a failure (an unknown document, an empty query, a spent time budget, a bug) is answered here with FastAPI's own
exception handlers (``api.errors.error_response``), never handed on: FastAPI would do the same work again only
to fail the same way (a query that took 31 s before it failed took 62). Either way every error, status and
message stays FastAPI's. Tests send the same requests with the fast path on and off and compare the answers
byte for byte.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from legalsearch.api.errors import error_response
from legalsearch.api.limits import replay_body
from legalsearch.api.metrics import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

#: computes a validated request's answer
Answer = Callable[[], Response]
#: reads a request (and its whole body) and returns how to answer it, or raises to leave it to FastAPI
FastHandler = Callable[[Request, bytes], Awaitable[Answer]]


class FastPathDeclined(Exception):
    """Raised by a fast handler for a request it leaves to FastAPI (the reason is logged at DEBUG)."""


@dataclass(frozen=True)
class FastRoute:
    """A route the fast path serves: FastAPI's route (for metrics labels) and the handler."""

    route: BaseRoute
    handler: FastHandler


@dataclass
class FastPathStats:
    """How many requests per route path the fast path answered, answered with an error, and left to FastAPI."""

    answered: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    declined: Counter[str] = field(default_factory=Counter)


class FastPathMiddleware:
    """Answer valid requests to ``routes`` ((method, path) -> FastRoute) directly; pass all else on."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], FastRoute], stats: FastPathStats) -> None:
        self.app = app
        self.routes = dict(routes)
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            # as Starlette's router matches: the path below the mount point
            path = path[len(root):]
        entry = self.routes.get((scope["method"], path))
        if entry is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nothing to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        request = Request(scope, receive)
        try:
            answer = await entry.handler(request, body)
        except Exception as exc:  # whatever it is, FastAPI answers it, exactly as without the fast path
            self.stats.declined[path] += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("fast path left %s %s to FastAPI: %s", scope["method"], path, exc or type(exc).__name__)
            await self.app(scope, replay_body(body, receive), send)
            return
        try:
            response = answer()
        except Exception as exc:  # the work is done (and failed): answered as FastAPI answers it, not repeated
            self.stats.failed[path] += 1
            response = await error_response(request, exc)
        else:
            self.stats.answered[path] += 1
        # metrics label an answer by its route template, as they do for the router's answers
        scope["route"] = entry.route
        await response(scope, receive, send)

