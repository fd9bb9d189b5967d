"""The direct routes (``api.direct``) answer exactly what FastAPI answers: the same requests with their readers on
and off (``LEGALSEARCH_FAST_PATH``), byte for byte, and each request read once by one of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from legalsearch.api.app import create_app
from legalsearch.api.direct import DirectStats
from legalsearch.api.schemas import SearchParams

KEY = "direct-key"


@dataclass(frozen=True)
class Call:
    """One request as the tests send it."""

    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = "application/json"
    key: str | None = KEY


def _post(payload: object, **kwargs: object) -> Call:
    return Call("POST", "/recommend", json.dumps(payload).encode(), **kwargs)  # type: ignore[arg-type]


def _get(params: list[tuple[str, str]] | dict[str, str], **kwargs: object) -> Call:
    return Call("GET", "/search?" + urlencode(params), None, None, **kwargs)  # type: ignore[arg-type]


#: what happens to a request on the direct way: its reader reads it and the answer is 200 (OK), its reader reads it
#: and the endpoint fails (FAILED: computed once, answered by the app's exception handlers), FastAPI's handler reads
#: it (FASTAPI: the reader did not take it), or the key check refuses it before anyone reads it (REFUSED)
OK, FAILED, FASTAPI, REFUSED = "ok", "failed", "fastapi", "refused"


def _calls(ids: list[str]) -> list[tuple[Call, str]]:
    """Requests to the direct routes, each with what happens to it."""
    seed, other, third = ids[0], ids[1], ids[2]
    question = "Kann der Vermieter die Wohnung wegen Eigenbedarf kündigen?"
    return [
        (_post({"positive": [seed]}), OK),
        (_post({"positive": [seed, other], "negative": [third], "k": 3, "offset": 1}), OK),
        (_post({"positive": [seed, "no such id"], "exclude": [other], "collapse": False}), OK),
        (_post({"text": question, "filters": {"type": "statute"}}), OK),
        (_post({"keywords": ["kündigung", "mietvertrag"], "k": "5"}), OK),
        (_post({"text": question}, content_type="application/json; charset=utf-8"), OK),
        (_get({"q": question}), OK),
        (_get([("q", question), ("k", "3"), ("offset", "2"), ("expand", "false"), ("mode", "lexical")]), OK),
        (_get([("q", question), ("type", "statute"), ("type", "decision"), ("unknown", "ignored")]), OK),
        (_get({"q": question, "filters": '{"type": ["statute"]}', "date_from": "1900-01-01", "mode": "embedding"}),
         OK),
        (_get({"q": question, "expand": "yes", "k": "100"}), OK),
        (_get({"q": question, "facets": "law,type,court,year", "facet_limit": "2", "type": "decision"}), OK),
        (_post({"text": question, "facets": ["law", "year"], "facet_limit": 3}), OK),
        # a query naming sections puts them first, on both ways
        (_get({"q": "§ 12 DMietG Eigenbedarf", "k": "5"}), OK),
        (_get([("q", "Kündigung nach §§ 13, 14 DMietG"), ("type", "statute"), ("offset", "1")]), OK),
        (Call("GET", "/suggest?" + urlencode({"q": "kündi", "k": "3"}), None, None), OK),
        (Call("GET", "/suggest?" + urlencode({"q": "DMietG § 1", "other": "x"}), None, None), OK),
        (Call("GET", "/suggest?" + urlencode({"q": "kündigugn"}), None, None), OK),
        (_post({"positive": ["no such id"]}), FAILED),
        (_post({"text": "   "}), FAILED),
        (_post({"text": "und oder der die das"}), FAILED),
        (_post({"text": "x" * 30_000}), FAILED),
        (_post({"text": question, "facets": ["section"]}), FAILED),
        (_get({"q": ""}), FAILED),
        (_get({"q": question, "filters": "{not json"}), FAILED),
        (_get({"q": question, "filters": '{"nope": 1}'}), FAILED),
        (_get({"q": question, "date_from": "2020-01-01", "date_to": "2019-01-01"}), FAILED),
        (_get({"q": "x" * 30_000}), FAILED),
        (_get({"q": question, "facets": "law,color"}), FAILED),
        (Call("GET", "/suggest?" + urlencode({"q": "   "}), None, None), FAILED),
        (_post({"positive": [seed], "text": question}), FASTAPI),
        (_post({"positive": [seed], "k": 0}), FASTAPI),
        (_post({"positive": [seed], "unexpected": 1}), FASTAPI),
        (_post({"negative": [seed]}), FASTAPI),
        (_post([seed]), FASTAPI),
        (_post({"positive": [seed]}, content_type="text/plain"), FASTAPI),
        (_post({"positive": [seed]}, content_type=None), FASTAPI),
        (Call("POST", "/recommend", b'{"positive": ['), FASTAPI),
        (Call("POST", "/recommend", b'{"text": NaN}'), FASTAPI),
        (Call("POST", "/recommend", b'{"text": "\\ud800"}'), FASTAPI),
        (Call("POST", "/recommend", '{"text": "Kündigung"}'.encode("latin-1")), FASTAPI),
        (Call("POST", "/recommend", b""), FASTAPI),
        (_get({}), FASTAPI),
        (_get({"q": question, "k": "0"}), FASTAPI),
        (_get({"q": question, "k": "abc"}), FASTAPI),
        (_get([("q", question), ("k", "3"), ("k", "4")]), FASTAPI),
        (_get([("q", question), ("q", "Miete")]), FASTAPI),
        (_get({"q": question, "mode": "both"}), FASTAPI),
        (_get({"q": question, "date_from": "yesterday"}), FASTAPI),
        (_get({"q": question, "facets": "law", "facet_limit": "0"}), FASTAPI),
        (Call("GET", "/suggest?" + urlencode([("q", "kü"), ("q", "mi")]), None, None), FASTAPI),
        (Call("GET", "/suggest?" + urlencode({"q": "kü", "k": "50"}), None, None), FASTAPI),
        (Call("GET", "/suggest", None, None), FASTAPI),
        (_post({"positive": [seed]}, key=None), REFUSED),
        (_post({"positive": [seed]}, key="wrong"), REFUSED),
        (_get({"q": question}, key=None), REFUSED),
        (Call("GET", "/suggest?q=k%C3%BC", None, None, key=None), REFUSED),
    ]


def _send(client: TestClient, call: Call) -> tuple[int, dict[str, str], bytes]:
    headers = {}
    if call.content_type is not None:
        headers["Content-Type"] = call.content_type
    if call.key is not None:
        headers["X-API-Key"] = call.key
    resp = client.request(call.method, call.path, content=call.body, headers=headers)
    kept = {name: resp.headers[name] for name in ("content-type", "content-length") if name in resp.headers}
    return resp.status_code, kept, resp.content


@pytest.fixture(scope="module")
def clients(demo_models_dir: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """The same app with the direct readers on and off, both with an API key configured."""
    direct = create_app(make_settings(demo_models_dir, api_keys=[KEY], fast_path=True))
    plain = create_app(make_settings(demo_models_dir, api_keys=[KEY], fast_path=False))
    with TestClient(direct) as d, TestClient(plain) as p:
        yield d, p


def _stats(client: TestClient) -> DirectStats:
    stats: DirectStats = client.app.state.direct_stats  # type: ignore[attr-defined]
    return stats


def _counts(stats: DirectStats) -> tuple[int, int]:
    return sum(stats.read.values()), sum(stats.by_fastapi.values())


def test_direct_routes_answer_what_fastapi_answers(clients: tuple[TestClient, TestClient], doc_ids: list[str]) -> None:
    direct, plain = clients
    stats = _stats(direct)
    statuses = set()
    for call, fate in _calls(doc_ids):
        before = _counts(stats)
        got, expected = _send(direct, call), _send(plain, call)
        assert got == expected, call
        statuses.add(got[0])
        read, by_fastapi = (a - b for a, b in zip(_counts(stats), before, strict=True))
        assert (read, by_fastapi) == {OK: (1, 0), FAILED: (1, 0), FASTAPI: (0, 1), REFUSED: (0, 0)}[fate], call
        # FastAPI's handler may still answer 200 (it takes the last of repeated values)
        assert fate == FASTAPI or (got[0] == 200) == (fate == OK), (call, got[0])
    assert {200, 400, 401, 404, 413, 422} <= statuses
    assert stats.read["/recommend"] >= 7 and stats.read["/search"] >= 8 and stats.read["/suggest"] >= 3


def test_direct_readers_off_read_nothing(clients: tuple[TestClient, TestClient], doc_ids: list[str]) -> None:
    _, plain = clients
    assert _send(plain, _post({"positive": [doc_ids[0]]}))[0] == 200
    assert _counts(_stats(plain)) == (0, 0)


def test_direct_answers_are_counted_under_their_route(clients: tuple[TestClient, TestClient],
                                                     doc_ids: list[str]) -> None:
    direct, _ = clients

    def served() -> float:
        text = direct.get("/metrics").text
        line = next(
            (ln for ln in text.splitlines() if ln.startswith("legalsearch_http_requests_total{")
             and 'route="/recommend"' in ln and 'status="200"' in ln),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = served()
    assert _send(direct, _post({"positive": [doc_ids[0]]}))[0] == 200
    assert served() == before + 1


def test_without_a_model_both_ways_say_so(tmp_path: Path) -> None:
    direct = create_app(make_settings(tmp_path, fast_path=True))
    plain = create_app(make_settings(tmp_path, fast_path=False))
    with TestClient(direct) as d, TestClient(plain) as p:
        for call in (_post({"positive": ["x"]}, key=None), _get({"q": "Miete"}, key=None)):
            got = _send(d, call)
            assert got == _send(p, call)
            assert got[0] == 503


def test_a_failing_request_is_computed_once(clients: tuple[TestClient, TestClient], doc_ids: list[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that fails once its answer is being computed is answered from that failure, on either way."""
    from legalsearch.api.routes import recommend, search

    calls: list[str] = []
    for module, name in ((search, "search"), (recommend, "recommend")):
        original = getattr(module, name)

        def counted(*args: object, _original=original, _name=name, **kwargs: object) -> object:  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    failing = [_get({"q": "und oder der die das"}), _post({"positive": ["no such id"]}),
               _post({"text": "und oder der die das"})]
    for client in clients:
        for call in failing:
            calls.clear()
            status = _send(client, call)[0]
            assert len(calls) == 1 and status in (404, 422), (call, calls, status)


def test_the_direct_routes_keep_their_declared_openapi(clients: tuple[TestClient, TestClient]) -> None:
    """Reading requests directly changes nothing in the description: bodies, parameters and answers as declared."""
    direct, plain = clients
    assert direct.get("/openapi.json").json() == plain.get("/openapi.json").json()
    paths = direct.get("/openapi.json").json()["paths"]
    body = paths["/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RecommendRequest"}
    for path, answer in (("/recommend", "RecommendResponse"), ("/search", "SearchResponse"),
                         ("/suggest", "SuggestResponse")):
        operation = paths[path]["post" if path == "/recommend" else "get"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{answer}"}
    assert {p["name"] for p in paths["/search"]["get"]["parameters"]} == set(SearchParams.model_fields)


def test_direct_routes_answer_fused_recommendations_as_fastapi(models_copy: Path) -> None:
    """A model with a fitted fusion (and its table): reasons and signal parts are the same on both paths."""
    from legalsearch.engine import Model
    from legalsearch.evaluate import load_queries
    from legalsearch.recommend_eval import fit_model_fusion

    questions = Path(__file__).resolve().parents[1] / "fixtures" / "recommend" / "questions.jsonl"
    model = Model.load(models_copy / "current")
    fit_model_fusion(model, load_queries(questions), {"type": "statute"}, feedback=True, width=16, progress=False)
    fast = create_app(make_settings(models_copy, api_keys=[KEY], fast_path=True))
    plain = create_app(make_settings(models_copy, api_keys=[KEY], fast_path=False))
    calls = [
        _post({"positive": ["DMietG § 14"]}),
        _post({"positive": ["DMietG § 14"], "k": 3, "offset": 2, "exclude": ["DMietG § 15"]}),
        _post({"positive": ["DMietG § 14", "DMietG § 13"], "negative": ["DArbG § 8"], "facets": ["law"]}),
        _post({"positive": ["DArbG § 8"], "filters": {"type": "statute"}, "collapse": False}),
    ]
    with TestClient(fast) as f, TestClient(plain) as p:
        for call in calls:
            got, expected = _send(f, call), _send(p, call)
            assert got == expected and got[0] == 200, call
        first = json.loads(_send(f, calls[0])[2])["results"][0]["explanation"]
        assert set(first) == {"keywords", "reasons", "signals"} and first["reasons"]
        assert set(first["signals"]) >= {"word2vec", "lexical", "structure", "feedback"}
        assert _send(f, _post({"positive": ["no such id"]}))[0] == 404


def test_query_values_reads_scalars_once_and_lists_whole() -> None:
    from starlette.requests import Request

    from legalsearch.api.direct import ReadByFastAPI, query_values

    def request(query: str) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                        "query_string": query.encode("latin-1")})

    assert query_values(request("q=k%C3%BCndi&k=3&other=1&law=BGB&law=&x"), {"q", "k"}, {"law"}) == {
        "q": "kündi", "k": "3", "law": ["BGB", ""]}
    assert query_values(request("q="), {"q"}) == {"q": ""}
    with pytest.raises(ReadByFastAPI, match="repeated query parameter 'q'"):
        query_values(request("q=a&q=b"), {"q"})
