"""GET /terms/{term}/similar."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from legalsearch.api.answers import json_response, similar_terms_json
from legalsearch.api.deps import ModelDep, ProtectedRoute, SettingsDep, check_text_length
from legalsearch.api.routes import errors
from legalsearch.api.schemas import MAX_K, SimilarTermsResponse
from legalsearch.ranking import similar_terms

router = APIRouter(tags=["terms"], route_class=ProtectedRoute)


@router.get(
    "/terms/{term}/similar",
    response_model=SimilarTermsResponse,
    summary="Terms related to a term (word2vec neighbours within the keyword vocabulary)",
    responses=errors(401, 404, 413, 422, 503),
)
async def get_similar_terms(
    model: ModelDep,
    settings: SettingsDep,
    term: Annotated[
        str, Path(description="A term; multiword terms with spaces or '_'.", examples=["mietvertrag"])
    ],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Number of related terms.")] = 10,
    intersection: Annotated[
        bool,
        Query(
            description="Keep only neighbours that models trained with different seeds all agree on (more "
            "stable suggestions; 422 when the model has no seed variants)."
        ),
    ] = False,
) -> Response:
    """Related terms with cosine similarities; 404 when the term is not in the vocabulary."""
    check_text_length(settings, "term", term)
    return json_response(similar_terms_json(term, similar_terms(model, term, k, intersection=intersection),
                                            model.version))
