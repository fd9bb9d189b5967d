"""Property-based probes of the request limits: nested JSON of any shape and long, odd tokens never give a 5xx,
never recurse, and stay cheap. ``LEGALSEARCH_FUZZ_EXAMPLES`` sets how many examples each property gets."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legalsearch.api.app import create_app
from legalsearch.api.limits import json_depth

EXAMPLES = int(os.environ.get("LEGALSEARCH_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=30))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8),
                                                                                             inner, max_size=3),
                     max_leaves=40)


def _deep(depth: int, kind: str) -> str:
    return ("[" * depth + "1" + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@pytest.fixture(scope="module")
def client(demo_models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(demo_models_dir))) as c:
        yield c


def _depth_of(value: object) -> int:
    """The reference: nesting depth by walking the parsed value (fine for the small values generated here)."""
    if isinstance(value, list):
        return 1 + max((_depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth_of(v) for v in value.values()), default=0)
    return 0


@FUZZ
@given(_json)
def test_json_depth_agrees_with_the_parsed_value(value: object) -> None:
    text = json.dumps(value)
    depth = _depth_of(value)
    found = json_depth(text, 0)
    assert found == depth or (found == 0 and depth == 0)
    assert json_depth(text, depth) == 0  # never reported when within the limit


@FUZZ
@given(filters=_json, depth=st.integers(0, 3000), kind=st.sampled_from(["list", "object"]))
def test_nested_filters_never_give_a_server_error(client: TestClient, filters: object, depth: int,
                                                  kind: str) -> None:
    body = '{"text": "Kündigung des Mietvertrags", "filters": {"type": ' + _deep(depth, kind) + "}}"
    resp = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == (422 if depth + 3 > 8 else resp.status_code) and resp.status_code < 500, resp.text
    resp = client.post("/recommend", json={"text": "Kündigung", "filters": filters})
    assert resp.status_code < 500, resp.text
    resp = client.get("/search", params={"q": "Miete", "filters": json.dumps(filters)})
    assert resp.status_code < 500, resp.text


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40), st.integers(1, 2000))
def test_long_and_repeated_tokens_stay_cheap(client: TestClient, piece: str, repeat: int) -> None:
    q = (piece * repeat)[:6000]  # kept under the URL limit once percent-encoded
    started = time.process_time()
    resp = client.get("/search", params={"q": q, "k": 3})
    assert resp.status_code < 500, resp.text[:300]
    assert time.process_time() - started < 2.0
    started = time.process_time()
    resp = client.post("/recommend", json={"text": (piece * repeat)[:19_999], "k": 3})
    assert resp.status_code < 500, resp.text[:300]
    assert time.process_time() - started < 2.0
