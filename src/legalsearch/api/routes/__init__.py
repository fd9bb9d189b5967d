"""The API's routers, one module per resource; their answers are built by ``api.answers``."""

from __future__ import annotations

from typing import Any

from legalsearch.api.schemas import ErrorResponse


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    text = {
        400: "Malformed request (undecodable body, bad header).",
        401: "Missing or wrong X-API-Key (only when keys are configured).",
        403: "The X-API-Key is a search key, or no admin key is configured (LEGALSEARCH_ADMIN_KEYS).",
        404: "Unknown document or term.",
        413: "Body, text or query too large.",
        422: "A valid request the model cannot answer (e.g. intersection without seed variants).",
        503: "No model is being served (none trained yet, or it failed verification).",
    }
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}
