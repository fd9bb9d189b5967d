"""GET /suggest over the demo model."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from legalsearch.api.schemas import SuggestResponse


def _suggest(client: TestClient, q: str, **params: Any) -> dict[str, Any]:
    r = client.get("/suggest", params={"q": q, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert SuggestResponse.model_validate(body).model_dump(mode="json") == body
    return body


def test_keywords_complete_by_document_frequency(client: TestClient, demo_model: Any) -> None:
    body = _suggest(client, "kündi", k=5)
    assert body["query"] == "kündi" and body["model"] == demo_model.version
    found = body["suggestions"]
    assert found[0] == {"text": "kündigung", "kind": "keyword", "id": None, "df": 19, "law": None, "edits": 0}
    exact = [s for s in found if s["edits"] == 0]
    assert [s["df"] for s in exact] == sorted((s["df"] for s in exact), reverse=True)
    vocabulary = dict(zip(demo_model.keyword_model.vocabulary, demo_model.keyword_model.df.tolist(), strict=True))
    for s in found:
        assert vocabulary[s["text"].replace(" ", "_")] == s["df"]
    assert _suggest(client, "KUENDI", k=5)["suggestions"][0]["text"] == "kündigung"


def test_sections_and_laws(client: TestClient) -> None:
    sections = _suggest(client, "DMietG § 1", k=8)["suggestions"]
    assert {"text": "DMietG § 13 Ordentliche Kündigung des Vermieters", "kind": "section", "id": "DMietG § 13",
            "df": 1, "law": "DMietG", "edits": 0} in sections
    assert all(s["kind"] == "section" and s["id"].startswith("DMietG § 1") for s in sections)
    law = _suggest(client, "Demo-Miet")["suggestions"][0]
    assert law == {"text": "Demo-Mietrechtsgesetz (DMietG)", "kind": "law", "id": None, "df": 35, "law": "DMietG",
                   "edits": 0}
    assert _suggest(client, "dmietg")["suggestions"][0]["kind"] == "law"


def test_typos(client: TestClient) -> None:
    assert _suggest(client, "kündigugn")["suggestions"][0]["text"] == "kündigung"
    assert _suggest(client, "kündigugn")["suggestions"][0]["edits"] == 1
    assert _suggest(client, "Demo-Mietrechtsgestz")["suggestions"][0]["text"] == "Demo-Mietrechtsgesetz (DMietG)"
    assert _suggest(client, "kündu")["suggestions"]  # five characters: one typo
    assert _suggest(client, "kzn")["suggestions"] == []


def test_bad_requests_are_422(client: TestClient) -> None:
    for params in ({}, {"q": ""}, {"q": "   "}, {"q": "kü", "k": 0}, {"q": "kü", "k": 21}, {"q": "x" * 201}):
        r = client.get("/suggest", params=params)
        assert r.status_code == 422, params
        assert r.json()["detail"]
