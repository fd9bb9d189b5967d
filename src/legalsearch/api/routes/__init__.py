"""The API's routers, one module per resource."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel

from legalsearch.api.schemas import ErrorResponse


def json_response(body: BaseModel) -> Response:
    """``body`` as JSON, serialised once by pydantic.

    Routes still declare ``response_model`` for the OpenAPI description, but return this: a returned model
    would be dumped, validated again and dumped a second time by FastAPI, a third of a fast request's time.
    """
    return Response(body.model_dump_json(), media_type="application/json")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    text = {
        400: "Malformed request (undecodable body, bad header).",
        401: "Missing or wrong X-API-Key (only when keys are configured).",
        404: "Unknown document or term.",
        413: "Body, text or query too large.",
        422: "A valid request the model cannot answer (e.g. intersection without seed variants).",
        503: "No model is being served (none trained yet, or it failed verification).",
    }
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}
