"""GET /documents/{id}, /documents/{id}/citations and /documents/{id}/cited-by."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from legalsearch.api.answers import citations_json, cited_by_json, document_json, json_response
from legalsearch.api.deps import ModelDep, ProtectedRoute
from legalsearch.api.routes import errors
from legalsearch.api.schemas import CitationsResponse, CitedByResponse, DocumentResponse
from legalsearch.citegraph import counts_of, incoming, outgoing

router = APIRouter(tags=["documents"], route_class=ProtectedRoute)

DocId = Annotated[
    str,
    Path(description="Document id, URL-encoded (ids contain spaces and '§').", examples=["DMietG § 12"]),
]


# declared before /documents/{doc_id:path}, which would otherwise take ".../citations" for an id
@router.get(
    "/documents/{doc_id:path}/citations",
    response_model=CitationsResponse,
    summary="What a document cites: resolved citations with titles, and the unresolved ones as written",
    responses=errors(401, 404, 422, 503),
)
async def get_citations(model: ModelDep, doc_id: DocId) -> Response:
    """The documents this one cites, one entry per cited document (with how often and its first citing span),
    and its citations that resolve to no document, each with the reason. 404 for an unknown id; 422 when the
    served model was trained without a citation graph.

    Example: `GET /documents/DEMO-BGH-VIII-ZR-12-21/citations` lists `DMietG § 13` and `DMietG § 14`;
    `GET /documents/DMietG%20%C2%A7%2013/citations` the sections § 13 refers to."""
    return json_response(citations_json(outgoing(model, doc_id), model.version))


@router.get(
    "/documents/{doc_id:path}/cited-by",
    response_model=CitedByResponse,
    summary="Which documents cite a document (paged, filterable by the citing documents' type)",
    responses=errors(401, 404, 422, 503),
)
async def get_cited_by(
    model: ModelDep,
    doc_id: DocId,
    type: Annotated[
        list[str] | None,
        Query(description="Only citing documents of these types (repeatable): statute, decision, annex, ...",
              examples=[["decision"]]),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=100_000, description="Citing documents to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
) -> Response:
    """The documents whose citations resolve to this one, most citations first, then in corpus order, each
    with its first citing span (offsets into the citing document's text). 404 for an unknown id; 422 when
    the served model was trained without a citation graph.

    Example: `GET /documents/DMietG%20%C2%A7%2014/cited-by?type=decision&limit=5`."""
    page = incoming(model, doc_id, type or (), offset, limit)
    return json_response(cited_by_json(page, offset, limit, model.version))


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentResponse,
    summary="One document: metadata, text, top keywords and citation counts",
    responses=errors(401, 404, 503),
)
async def get_document(
    model: ModelDep,
    doc_id: DocId,
    keywords: Annotated[int, Query(ge=0, le=100, description="How many top keywords to include.")] = 10,
) -> Response:
    """The document with this id; 404 when the model does not know it."""
    doc = model.document(doc_id)
    counts = counts_of(model, model.row_of(doc_id))
    return json_response(document_json(doc, model.keywords(doc_id, keywords), counts, model.version))
