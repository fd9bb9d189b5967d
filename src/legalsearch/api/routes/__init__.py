"""The API's routers, one module per resource."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from legalsearch.api.schemas import ErrorResponse


def json_response(body: dict[str, Any]) -> Response:
    """``body`` as a JSON response, built from plain data and the core's result dataclasses.

    The hot routes declare ``response_model`` for the OpenAPI description (and tests validate answers against
    it) but assemble plain dicts: building, validating and dumping ~50 pydantic objects per answer cost more
    than the ranking of a recommendation. orjson writes the same compact UTF-8 JSON as ``json.dumps`` several times
    faster. It writes a dataclass as an object of its fields, so the core types whose fields are the API's
    (``Keyword`` as ``KeywordOut``, ``ExpandedTerm`` as ``ExpandedTermOut``; a test holds them equal) go in as
    they are: their figures are finite by construction (the model's keyword weights are checked at load,
    expansions with a NaN similarity are dropped). Scores are made finite before (``finite``), since orjson
    would write NaN as null.
    """
    return Response(orjson.dumps(body), media_type="application/json")


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
