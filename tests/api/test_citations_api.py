"""GET /documents/{id}/citations and /cited-by, the counts on /documents/{id}, and /search naming a section."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from api_helpers import point_current
from fastapi.testclient import TestClient

from legalsearch.api.app import create_app
from legalsearch.api.schemas import CitationsResponse, CitedByResponse, SearchResponse
from tests.api.conftest import make_settings

DECISION = "DEMO-BGH-VIII-ZR-12-21"


def _path(doc_id: str, tail: str = "") -> str:
    return f"/documents/{quote(doc_id, safe='')}{tail}"


def test_outgoing_citations_resolve_with_titles_and_spans(client: TestClient) -> None:
    r = client.get(_path(DECISION, "/citations"))
    assert r.status_code == 200, r.text
    body = CitationsResponse.model_validate(r.json())
    text = client.get(_path(DECISION)).json()["text"]
    assert [c.id for c in body.citations] == ["DMietG § 13", "DMietG § 14"]
    for c in body.citations:
        assert text[c.start:c.end] == c.surface and c.kind == "decision->statute" and c.title
    assert body.citations[0].surface == "§ 13 Abs. 2 Nr. 2 DMietG"
    assert body.unresolved == []


def test_unresolved_citations_come_as_written_with_the_reason(client: TestClient) -> None:
    body = client.get(_path("DEMO-LG-BERLIN-67-S-22-20", "/citations")).json()
    assert {c["id"] for c in body["citations"]} >= {"DMietG § 5", "DMietG § 6"}
    assert [(u["surface"], u["reason"]) for u in body["unresolved"]] == [("§ 536c BGB", "unknown law")]
    statute = client.get(_path("DMietG § 16", "/citations")).json()
    assert [c["id"] for c in statute["citations"]] == ["DMietG § 13", "DMietG § 14", "DMietG § 15"]
    assert [(u["surface"], u["reason"]) for u in statute["unresolved"]] == [("§ 4", "not indexed")]


def test_cited_by_pages_and_filters_by_type(client: TestClient) -> None:
    r = client.get(_path("DMietG § 14", "/cited-by"))
    assert r.status_code == 200, r.text
    full = CitedByResponse.model_validate(r.json())
    assert full.total == len(full.cited_by) >= 3
    assert {"DEMO-BGH-VIII-ZR-12-21", "DMietG § 16"} <= {c.id for c in full.cited_by}
    counts = [c.count for c in full.cited_by]
    assert counts == sorted(counts, reverse=True)
    decisions = client.get(_path("DMietG § 14", "/cited-by"), params={"type": "decision"}).json()
    assert {c["type"] for c in decisions["cited_by"]} == {"decision"} and decisions["total"] < full.total
    page = client.get(_path("DMietG § 14", "/cited-by"), params={"offset": 1, "limit": 1}).json()
    assert [c["id"] for c in page["cited_by"]] == [full.cited_by[1].id] and page["total"] == full.total
    for c in full.cited_by:
        citing_text = client.get(_path(c.id)).json()["text"]
        assert citing_text[c.start:c.end] == c.surface


def test_document_carries_its_citation_counts(client: TestClient) -> None:
    doc = client.get(_path("DMietG § 14")).json()
    cited = client.get(_path("DMietG § 14", "/cited-by")).json()["total"]
    assert doc["citations"]["cited_by"] == cited and doc["citations"]["cites"] >= 1
    assert client.get(_path("DMietG § 16")).json()["citations"] == {"cites": 3, "cited_by": 1, "unresolved": 1}


@pytest.mark.parametrize("tail", ["/citations", "/cited-by", ""])
def test_unknown_ids_are_404_with_a_message(client: TestClient, tail: str) -> None:
    r = client.get(_path("BGB § 573", tail))
    assert r.status_code == 404 and "BGB § 573" in r.json()["detail"]


def test_bad_paging_is_422(client: TestClient) -> None:
    assert client.get(_path("DMietG § 14", "/cited-by"), params={"limit": 0}).status_code == 422
    assert client.get(_path("DMietG § 14", "/cited-by"), params={"offset": -1}).status_code == 422


def test_a_query_naming_a_section_puts_it_first_and_says_why(client: TestClient) -> None:
    r = client.get("/search", params={"q": "§ 12 DMietG Eigenbedarf", "k": 5})
    assert r.status_code == 200, r.text
    hits = SearchResponse.model_validate(r.json()).results
    assert hits[0].id == "DMietG § 12" and hits[0].explanation.cited_in_query == "§ 12 DMietG"
    assert all(h.explanation.cited_in_query is None for h in hits[1:])
    plain = client.get("/search", params={"q": "Eigenbedarf", "k": 5}).json()["results"]
    assert plain[0]["id"] != "DMietG § 12"  # else the test above would prove nothing
    several = client.get("/search", params={"q": "Kündigung §§ 14, 13 DMietG", "k": 5}).json()["results"]
    assert [h["id"] for h in several[:2]] == ["DMietG § 14", "DMietG § 13"]
    filtered = client.get("/search", params={"q": "§ 12 DMietG Eigenbedarf", "type": "decision"}).json()["results"]
    assert all(h["type"] == "decision" and h["explanation"]["cited_in_query"] is None for h in filtered)


def test_a_model_without_a_graph_answers_422_and_no_counts(models_copy: Path) -> None:
    model_dir = (models_copy / "current").resolve()
    shutil.rmtree(model_dir / "citations")
    import json

    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith("citations/")}
    (model_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    # current.json pins the manifest: an edited one must be made current again to be trusted
    point_current(models_copy, model_dir.name)
    with TestClient(create_app(make_settings(models_copy))) as c:
        r = c.get(_path(DECISION, "/citations"))
        assert r.status_code == 422 and "citation graph" in r.json()["detail"]
        assert c.get(_path(DECISION)).json()["citations"] is None
        assert c.get("/search", params={"q": "§ 12 DMietG"}).status_code == 200


def test_a_damaged_graph_is_refused_on_load(models_copy: Path) -> None:
    from legalsearch.engine import Model
    from legalsearch.errors import ArtifactError

    model_dir = (models_copy / "current").resolve()
    indices = model_dir / "citations" / "cites.indices.npy"
    arr = np.load(indices)
    arr[0] = 10_000
    np.save(indices, arr)
    with pytest.raises(ArtifactError, match=r"cites\.indices\.npy"):
        Model.load(model_dir)
    # even when the hashes are not checked, the arrays are
    with pytest.raises(ArtifactError, match="indices outside"):
        Model.load(model_dir, verify=False)
