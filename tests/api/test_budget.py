"""The per-request time budget: a request past it gets 503 and frees its worker; without one nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from legalsearch import budget
from legalsearch.api.app import create_app
from legalsearch.errors import BudgetExceededError


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_request_past_its_budget_gets_503(demo_models_dir: Path, doc_ids: list[str], fast_path: bool) -> None:
    settings = make_settings(demo_models_dir, request_budget_s=1e-6, fast_path=fast_path)
    with TestClient(create_app(settings)) as client:
        for resp in (client.get("/search", params={"q": "Kündigung wegen Eigenbedarf"}),
                     client.post("/recommend", json={"text": "Kündigung wegen Eigenbedarf"}),
                     client.post("/recommend", json={"positive": [doc_ids[0]]})):
            assert resp.status_code == 503, resp.text
            assert "budget" in resp.json()["detail"]
        assert client.get("/livez").status_code == 200  # routes without ranking work need no budget check


def test_the_default_budget_leaves_normal_requests_alone(client: TestClient, doc_ids: list[str]) -> None:
    assert client.get("/search", params={"q": "Kündigung wegen Eigenbedarf"}).status_code == 200
    assert client.post("/recommend", json={"positive": [doc_ids[0]]}).status_code == 200


def test_check_without_a_budget_does_nothing() -> None:
    budget.check("anything")
    with budget.time_budget(0):
        budget.check("no budget")
    with budget.time_budget(-1), budget.time_budget(1e-9), pytest.raises(BudgetExceededError, match="budget"):
        budget.check("a step")
    budget.check("outside again")
