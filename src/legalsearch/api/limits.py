"""Request limits as a pure ASGI middleware: body size, body read time, JSON nesting depth, the time budget."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import numpy as np

from legalsearch.api.metrics import ASGIApp, Message, Receive, Scope, Send
from legalsearch.budget import time_budget

log = logging.getLogger(__name__)

# a JSON string, escapes included; unambiguous (one way to match each character), so linear
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))


def json_depth(data: bytes | str, limit: int) -> int:
    """How deep arrays and objects nest in ``data`` (outside strings) if deeper than ``limit``, else 0; found without
    parsing. Linear in the size and never recursive, so it runs before any parser sees the input: JSON parsers and
    validators recurse once per level, and 900 levels raised RecursionError deep inside them."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return 0
    codes = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = np.isin(codes, _OPEN).astype(np.int32) - np.isin(codes, _CLOSE).astype(np.int32)
    depth = int(np.cumsum(steps).max(initial=0))
    return depth if depth > limit else 0


async def _reject(send: Send, status: int, detail: str, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Answer 413, 408 or 422 to bodies over the limits before any route sees them; run the app in a time budget.

    A declared Content-Length is checked first; chunked bodies (or lying headers) are counted while they are
    read. The body is buffered here (it is at most ``max_bytes``) and replayed to the app, so a body that
    turns out too large is refused cleanly instead of failing half-way inside a route. The whole body must arrive
    within ``body_timeout_s`` (a client that stops sending would hold the connection and its memory otherwise), and
    nest at most ``max_depth`` levels. The app then runs under a ``budget_s`` time budget (``legalsearch.budget``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = 8, body_timeout_s: float = 15.0,
                 budget_s: float = 0.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.body_timeout_s = body_timeout_s
        self.budget_s = budget_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body too large: the limit is {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reject(send, 400, "invalid Content-Length header")
                    return
                if declared > self.max_bytes:
                    await _reject(send, 413, too_large)
                    return
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            detail = f"the request body did not arrive within {self.body_timeout_s:g} s"
            log.warning("%s %s: 408 %s", scope["method"], scope["path"], detail)
            await _reject(send, 408, detail, close=True)
            return
        if body is None:
            return  # the client went away while sending: nothing to answer
        if len(body) > self.max_bytes:
            await _reject(send, 413, too_large)
            return
        depth = json_depth(body, self.max_depth)
        if depth > self.max_depth:
            detail = f"request body nested {depth} levels deep: the limit is {self.max_depth}"
            log.warning("%s %s: 422 %s", scope["method"], scope["path"], detail)
            await _reject(send, 422, detail)
            return
        with time_budget(self.budget_s):
            await self.app(scope, replay_body(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The body, or None if the client left; stops reading one chunk past ``max_bytes``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if size > self.max_bytes or not message.get("more_body", False):
                return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields the already read ``body`` once, then whatever the connection sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
