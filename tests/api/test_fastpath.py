"""The fast path answers exactly what FastAPI answers: the same requests, fast path on and off, byte for byte."""

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
from legalsearch.api.fastpath import FastPathStats

KEY = "fast-path-key"


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


def _calls(ids: list[str]) -> tuple[list[Call], list[Call]]:
    """Requests the fast path answers, and requests it leaves to FastAPI."""
    seed, other, third = ids[0], ids[1], ids[2]
    question = "Kann der Vermieter die Wohnung wegen Eigenbedarf kündigen?"
    fast = [
        _post({"positive": [seed]}),
        _post({"positive": [seed, other], "negative": [third], "k": 3, "offset": 1}),
        _post({"positive": [seed, "no such id"], "exclude": [other], "collapse": False}),
        _post({"text": question, "filters": {"type": "statute"}}),
        _post({"keywords": ["kündigung", "mietvertrag"], "k": "5"}),
        _post({"text": question}, content_type="application/json; charset=utf-8"),
        _get({"q": question}),
        _get([("q", question), ("k", "3"), ("offset", "2"), ("expand", "false"), ("mode", "lexical")]),
        _get([("q", question), ("type", "statute"), ("type", "decision"), ("unknown", "ignored")]),
        _get({"q": question, "filters": '{"type": ["statute"]}', "date_from": "1900-01-01", "mode": "embedding"}),
        _get({"q": question, "expand": "yes", "k": "100"}),
        _get({"q": question, "facets": "law,type,court,year", "facet_limit": "2", "type": "decision"}),
        _post({"text": question, "facets": ["law", "year"], "facet_limit": 3}),
        # a query naming sections puts them first, on both paths
        _get({"q": "§ 12 DMietG Eigenbedarf", "k": "5"}),
        _get([("q", "Kündigung nach §§ 13, 14 DMietG"), ("type", "statute"), ("offset", "1")]),
        Call("GET", "/suggest?" + urlencode({"q": "kündi", "k": "3"}), None, None),
        Call("GET", "/suggest?" + urlencode({"q": "DMietG § 1", "other": "x"}), None, None),
        Call("GET", "/suggest?" + urlencode({"q": "kündigugn"}), None, None),
    ]
    left = [
        _post({"positive": ["no such id"]}),
        _post({"text": "   "}),
        _post({"text": "und oder der die das"}),
        _post({"text": "x" * 30_000}),
        _post({"positive": [seed], "text": question}),
        _post({"positive": [seed], "k": 0}),
        _post({"positive": [seed], "unexpected": 1}),
        _post({"negative": [seed]}),
        _post([seed]),
        _post({"positive": [seed]}, key=None),
        _post({"positive": [seed]}, key="wrong"),
        _post({"positive": [seed]}, content_type="text/plain"),
        _post({"positive": [seed]}, content_type=None),
        Call("POST", "/recommend", b'{"positive": ['),
        Call("POST", "/recommend", b'{"text": NaN}'),
        Call("POST", "/recommend", b'{"text": "\\ud800"}'),
        Call("POST", "/recommend", '{"text": "Kündigung"}'.encode("latin-1")),
        Call("POST", "/recommend", b""),
        _get({}),
        _get({"q": ""}),
        _get({"q": question, "k": "0"}),
        _get({"q": question, "k": "abc"}),
        _get([("q", question), ("k", "3"), ("k", "4")]),
        _get([("q", question), ("q", "Miete")]),
        _get({"q": question, "mode": "both"}),
        _get({"q": question, "filters": "{not json"}),
        _get({"q": question, "filters": '{"nope": 1}'}),
        _get({"q": question, "date_from": "2020-01-01", "date_to": "2019-01-01"}),
        _get({"q": question, "date_from": "yesterday"}),
        _get({"q": "x" * 30_000}),
        _get({"q": question}, key=None),
        _get({"q": question, "facets": "law,color"}),
        _get({"q": question, "facets": "law", "facet_limit": "0"}),
        _post({"text": question, "facets": ["section"]}),
        Call("GET", "/suggest?" + urlencode({"q": "   "}), None, None),
        Call("GET", "/suggest?" + urlencode([("q", "kü"), ("q", "mi")]), None, None),
        Call("GET", "/suggest?" + urlencode({"q": "kü", "k": "50"}), None, None),
        Call("GET", "/suggest?q=k%C3%BC", None, None, key=None),
        Call("GET", "/suggest", None, None),
    ]
    return fast, left


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
    """The same app with the fast path on and off, both with an API key configured."""
    fast = create_app(make_settings(demo_models_dir, api_keys=[KEY], fast_path=True))
    plain = create_app(make_settings(demo_models_dir, api_keys=[KEY], fast_path=False))
    with TestClient(fast) as f, TestClient(plain) as p:
        yield f, p


def test_fast_path_answers_what_fastapi_answers(clients: tuple[TestClient, TestClient], doc_ids: list[str]) -> None:
    fast, plain = clients
    stats: FastPathStats = fast.app.state.fast_path_stats  # type: ignore[attr-defined]
    answered_calls, left_calls = _calls(doc_ids)
    statuses = set()
    for call in answered_calls + left_calls:
        before = sum(stats.answered.values()), sum(stats.declined.values()), sum(stats.failed.values())
        got, expected = _send(fast, call), _send(plain, call)
        assert got == expected, call
        statuses.add(got[0])
        answered = sum(stats.answered.values()) - before[0]
        # left to FastAPI, or failed while computing the answer and answered with FastAPI's handlers
        other = sum(stats.declined.values()) - before[1] + sum(stats.failed.values()) - before[2]
        assert (answered, other) == ((1, 0) if call in answered_calls else (0, 1)), call
        # the fast path only ever answers successfully (FastAPI may still answer 200 to what it declined)
        assert not answered or got[0] == 200
    assert {200, 400, 401, 404, 413, 422} <= statuses
    assert stats.answered["/recommend"] == 7
    assert stats.answered["/search"] == 8
    assert stats.answered["/suggest"] == 3


def test_fast_path_off_answers_nothing(clients: tuple[TestClient, TestClient], doc_ids: list[str]) -> None:
    _, plain = clients
    assert _send(plain, _post({"positive": [doc_ids[0]]}))[0] == 200
    stats: FastPathStats = plain.app.state.fast_path_stats  # type: ignore[attr-defined]
    assert not stats.answered and not stats.declined


def test_fast_answers_are_counted_under_their_route(clients: tuple[TestClient, TestClient], doc_ids: list[str]) -> None:
    fast, _ = clients

    def served() -> float:
        text = fast.get("/metrics").text
        line = next(
            (ln for ln in text.splitlines() if ln.startswith("legalsearch_http_requests_total{")
             and 'route="/recommend"' in ln and 'status="200"' in ln),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = served()
    assert _send(fast, _post({"positive": [doc_ids[0]]}))[0] == 200
    assert served() == before + 1


def test_without_a_model_both_paths_say_so(tmp_path: Path) -> None:
    fast = create_app(make_settings(tmp_path, fast_path=True))
    plain = create_app(make_settings(tmp_path, fast_path=False))
    with TestClient(fast) as f, TestClient(plain) as p:
        for call in (_post({"positive": ["x"]}, key=None), _get({"q": "Miete"}, key=None)):
            got = _send(f, call)
            assert got == _send(p, call)
            assert got[0] == 503


def test_a_failure_after_the_work_began_is_not_repeated(clients: tuple[TestClient, TestClient], doc_ids: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that fails once its answer is computed is answered from that failure: FastAPI would do the same
    work again (a query that failed after 31 s took 62)."""
    from legalsearch.api.routes import recommend, search

    fast, plain = clients
    stats: FastPathStats = fast.app.state.fast_path_stats  # type: ignore[attr-defined]
    calls: list[str] = []
    for module, name in ((search, "search"), (recommend, "recommend")):
        original = getattr(module, name)

        def counted(*args: object, _original=original, _name=name, **kwargs: object) -> object:  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    failing = [_get({"q": "und oder der die das"}), _post({"positive": ["no such id"]}),
               _post({"text": "und oder der die das"})]
    for call in failing:
        failed = sum(stats.failed.values())
        calls.clear()
        got = _send(fast, call)
        assert len(calls) == 1, (call, calls)  # computed once, by the fast path
        assert sum(stats.failed.values()) == failed + 1
        calls.clear()
        assert got == _send(plain, call)  # and answered exactly as FastAPI answers it
        assert got[0] in (404, 422)


def test_fast_path_answers_fused_recommendations_as_fastapi(models_copy: Path) -> None:
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
