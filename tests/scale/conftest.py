"""Fixtures of the scale path's tests: one loopback Ray cluster per test module (each start costs seconds).

Without Ray (the scale extra) the tests skip with the reason; with ``CI=true`` they fail instead (``.ci/run``
installs the extra)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from legalsearch.scale.cluster import INSTALL_HINT, ray_available


def require_scale_extra() -> None:
    """Skip (fail with CI=true) when ray[data,serve] is not installed."""
    if ray_available():
        return
    reason = f"ray[data,serve] is not installed: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def loopback_cluster() -> Iterator[Any]:
    """Two nodes x 1 CPU on 127.0.0.1, small object stores, this process connected; stopped after the module."""
    require_scale_extra()
    from legalsearch.scale.cluster import start_local_cluster

    local = start_local_cluster(nodes=2, cpus_per_node=1, object_store_mb=80)
    try:
        yield local
    finally:
        local.stop()
