"""GET /documents/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from legalsearch.api.deps import ModelDep, ProtectedRoute
from legalsearch.api.routes import errors
from legalsearch.api.schemas import DocumentResponse, KeywordOut

router = APIRouter(tags=["documents"], route_class=ProtectedRoute)


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentResponse,
    summary="One document: metadata, text and top keywords",
    responses=errors(401, 404, 503),
)
async def get_document(
    model: ModelDep,
    doc_id: Annotated[
        str,
        Path(description="Document id, URL-encoded (ids contain spaces and '§').", examples=["DMietG § 12"]),
    ],
    keywords: Annotated[int, Query(ge=0, le=100, description="How many top keywords to include.")] = 10,
) -> DocumentResponse:
    """The document with this id; 404 when the model does not know it."""
    doc = model.document(doc_id)
    return DocumentResponse(
        id=doc.id,
        title=doc.title,
        type=doc.type,
        metadata=dict(doc.metadata),
        text=doc.text,
        keywords=[KeywordOut.of(kw) for kw in model.keywords(doc_id, keywords)],
        model=model.version,
    )
