"""Benchmarks for legalsearch: training throughput, serving latency, memory and index scale.

Run with ``python -m bench.run`` (``make bench``); results land in ``bench/results/``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence (0.0 for an empty one, so a failed repeat does not crash a report)."""
    return float(statistics.median(values)) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (other jobs share the machine; we record them, not hide them)."""
    return os.getloadavg()
