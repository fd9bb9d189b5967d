"""Facet counts on /search and /recommend: over every matching document, not only the page."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from legalsearch.api.schemas import RecommendResponse, SearchResponse
from legalsearch.ranking import rank

QUESTION = "Kann der Vermieter die Wohnung wegen Eigenbedarf kündigen?"
ALL = "law,type,court,year"


def _expected(model: Any, rows: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Counts from the stored JSON records, independent of the code columns the service counts with."""
    counters: dict[str, Counter[Any]] = {name: Counter() for name in ("law", "type", "court", "year")}
    for row in rows:
        doc = model.documents.get(row)
        counters["type"][doc.type] += 1
        for name in ("law", "court"):
            if doc.metadata.get(name) is not None:
                counters[name][doc.metadata[name]] += 1
        if isinstance(doc.metadata.get("date"), str):
            counters["year"][int(doc.metadata["date"][:4])] += 1
    return {name: [{"value": v, "count": n} for v, n in sorted(c.items(), key=lambda vc: (-vc[1], vc[0]))]
            for name, c in counters.items()}


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "embedding"])
def test_search_facets_count_every_matching_document(client: TestClient, demo_model: Any, mode: str) -> None:
    r = client.get("/search", params={"q": QUESTION, "k": 3, "facets": ALL, "facet_limit": 1000, "mode": mode})
    assert r.status_code == 200, r.text
    body = r.json()
    SearchResponse.model_validate(body)
    assert len(body["results"]) == 3
    # asking rank for every row returns exactly the matched set: all rows with a positive lexical score and
    # the embedding candidates
    everything = rank(demo_model, QUESTION, k=len(demo_model.documents), mode=mode).rows.tolist()
    assert body["facets"] == _expected(demo_model, everything)
    total = sum(v["count"] for v in body["facets"]["type"])
    assert total == len(everything) > len(body["results"])


def test_search_facets_respect_filters_limits_and_order(client: TestClient, demo_model: Any) -> None:
    r = client.get("/search", params={"q": QUESTION, "facets": "court, year,court", "type": "decision",
                                      "facet_limit": 2})
    assert r.status_code == 200, r.text
    facets = r.json()["facets"]
    assert list(facets) == ["court", "year"]
    assert all(len(v) <= 2 for v in facets.values())
    full = client.get("/search", params={"q": QUESTION, "facets": "court,year,type", "type": "decision",
                                         "facet_limit": 1000}).json()["facets"]
    assert full["type"] == [{"value": "decision", "count": sum(v["count"] for v in full["type"])}]
    assert facets["court"] == full["court"][:2]
    for values in full.values():
        keys = [(-v["count"], v["value"]) for v in values]
        assert keys == sorted(keys)
    assert all(isinstance(v["value"], int) for v in full["year"])


def test_answers_without_facets_have_null_facets(client: TestClient, doc_ids: list[str]) -> None:
    assert client.get("/search", params={"q": QUESTION}).json()["facets"] is None
    assert client.post("/recommend", json={"positive": [doc_ids[0]]}).json()["facets"] is None
    assert client.post("/recommend", json={"positive": [doc_ids[0]], "facets": []}).json()["facets"] is None


@pytest.mark.parametrize("request_kind", ["search", "recommend"])
def test_unknown_facet_is_422_naming_it(client: TestClient, request_kind: str) -> None:
    if request_kind == "search":
        r = client.get("/search", params={"q": QUESTION, "facets": "law,colour"})
    else:
        r = client.post("/recommend", json={"text": QUESTION, "facets": ["colour"]})
    assert r.status_code == 422
    assert "colour" in r.json()["detail"] and "law, type, court, year" in r.json()["detail"]


def test_recommend_facets_count_the_candidates(client: TestClient, demo_model: Any, doc_ids: list[str]) -> None:
    # k=100 on the 80-document demo: every candidate is also a result, so the two counts must agree
    r = client.post("/recommend", json={"positive": [doc_ids[0]], "k": 100, "facets": ["law", "type", "year"],
                                        "facet_limit": 1000})
    assert r.status_code == 200, r.text
    body = r.json()
    RecommendResponse.model_validate(body)
    rows = [demo_model.row_of(res["id"]) for res in body["results"]]
    expected = _expected(demo_model, rows)
    assert body["facets"] == {name: expected[name] for name in ("law", "type", "year")}
    small = client.post("/recommend", json={"positive": [doc_ids[0]], "k": 2, "facets": ["type"]}).json()
    assert sum(v["count"] for v in small["facets"]["type"]) > len(small["results"])
