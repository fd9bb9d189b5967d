"""Every endpoint and every error status, through FastAPI's TestClient over the real demo model."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from api_helpers import copy_version, damage, point_current, writable
from conftest import make_settings
from fastapi.testclient import TestClient

from legalsearch.api.app import create_app


def _doc_path(doc_id: str) -> str:
    return "/documents/" + quote(doc_id, safe="")


def _first_of_type(demo_model, wanted: str) -> str:  # type: ignore[no-untyped-def]
    for row in range(len(demo_model.documents)):
        doc = demo_model.documents.get(row)
        if doc.type == wanted:
            return str(doc.id)
    pytest.fail(f"the demo corpus has no document of type {wanted!r}")


# ---- documents, models, health ----------------------------------------------------------------------


def test_document_by_encoded_id_with_space_and_paragraph_sign(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    doc_id = next(i for i in demo_model.index.ids if " " in i and "§" in i)
    r = client.get(_doc_path(doc_id))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == doc_id
    assert body["text"] == demo_model.document(doc_id).text
    assert body["model"] == demo_model.version
    assert body["keywords"], "a document should come with its top keywords"
    weights = [kw["weight"] for kw in body["keywords"]]
    assert weights == sorted(weights, reverse=True)


def test_unknown_document_is_404_naming_it(client: TestClient) -> None:
    r = client.get(_doc_path("DMietG § 99999"))
    assert r.status_code == 404
    assert "DMietG § 99999" in r.json()["detail"]


def test_models_current_is_the_served_manifest(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/models/current")
    assert r.status_code == 200
    assert r.json()["model"] == demo_model.version
    assert r.json()["manifest"]["files"] == demo_model.manifest["files"]


def test_livez_and_readyz(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/livez").json() == {"status": "alive"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["ready"] is True
    assert r.json()["model"] == demo_model.version
    assert r.json()["last_reload_error"] is None


def test_metrics_count_requests_by_route_template(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    client.get(_doc_path(demo_model.index.ids[0]))
    client.get(_doc_path("nope"))
    text = client.get("/metrics").text
    assert re.search(r'legalsearch_http_requests_total\{method="GET",route="/documents/\{doc_id:path\}",'
                     r'status="200"\} [1-9]', text)
    assert 'route="/documents/{doc_id:path}",status="404"' in text
    assert "legalsearch_http_request_duration_seconds_bucket" in text
    assert f'legalsearch_model_info{{version="{demo_model.version}"}} 1.0' in text


def test_unknown_path_is_404_and_counted_under_one_label(client: TestClient) -> None:
    assert client.get("/no/such/route").status_code == 404
    assert 'route="<unmatched>"' in client.get("/metrics").text


# ---- recommend ---------------------------------------------------------------------------------------


def test_recommend_by_seed_never_returns_seed_and_explains(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    seed = _first_of_type(demo_model, "statute")
    r = client.post("/recommend", json={"positive": [seed], "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == demo_model.version
    ids = [res["id"] for res in body["results"]]
    assert len(ids) == 5 and seed not in ids
    assert body["ignored_ids"] == []
    first = body["results"][0]
    assert set(first) == {"id", "title", "type", "score", "metadata", "snippet", "explanation"}
    assert any(res["explanation"]["keywords"] for res in body["results"])
    scores = [res["score"] for res in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_pagination_is_stable(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    seed = demo_model.index.ids[0]
    full = client.post("/recommend", json={"positive": [seed], "k": 8}).json()["results"]
    page2 = client.post("/recommend", json={"positive": [seed], "k": 4, "offset": 4}).json()["results"]
    assert [r["id"] for r in page2] == [r["id"] for r in full[4:8]]


def test_recommend_unknown_ids_are_ignored_or_404(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    seed = demo_model.index.ids[0]
    r = client.post("/recommend", json={"positive": [seed, "nope § 1"], "negative": ["nope § 2"]})
    assert r.status_code == 200
    assert r.json()["ignored_ids"] == ["nope § 1", "nope § 2"]
    r = client.post("/recommend", json={"positive": ["nope § 1", "nope § 3"]})
    assert r.status_code == 404
    assert "nope § 1" in r.json()["detail"] and "nope § 3" in r.json()["detail"]


def test_recommend_by_text_filters_and_exclude(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    statute = demo_model.document(_first_of_type(demo_model, "statute"))
    r = client.post("/recommend", json={"text": statute.text, "k": 20, "filters": {"type": "decision"}})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results and all(res["type"] == "decision" for res in results)
    excluded = results[0]["id"]
    r = client.post("/recommend", json={"text": statute.text, "filters": {"type": ["decision"]},
                                        "exclude": [excluded]})
    assert excluded not in [res["id"] for res in r.json()["results"]]


def test_recommend_date_range_filter(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    if "date" not in demo_model.documents.fields:
        pytest.fail("the demo corpus should carry dates on decisions")
    dates = sorted(
        str(v) for row in range(len(demo_model.documents))
        if isinstance(v := demo_model.documents.field_value("date", row), str)
    )
    lo, hi = dates[len(dates) // 4], dates[3 * len(dates) // 4]
    seed = _first_of_type(demo_model, "decision")
    r = client.post("/recommend", json={"positive": [seed], "k": 50, "filters": {"date": {"from": lo, "to": hi}}})
    assert r.status_code == 200, r.text
    got = [res["metadata"]["date"] for res in r.json()["results"]]
    assert got and all(lo <= d <= hi for d in got)


def test_recommend_by_keywords(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    terms = [kw.term for kw in demo_model.keywords(demo_model.index.ids[0], 3)]
    r = client.post("/recommend", json={"keywords": terms, "k": 3})
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 3


def test_recommend_by_text_answers_what_search_answers(client: TestClient) -> None:
    question = "Darf mein Vermieter wegen Eigenbedarf kündigen?"
    rec = client.post("/recommend", json={"text": question, "k": 5, "collapse": False, "filters": {"type": "statute"}})
    hits = client.get("/search", params={"q": question, "k": 5, "type": "statute"})
    assert rec.status_code == 200 and hits.status_code == 200, (rec.text, hits.text)
    results = rec.json()["results"]
    assert [r["id"] for r in results] == [h["id"] for h in hits.json()["results"]]
    for r, h in zip(results, hits.json()["results"], strict=True):
        assert r["score"] == pytest.approx(h["score"], abs=1e-6)
        assert r["explanation"]["keywords"] == h["explanation"]["keywords"]
        assert set(r["explanation"]["signals"]) == {"lexical", "word2vec"}
    named = client.post("/recommend", json={"text": "§ 14 DMietG Eigenbedarf", "k": 2}).json()["results"]
    assert named[0]["id"] == "DMietG § 14"
    assert named[0]["explanation"]["reasons"] == ["named in the request: § 14 DMietG"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "exactly one of"),
        ({"text": "Miete", "keywords": ["miete"]}, "exactly one of"),
        ({"positive": []}, "at least 1"),
        ({"negative": ["x"], "text": "Miete"}, "only work together"),
        ({"text": "Miete", "k": 0}, "greater than or equal to 1"),
        ({"text": "Miete", "k": 101}, "less than or equal to 100"),
        ({"text": "Miete", "offset": -1}, "greater than or equal to 0"),
        ({"text": "Miete", "filters": {"date": {"from": "2020-01-01", "to": "2019-01-01"}}}, "is after"),
        ({"text": "Miete", "bogus": 1}, "Extra inputs"),
    ],
)
def test_recommend_invalid_bodies_are_422_with_reason(client: TestClient, body: dict, needle: str) -> None:
    r = client.post("/recommend", json=body)
    assert r.status_code == 422, r.text
    assert needle in str(r.json()["detail"])


@pytest.mark.parametrize("text", ["", "   ", "und oder der die das", "123 456"])
def test_empty_or_stopword_text_is_422_saying_so(client: TestClient, text: str) -> None:
    r = client.post("/recommend", json={"text": text})
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)
    assert "empty" in r.json()["detail"] or "usable" in r.json()["detail"]


def test_unknown_filter_field_is_422(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/recommend", json={"text": "Kündigung", "filters": {"colour": "red"}})
    assert r.status_code == 422
    assert "colour" in r.json()["detail"]


def test_invalid_json_and_non_utf8_bodies(client: TestClient) -> None:
    r = client.post("/recommend", content=b'{"text": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "not valid JSON" in str(r.json()["detail"])
    r = client.post("/recommend", content=b'{"text": "K\xfcndigung"}', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "UTF-8" in r.json()["detail"]


def test_body_over_limit_is_413_by_header_and_by_stream(demo_models_dir: Path) -> None:
    app = create_app(make_settings(demo_models_dir, max_body_bytes=1000))
    with TestClient(app) as c:
        big = b'{"text": "' + b"a" * 2000 + b'"}'
        r = c.post("/recommend", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert "1000 bytes" in r.json()["detail"]

        def chunks():  # type: ignore[no-untyped-def]
            yield b'{"text": "'
            for _ in range(20):
                yield b"a" * 100
            yield b'"}'

        # a generator body goes out chunked, without Content-Length: only counting catches it
        r = c.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_text_and_query_over_max_chars_are_413(demo_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(demo_models_dir, max_text_chars=50))) as c:
        r = c.post("/recommend", json={"text": "Miete " * 20})
        assert r.status_code == 413 and "limit is 50" in r.json()["detail"]
        assert c.get("/search", params={"q": "Miete " * 20}).status_code == 413
        assert c.post("/recommend", json={"keywords": ["miete"] * 20}).status_code == 413


# ---- search ------------------------------------------------------------------------------------------


def test_search_hybrid_with_marks_and_expansion(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    statute = demo_model.document(_first_of_type(demo_model, "statute"))
    r = client.get("/search", params={"q": statute.title or statute.text[:60], "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == demo_model.version and body["query_terms"]
    assert body["results"] and len(body["results"]) <= 5
    hit = body["results"][0]
    for key in ("id", "score", "lexical_score", "embedding_score", "snippet", "matched_terms", "explanation"):
        assert key in hit
    assert any("<mark>" in h["snippet"] and h["matched_terms"] for h in body["results"])
    for e in body["expanded_terms"]:
        assert set(e) == {"term", "source", "similarity", "weight"}


def test_search_filters_as_params_and_json(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    decision = demo_model.document(_first_of_type(demo_model, "decision"))
    q = decision.title or decision.text[:80]
    r = client.get("/search", params={"q": q, "type": "statute", "k": 20})
    assert r.status_code == 200, r.text
    assert r.json()["results"] and all(h["type"] == "statute" for h in r.json()["results"])
    r = client.get("/search", params={"q": q, "filters": '{"type": ["decision"]}', "k": 20})
    assert r.status_code == 200
    assert r.json()["results"] and all(h["type"] == "decision" for h in r.json()["results"])
    r = client.get("/search", params={"q": q, "date_from": "1900-01-01", "k": 20})
    assert r.status_code == 200
    assert all(h["metadata"].get("date") for h in r.json()["results"])


def test_search_list_params_are_declared_once_and_repeatable(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    """``SEARCH_LIST_PARAMS`` (the list fields of ``SearchParams``) are what OpenAPI shows as arrays, and each
    repeated value filters its metadata field (any of them)."""
    from legalsearch.api.schemas import SEARCH_LIST_PARAMS

    assert SEARCH_LIST_PARAMS == ("type", "law", "court")
    parameters = client.get("/openapi.json").json()["paths"]["/search"]["get"]["parameters"]
    declared = {p["name"]: p["schema"] for p in parameters}
    arrays = {name for name, schema in declared.items()
              if schema.get("type") == "array" or any(s.get("type") == "array" for s in schema.get("anyOf", ()))}
    assert arrays == set(SEARCH_LIST_PARAMS)
    for name in SEARCH_LIST_PARAMS:
        values = sorted({str(v) for d in map(demo_model.document, demo_model.index.ids)
                         if (v := d.type if name == "type" else d.metadata.get(name))})[:2]
        r = client.get("/search", params=[("q", "Kündigung"), ("k", "50"), *((name, v) for v in values)])
        assert r.status_code == 200, r.text
        found = r.json()["results"]
        assert found and {h["type"] if name == "type" else h["metadata"][name] for h in found} <= set(values)


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"q": "und der die"}, 422, "usable"),
        ({"q": ""}, 422, "empty"),
        ({}, 422, "Field required"),
        ({"q": "Miete", "filters": "{not json"}, 422, "not valid JSON"),
        ({"q": "Miete", "filters": '{"colour": "red"}'}, 422, "colour"),
        ({"q": "Miete", "filters": '{"date": {"from": "yesterday"}}'}, 422, "filters.date"),
        ({"q": "Miete", "date_from": "2020-01-01", "date_to": "2019-01-01"}, 422, "is after"),
        ({"q": "Miete", "mode": "magic"}, 422, "hybrid"),
        ({"q": "Miete", "offset": 10_001}, 422, "less than or equal"),
    ],
)
def test_search_bad_input_is_422(client: TestClient, params: dict, status: int, needle: str) -> None:
    r = client.get("/search", params=params)
    assert r.status_code == status, r.text
    assert needle in str(r.json()["detail"])


# ---- terms -------------------------------------------------------------------------------------------


def test_similar_terms_and_unknown_term(client: TestClient, demo_model) -> None:  # type: ignore[no-untyped-def]
    term = next(t for t in demo_model.keyword_model.vocabulary if t in demo_model.vectors.key_to_index)
    r = client.get(f"/terms/{quote(term)}/similar", params={"k": 3})
    assert r.status_code == 200, r.text
    similar = r.json()["similar"]
    assert 0 < len(similar) <= 3 and term not in [s["term"] for s in similar]
    assert [s["score"] for s in similar] == sorted((s["score"] for s in similar), reverse=True)
    r = client.get("/terms/quasselstrippenxyz/similar")
    assert r.status_code == 404 and "quasselstrippenxyz" in r.json()["detail"]


# ---- no model, damaged model, reload, API keys ---------------------------------------------------------


def test_without_model_the_app_starts_and_answers_503(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "empty"))) as c:
        assert c.get("/livez").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and "no model" in r.json()["detail"]
        for resp in (c.get("/search", params={"q": "Miete"}), c.post("/recommend", json={"text": "Miete"}),
                     c.get("/models/current"), c.get("/documents/x"), c.get("/terms/miete/similar")):
            assert resp.status_code == 503, resp.text
            assert "no model" in resp.json()["detail"]


def test_model_trained_later_becomes_ready_without_restart(demo_models_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    with TestClient(create_app(make_settings(models))) as c:
        assert c.get("/readyz").status_code == 503
        version = (demo_models_dir / "current").resolve().name
        import shutil

        shutil.copytree(demo_models_dir / version, models / version)
        point_current(models, version)
        r = c.post("/admin/reload")
        assert r.status_code == 200 and r.json()["changed"] is True
        assert c.get("/readyz").status_code == 200
        assert c.post("/recommend", json={"text": "Kündigung"}).json()["model"] == version


def test_damaged_model_is_refused_and_old_one_keeps_serving(models_copy: Path, demo_model) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(make_settings(models_copy))) as c:
        broken = copy_version(models_copy, "broken")
        damage(broken)
        point_current(models_copy, "broken")
        r = c.post("/admin/reload")
        assert r.status_code == 200 and r.json()["changed"] is False
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["model"] == demo_model.version
        error = ready.json()["last_reload_error"]
        assert error["version"] == "broken" and "docvectors.npy" in error["reason"]
        assert str(models_copy) not in error["reason"], "reasons must not leak server paths"
        assert c.get("/models/current").json()["model"] == demo_model.version
        assert 'legalsearch_model_reloads_total{outcome="refused"}' in c.get("/metrics").text


def test_damaged_model_at_startup_falls_back_to_a_good_version(models_copy: Path, demo_model) -> None:  # type: ignore[no-untyped-def]
    broken = copy_version(models_copy, "broken")
    damage(broken, "ids.txt")
    point_current(models_copy, "broken")
    with TestClient(create_app(make_settings(models_copy))) as c:
        r = c.get("/readyz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == demo_model.version and body["current"] == "broken"
        assert "ids.txt" in body["fallback"] and demo_model.version in body["fallback"]
        assert body["last_reload_error"]["version"] == "broken"
        assert [w["model"] for w in body["workers"]] == [demo_model.version]
        assert c.get("/search", params={"q": "Miete"}).json()["model"] == demo_model.version


def test_damaged_model_at_startup_gives_503_with_reason(models_copy: Path) -> None:
    broken = copy_version(models_copy, "broken")
    damage(broken, "ids.txt")
    point_current(models_copy, "broken")
    # no other version to fall back to
    for other in models_copy.iterdir():
        if other.is_dir() and not other.is_symlink() and other.name != "broken":
            shutil.rmtree(other)
    with TestClient(create_app(make_settings(models_copy))) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "ids.txt" in r.json()["detail"] and r.json()["last_reload_error"]["version"] == "broken"
        assert "ids.txt" in c.get("/search", params={"q": "Miete"}).json()["detail"]


def test_api_keys(demo_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(demo_models_dir, api_keys=["s3cret", "other"]))) as c:
        assert c.get("/livez").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 200
        r = c.get("/models/current")
        assert r.status_code == 401 and "missing" in r.json()["detail"]
        r = c.get("/models/current", headers={"X-API-Key": "wrong"})
        assert r.status_code == 401 and "invalid" in r.json()["detail"]
        assert c.get("/models/current", headers={"X-API-Key": "other"}).status_code == 200
        # search keys never reach admin routes; with no admin key configured nobody does
        for headers in ({}, {"X-API-Key": "s3cret"}, {"X-API-Key": "wrong"}):
            r = c.post("/admin/reload", headers=headers)
            assert r.status_code == 403 and "LEGALSEARCH_ADMIN_KEYS" in r.json()["detail"], (headers, r.text)


def test_admin_keys_are_separate_from_search_keys(demo_models_dir: Path) -> None:
    settings = make_settings(demo_models_dir, api_keys=["search-key"], admin_keys=["admin-key"])
    with TestClient(create_app(settings)) as c:
        assert c.post("/admin/reload").status_code == 401
        assert c.post("/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
        r = c.post("/admin/reload", headers={"X-API-Key": "search-key"})
        assert r.status_code == 403 and "may search but not use admin routes" in r.json()["detail"]
        r = c.post("/admin/reload", headers={"X-API-Key": "admin-key"})
        assert r.status_code == 200 and r.json()["workers"][0]["ready"] is True
        # an admin key also searches
        for key in ("search-key", "admin-key"):
            assert c.get("/search", params={"q": "Miete"}, headers={"X-API-Key": key}).status_code == 200
        spec = c.get("/openapi.json").json()
        assert "403" in spec["paths"]["/admin/reload"]["post"]["responses"]


def test_admin_keys_alone_leave_search_open(demo_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(demo_models_dir, admin_keys=["admin-key"]))) as c:
        assert c.get("/search", params={"q": "Miete"}).status_code == 200
        assert c.post("/admin/reload").status_code == 401
        assert c.post("/admin/reload", headers={"X-API-Key": "admin-key"}).status_code == 200


def test_models_current_hides_corpus_paths_without_an_admin_key(demo_models_dir: Path, demo_model) -> None:  # type: ignore[no-untyped-def]
    paths = demo_model.manifest["corpus"]["paths"]
    assert paths and all("demo" in p for p in paths)
    for settings in (make_settings(demo_models_dir),
                     make_settings(demo_models_dir, api_keys=["search-key"], admin_keys=["admin-key"])):
        with TestClient(create_app(settings)) as c:
            shown = c.get("/models/current", headers={"X-API-Key": "search-key"}).json()["manifest"]
            assert shown["corpus"]["paths"] == ["<hidden>"] * len(paths)
            assert shown["corpus"]["extra_text"] == ["<hidden>"] * len(demo_model.manifest["corpus"]["extra_text"])
            assert "corpora/demo" not in c.get("/models/current", headers={"X-API-Key": "search-key"}).text
            assert shown["files"] == demo_model.manifest["files"]
            if settings.admin_keys:
                full = c.get("/models/current", headers={"X-API-Key": "admin-key"}).json()["manifest"]
                assert full["corpus"]["paths"] == paths


def test_openapi_documents_every_field(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/recommend", "/search", "/terms/{term}/similar", "/documents/{doc_id}", "/models/current",
                 "/livez", "/readyz", "/metrics", "/admin/reload"):
        assert path in spec["paths"], path
    undocumented = [
        f"{name}.{field}"
        for name, schema in spec["components"]["schemas"].items()
        if not name.startswith(("HTTPValidationError", "ValidationError"))
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []
    params = [p for op in spec["paths"]["/search"].values() for p in op["parameters"]]
    assert all(p.get("description") for p in params)


@pytest.mark.parametrize(
    "raw",
    [b'{"text": "Miete \\ud800"}', b'{"positive": ["\\udfff"]}', b'{"text": "Miete", "filters": {"\\ud800": 1}}'],
)
def test_unpaired_surrogates_are_422_not_500(client: TestClient, raw: bytes) -> None:
    r = client.post("/recommend", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "invalid Unicode" in str(r.json()["detail"])


def test_surrogate_in_search_filter_field_is_echoed_safely(client: TestClient) -> None:
    r = client.get("/search", params={"q": "Miete", "filters": '{"\\ud800": 1}'})
    assert r.status_code == 422
    assert "\\ud800" in r.text


def test_non_json_body_says_it_must_be_a_json_object(client: TestClient) -> None:
    r = client.post("/recommend", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "must be a JSON object" in str(r.json()["detail"])


# ---- answers match their declared schemas -------------------------------------------------------------
# the hot routes assemble plain JSON for speed; the OpenAPI models must still describe them exactly


@pytest.mark.parametrize(
    ("method", "path", "body", "schema"),
    [
        ("POST", "/recommend", {"positive": ["DMietG § 12"], "k": 5}, "RecommendResponse"),
        ("POST", "/recommend", {"text": "Der Vermieter kündigt wegen Eigenbedarfs.", "k": 3}, "RecommendResponse"),
        ("POST", "/recommend", {"keywords": ["kündigung", "miete"]}, "RecommendResponse"),
        ("GET", "/search?q=K%C3%BCndigung%20des%20Mietvertrags&k=4", None, "SearchResponse"),
        ("GET", "/terms/kündigung/similar?k=3", None, "SimilarTermsResponse"),
        ("GET", "/suggest?q=k%C3%BCndi", None, "SuggestResponse"),
        ("GET", "/documents/DMietG%20%C2%A7%2012", None, "DocumentResponse"),
        ("GET", "/documents/DEMO-BGH-VIII-ZR-12-21/citations", None, "CitationsResponse"),
        ("GET", "/documents/DMietG%20%C2%A7%2014/cited-by", None, "CitedByResponse"),
    ],
)
def test_answers_validate_against_their_response_models(
    client: TestClient, method: str, path: str, body: dict[str, object] | None, schema: str
) -> None:
    from legalsearch.api import schemas

    r = client.request(method, path, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    model = getattr(schemas, schema)
    parsed = model.model_validate_json(r.content, strict=False)
    # nothing extra, nothing missing: the dumped model equals the answer field for field
    assert parsed.model_dump(mode="json") == r.json()
    items = next(v for key in ("results", "similar", "suggestions", "keywords", "citations", "cited_by")
                 if (v := r.json().get(key)) is not None)
    assert items, f"{path} gave no results to check"


def test_fastapi_opentelemetry_is_off_unless_asked_for(demo_models_dir: Path) -> None:
    # FastAPI keeps its resolved telemetry config privately; the public side is only what a provider records
    kinds = ("tracing", "metrics", "logs")
    off = create_app(make_settings(demo_models_dir))
    on = create_app(make_settings(demo_models_dir, opentelemetry=True))
    assert not any(off._telemetry[k] for k in kinds)  # type: ignore[literal-required]
    assert all(on._telemetry[k] for k in kinds)  # type: ignore[literal-required]
    assert not off._native_telemetry.enabled()


def test_search_answer_shows_expansions_as_the_api_declares(client: TestClient) -> None:
    r = client.get("/search", params={"q": "Kündigung des Mietvertrags wegen Eigenbedarf", "k": 3})
    assert r.status_code == 200, r.text
    expanded = r.json()["expanded_terms"]
    assert expanded, "the demo model expanded nothing: the check below would be empty"
    for e in expanded:
        assert list(e) == ["term", "source", "similarity", "weight"]
        assert isinstance(e["similarity"], float) and isinstance(e["weight"], float)
    for hit in r.json()["results"]:
        for kw in hit["explanation"]["keywords"]:
            assert list(kw) == ["term", "weight"] and isinstance(kw["weight"], float)


def test_a_swap_freezes_the_heap_and_the_old_model_is_collected(models_copy: Path) -> None:
    import gc
    import weakref

    from legalsearch.api.state import ModelHolder

    holder = ModelHolder(models_copy)
    assert holder.refresh(force=True).changed
    # the loaded model sits out of the cyclic collector's reach: a full collection no longer walks it
    assert gc.get_freeze_count() > 0
    first = weakref.ref(holder.model)
    for version in ("20990101-000000-aaaaaa", "20990101-000000-bbbbbb"):
        copy_version(models_copy, version)
        point_current(models_copy, version)
        assert holder.refresh(force=False).changed
    # each swap unfreezes and collects first: a replaced model does not stay frozen forever
    assert first() is None
    gc.unfreeze()


class _Touch:
    """A pickle that, when loaded, creates a file: what a hostile model folder would run instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_an_unlisted_folder_in_a_model_is_refused_and_never_read(models_copy: Path, demo_model,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    v2 = copy_version(models_copy, "v2")
    seed = v2 / "thesaurus" / "seed-9"
    seed.mkdir(parents=True)
    # what a loader globbing thesaurus/seed-* would take: a gensim pickle, and the plain vector files
    (seed / "vectors.kv").write_bytes(pickle.dumps(_Touch(marker)))
    for name in ("vectors.npy", "vectors_keys.txt"):
        if (v2 / name).exists():
            shutil.copy(v2 / name, seed / name)
    point_current(models_copy, "v2")
    with TestClient(create_app(make_settings(models_copy))) as c:
        ready = c.get("/readyz").json()
        assert not marker.exists(), "a file the manifest does not list was unpickled"
        assert ready["model"] == demo_model.version and ready["current"] == "v2"
        error = ready["last_reload_error"]
        assert error["version"] == "v2" and "thesaurus" in error["reason"] and "not listed" in error["reason"]
        assert "v2" in ready["fallback"]


def test_a_swapped_pickle_is_never_loaded(models_copy: Path, demo_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pickle-ran"
    v2 = copy_version(models_copy, "v2")
    # the attacker writes a pickle where gensim's vectors used to be and lists it, hash and all, in the manifest
    payload = pickle.dumps(_Touch(marker))
    (v2 / "vectors.kv").write_bytes(payload)
    manifest = json.loads((v2 / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["vectors.kv"] = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
    writable(v2 / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    point_current(models_copy, "v2")
    with TestClient(create_app(make_settings(models_copy))) as c:
        assert not marker.exists(), "loading a model ran its pickle"
        assert c.get("/readyz").json()["model"] == "v2"
    # and a manifest edited after current named it is not the one current.json recorded: refused
    manifest["counts"]["vocabulary"] += 1
    writable(v2 / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with TestClient(create_app(make_settings(models_copy))) as c:
        ready = c.get("/readyz").json()
        assert ready["model"] == demo_model.version
        assert "not the one current.json recorded" in ready["last_reload_error"]["reason"]
    assert not marker.exists()
