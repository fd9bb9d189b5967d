"""The API's routers, one module per resource."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import Response

from legalsearch.api.schemas import ErrorResponse
from legalsearch.types import Keyword


def json_response(body: dict[str, Any]) -> Response:
    """``body`` as a JSON response, built from plain data.

    The hot routes declare ``response_model`` for the OpenAPI description (and tests validate answers against
    it) but assemble plain dicts: building, validating and dumping ~50 pydantic objects per answer cost more
    than the ranking of a recommendation. orjson writes the same compact UTF-8 JSON as ``json.dumps`` several times
    faster, and writes a plain dataclass whose fields are the API's as it is (``ExpandedTerm``, whose fields a
    test holds equal to ``ExpandedTermOut``'s), three times faster than a dict built for it. Figures the core
    computes from the model (explanation weights, expansions) are finite by construction: the model's keyword
    weights and idf values are checked at load, and expansions with a NaN similarity are dropped. Scores are
    made finite here (``finite``), since orjson would write NaN as null.
    """
    return Response(orjson.dumps(body), media_type="application/json")


def keywords_json(keywords: Iterable[Keyword]) -> list[dict[str, Any]]:
    """Weighted terms as the API shows them (``KeywordOut``).

    As dicts: orjson writes a slotted dataclass such as ``Keyword`` field by field through attribute lookups,
    ~2.5 times slower than building the dicts here.
    """
    return [{"term": kw.term, "weight": kw.weight} for kw in keywords]


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
