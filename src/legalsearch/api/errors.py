"""One place that turns exceptions into HTTP answers; every error body is ``{"detail": ...}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from legalsearch.errors import (
    ArtifactError,
    BudgetExceededError,
    EmptyQueryError,
    InvalidRequestError,
    LegalSearchError,
    NoModelError,
    UnknownDocumentError,
    UnknownTermError,
)

log = logging.getLogger(__name__)

#: most specific first: NoModelError is an ArtifactError
STATUS_OF: tuple[tuple[type[LegalSearchError], int], ...] = (
    (NoModelError, 503),
    (BudgetExceededError, 503),
    (ArtifactError, 503),
    (UnknownDocumentError, 404),
    (UnknownTermError, 404),
    (EmptyQueryError, 422),
    (InvalidRequestError, 422),
)


class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: error messages may echo client strings that UTF-8 cannot encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class PayloadTooLargeError(InvalidRequestError):
    """A text or query is longer than the service accepts."""


class UnauthorizedError(LegalSearchError):
    """The X-API-Key header is missing or wrong."""


class ForbiddenError(LegalSearchError):
    """The X-API-Key is valid but may not use this route (a search key on /admin)."""


def status_of(exc: LegalSearchError) -> int:
    """The HTTP status of a package error (500 for errors that are the server's fault)."""
    if isinstance(exc, PayloadTooLargeError):
        return 413
    if isinstance(exc, UnauthorizedError):
        return 401
    if isinstance(exc, ForbiddenError):
        return 403
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 500


async def _package_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LegalSearchError)
    status = status_of(exc)
    if status == 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    else:
        # one line per client error (and per spent budget), never a traceback
        log.log(logging.WARNING if status == 503 else logging.INFO, "%s %s: %d %s", request.method,
                request.url.path, status, exc)
    headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else None
    return SafeJSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    # the offending input is left out: it can be a whole 1 MiB body, or undecodable bytes
    out = {"type": error.get("type"), "loc": list(error.get("loc", ())), "msg": error.get("msg")}
    if error.get("type") == "json_invalid":
        ctx = error.get("ctx") or {}
        out["msg"] = f"request body is not valid JSON: {ctx.get('error', 'parse error')}"
    elif error.get("type") == "model_attributes_type" and out["loc"] == ["body"]:
        out["msg"] = "request body must be a JSON object (sent as Content-Type: application/json)"
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean(e) for e in exc.errors()]
    return SafeJSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail: Any = exc.detail
    cause = exc.__cause__
    # FastAPI hides why a body could not be parsed; the client needs to know
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        detail = f"request body is not valid UTF-8: {cause.reason} at byte {cause.start}"
    elif exc.status_code == 400 and cause is not None:
        detail = f"request body could not be parsed: {cause}"
    return SafeJSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed unexpectedly", request.method, request.url.path)
    return SafeJSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(LegalSearchError, _package_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
