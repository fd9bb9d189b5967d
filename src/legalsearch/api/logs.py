"""Request ids, JSON log lines and the per-request log line.

Every HTTP request gets an id: the client's ``X-Request-ID`` when it sends a usable one (so that a trace across
services keeps one id), else a new random one. The id goes back in the response's ``X-Request-ID`` header and
into every log line written while the request runs (a context variable), and with ``request_log`` one line per
request records method, path, status, milliseconds and the id.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from legalsearch.api.metrics import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode()
#: an incoming id is kept only when it is short printable ASCII (it ends up in headers and log lines)
_USABLE_ID = re.compile(rb"[!-~]{1,128}")
#: the request id of the request being answered in this task (None outside a request)
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
ACCESS_LOGGER = "legalsearch.access"
#: the fields an access line carries besides the message
_ACCESS_FIELDS = ("method", "path", "status", "ms")
_HANDLER_NAME = "legalsearch-service"

access_log = logging.getLogger(ACCESS_LOGGER)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``record.request_id``, None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, and the access
    fields (method, path, status, ms) when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in _ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, json_lines: bool, request_log: bool) -> None:
    """Set the service's log level; with JSON lines or the request log, give the ``legalsearch`` loggers their
    own stderr handler (uvicorn configures only its own loggers, so theirs would otherwise go nowhere)."""
    logger = logging.getLogger("legalsearch")
    logger.setLevel(level.upper())
    # once per process: several apps (tests) must not stack handlers
    for handler in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(handler)
    if not (json_lines or request_log):
        logger.propagate = True
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    # the request log is INFO whatever the service's level: asking for it is asking to see it
    access_log.setLevel(logging.INFO if request_log else logging.WARNING)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            if _USABLE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Outermost ASGI middleware: the request id (kept or made), its response header, the request log line."""

    def __init__(self, app: ASGIApp, request_log: bool) -> None:
        self.app = app
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        header = (_HEADER, request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.request_log:
                ms = round((time.perf_counter() - start) * 1000, 3)
                access_log.info(
                    "%s %s %d %.3f ms", scope["method"], scope["path"], status, ms,
                    extra={"method": scope["method"], "path": scope["path"], "status": status, "ms": ms,
                           "request_id": request_id},
                )
            REQUEST_ID.reset(token)
