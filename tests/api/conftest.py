"""Fixtures of the API tests: apps over the demo model (read-only) or over copies of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from legalsearch.api.app import create_app
from legalsearch.config import ServiceSettings


def make_settings(models_dir: Path, **overrides: object) -> ServiceSettings:
    """Settings for a test app; watching off unless asked for, so tests decide when reloads happen."""
    values: dict[str, object] = {"models_dir": models_dir, "watch_interval_s": 0, **overrides}
    return ServiceSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(demo_models_dir: Path) -> Iterator[TestClient]:
    """A client of an app serving the demo model (no API keys)."""
    with TestClient(create_app(make_settings(demo_models_dir))) as c:
        yield c


@pytest.fixture(scope="module")
def doc_ids(demo_model) -> list[str]:  # type: ignore[no-untyped-def]
    """Every document id of the demo model, in row order."""
    return list(demo_model.index.ids)


@pytest.fixture
def models_copy(demo_models_dir: Path, tmp_path: Path) -> Path:
    """A private, modifiable copy of the demo models folder."""
    dst = tmp_path / "models"
    shutil.copytree(demo_models_dir, dst, symlinks=True)
    return dst
