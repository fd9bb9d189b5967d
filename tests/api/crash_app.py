"""A tiny ASGI app for the balancer's tests: it answers with its process id, and its import exits the process
(status 3) while the file named by ``CRASH_APP_FLAG`` exists, as a worker that dies at start does."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if Path(os.environ["CRASH_APP_FLAG"]).exists():
    os._exit(3)


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Lifespan events are acknowledged; every HTTP request gets the worker's pid."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
