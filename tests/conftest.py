"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only shared folder (``LEGALSEARCH_SHARED``, else ``../shared`` from the repo root).

    Skips the test when it is absent; fails instead when ``CI=true``, so that CI never passes by skipping.
    """
    path = Path(os.environ.get("LEGALSEARCH_SHARED") or REPO_ROOT.parent / "shared")
    if not path.is_dir():
        reason = f"shared data folder {path} not found (set LEGALSEARCH_SHARED to the folder with corpora/)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    return path
