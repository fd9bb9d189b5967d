"""Property-based fuzzing of every documented operation: nothing a client sends may produce a 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import make_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from legalsearch.api.app import create_app
from legalsearch.api.state import ModelHolder

# the OpenAPI document does not depend on the model, so the schema can load at import time; the model is
# attached by the fixture below (the demo model is a session fixture)
APP = create_app(make_settings(Path("no-model-yet")))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _serve_demo_model(demo_models_dir: Path) -> Iterator[None]:
    # schemathesis calls the ASGI app without running its lifespan: load the model like the lifespan does
    holder = ModelHolder(demo_models_dir)
    holder.refresh(force=True)
    assert holder.model is not None
    previous = APP.state.holder
    APP.state.holder = holder
    yield
    APP.state.holder = previous


@schema.parametrize()
# examples per operation: LEGALSEARCH_FUZZ_EXAMPLES (CI's default keeps the whole run to about a minute)
@settings(max_examples=int(os.environ.get("LEGALSEARCH_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
