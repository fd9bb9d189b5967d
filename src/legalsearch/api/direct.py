"""Hot routes that read their own requests: an ``APIRoute`` whose handler skips FastAPI's per-request solving.

For every request FastAPI's route handler reads the body, solves the endpoint's parameters (the body or query
model, ``Request``) as dependencies and then calls the endpoint. On the 2-core reference machine that machinery,
with the middleware around it, cost about 0.8 ms of CPU per request: as much as ranking a recommendation, and
the difference between meeting and missing the latency targets at 16 connections.

``DirectRoute`` is a FastAPI route like the others: the router matches it, its OpenAPI description is the one
its decorator and endpoint declare, what it raises goes to the app's exception handlers (``api.errors``). Its
handler differs only in how it gets the endpoint's arguments: a route marked ``@read_directly(reader)`` has
``reader`` read and validate them (with the same pydantic models FastAPI uses), and its endpoint is called with
them. The endpoint returns its ``Response`` itself, so no response model is validated on either way.

A request the reader does not take raises one of ``NOT_TAKEN`` while it is read: pydantic's ``ValidationError``,
a body orjson cannot parse, or ``ReadByFastAPI`` (a media type the reader does not read, a repeated scalar
parameter). FastAPI's own handler then reads that request instead, and answers it exactly as it always does
(its 422 with FastAPI's list of problems): nothing has been computed yet, so nothing runs twice. Every other
exception, from reading or from the endpoint, is the request's answer, through the app's exception handlers.
``LEGALSEARCH_FAST_PATH=false`` sends every request to FastAPI's handler (``tests/api/test_direct_routes.py`` compares
the two byte for byte).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import Request, Response
from pydantic import ValidationError

from legalsearch.api.deps import ProtectedRoute

log = logging.getLogger(__name__)

#: reads a request into its endpoint's keyword arguments, or raises one of NOT_TAKEN
Reader = Callable[[Request], Awaitable[dict[str, Any]]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

_READER = "__legalsearch_reader__"


class ReadByFastAPI(Exception):
    """Raised by a reader for a request FastAPI's handler should read (the message says why, at DEBUG)."""


#: what a reader raises for a request it leaves to FastAPI's handler
NOT_TAKEN: tuple[type[Exception], ...] = (ValidationError, orjson.JSONDecodeError, ReadByFastAPI)


def query_values(request: Request, scalars: Collection[str], lists: Collection[str] = ()) -> dict[str, Any]:
    """The query string read as Starlette reads it: each of ``scalars`` once, each of ``lists`` as the list of its
    values, other parameters ignored. A repeated scalar raises ``ReadByFastAPI``: which of its values counts is
    FastAPI's business."""
    values: dict[str, Any] = {}
    for key, value in parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key in lists:
            values.setdefault(key, []).append(value)
        elif key in scalars:
            if key in values:
                raise ReadByFastAPI(f"repeated query parameter {key!r}")
            values[key] = value
    return values


def read_directly(reader: Reader) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint of a ``DirectRoute``: ``reader`` reads its arguments off the request."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _READER, reader)
        return endpoint

    return mark


@dataclass
class DirectStats:
    """Per route path: requests its reader read, and requests left to FastAPI's handler (``app.state``)."""

    read: Counter[str] = field(default_factory=Counter)
    by_fastapi: Counter[str] = field(default_factory=Counter)


class DirectRoute(ProtectedRoute):
    """A protected route whose endpoint, when marked with ``read_directly``, gets its arguments from its reader."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The reader's handler in front of FastAPI's (which keeps the key check of ``ProtectedRoute``)."""
        fastapi_handler = super().get_route_handler()
        reader: Reader | None = getattr(self.endpoint, _READER, None)
        if reader is None:
            return fastapi_handler
        endpoint, check, path = self.endpoint, self.check, self.path

        async def handler(request: Request) -> Response:
            state = request.app.state
            if not state.settings.fast_path:
                return await fastapi_handler(request)
            check(request)
            try:
                values = await reader(request)
            except NOT_TAKEN as exc:
                state.direct_stats.by_fastapi[path] += 1
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %s read by FastAPI: %s", request.method, path, exc or type(exc).__name__)
                return await fastapi_handler(request)
            state.direct_stats.read[path] += 1
            response: Response = await endpoint(**values)
            return response

        return handler
