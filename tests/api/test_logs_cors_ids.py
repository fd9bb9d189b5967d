"""Request ids and the JSON request log (in-process and from a real uvicorn), CORS, and operation ids."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from servers import uvicorn_process

from legalsearch.api.app import create_app

QUESTION = "Kündigung wegen Eigenbedarf"


def test_request_id_is_kept_or_made_on_every_answer(client: TestClient, doc_ids: list[str]) -> None:
    made = client.get("/search", params={"q": QUESTION}).headers["x-request-id"]
    assert len(made) == 32 and int(made, 16) >= 0
    assert client.get("/search", params={"q": QUESTION}).headers["x-request-id"] != made
    for method, path, kwargs in (
        ("GET", "/search", {"params": {"q": QUESTION}}),  # fast path
        ("POST", "/recommend", {"json": {"positive": ["no such id"]}}),  # 404 from FastAPI
        ("GET", "/suggest", {"params": {"q": "kündi"}}),
        ("GET", "/nowhere", {}),
        ("POST", "/recommend", {"content": b"x" * 2_000_000}),  # 413 from the body limit
    ):
        r = client.request(method, path, headers={"X-Request-ID": "trace-42/a"}, **kwargs)
        assert r.headers["x-request-id"] == "trace-42/a", (path, r.status_code)
    for unusable in (b"has space", b"x" * 129, "ü".encode()):
        r = client.get("/livez", headers={b"X-Request-ID": unusable})
        assert r.headers["x-request-id"].encode() != unusable and len(r.headers["x-request-id"]) == 32


def test_request_log_writes_one_json_line_per_request(
    demo_models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(demo_models_dir, log_json=True, request_log=True))
    with TestClient(app) as c:
        capsys.readouterr()
        c.get("/search", params={"q": QUESTION}, headers={"X-Request-ID": "abc-1"})
        c.get("/documents/nope")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "legalsearch.access"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [("GET", "/search", 200),
                                                                      ("GET", "/documents/nope", 404)]
    assert access[0]["request_id"] == "abc-1" and len(access[1]["request_id"]) == 32
    assert all(isinstance(a["ms"], float) and a["ms"] > 0 for a in access)
    assert {"time", "level", "message"} <= set(access[0])


def test_request_log_is_off_by_default(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    client.get("/livez")
    assert "legalsearch.access" not in capsys.readouterr().err


def test_real_server_logs_json_lines_with_the_clients_request_id(models_copy: Path) -> None:
    with uvicorn_process(models_copy, "--no-access-log", LEGALSEARCH_LOG_JSON="true",
                         LEGALSEARCH_REQUEST_LOG="true") as (base, proc):
        r = httpx.get(f"{base}/suggest", params={"q": "kündi"}, headers={"X-Request-ID": "from-client"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "from-client"
    out = proc.stdout.read().decode() if proc.stdout else ""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "from-client"]
    assert [(m["method"], m["path"], m["status"]) for m in mine] == [("GET", "/suggest", 200)]
    assert any(line["logger"] == "legalsearch.api.state" or "model" in line["message"] for line in lines)


def test_cors_is_off_by_default_and_answers_allowed_origins(client: TestClient, demo_models_dir: Path) -> None:
    origin = {"Origin": "https://app.example"}
    assert "access-control-allow-origin" not in client.get("/search", params={"q": QUESTION}, headers=origin).headers
    app = create_app(make_settings(demo_models_dir, cors_origins=["https://app.example"], api_keys=["k"]))
    with TestClient(app) as c:
        pre = c.options("/recommend", headers={**origin, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type,x-api-key"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
        r = c.get("/search", params={"q": QUESTION}, headers={**origin, "X-API-Key": "k"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        other = c.get("/search", params={"q": QUESTION}, headers={"Origin": "https://evil.example", "X-API-Key": "k"})
        assert "access-control-allow-origin" not in other.headers


def test_operation_ids_are_named_after_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    ops = {(method.upper(), path): op["operationId"] for path, item in paths.items() for method, op in item.items()}
    expected = {
        ("POST", "/recommend"): "recommend",
        ("GET", "/search"): "search",
        ("GET", "/suggest"): "suggest",
        ("GET", "/terms/{term}/similar"): "similar_terms",
        ("GET", "/documents/{doc_id}"): "get_document",
        ("GET", "/models/current"): "get_current_model",
        ("POST", "/admin/reload"): "reload_model",
        ("GET", "/livez"): "livez",
        ("GET", "/readyz"): "readyz",
        ("GET", "/metrics"): "metrics",
    }
    assert {key: ops.get(key) for key in expected} == expected
    assert len(set(ops.values())) == len(ops), "operation ids must be unique"
    # FastAPI's default appends the path and method ("get_search_search_get")
    assert not [op for op in ops.values() if op.endswith(("_get", "_post"))]
