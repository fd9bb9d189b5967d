"""The side lane collects finished side stages in order and ends its helper process once none is left."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from legalsearch.sidelane import SideLane, _Done
from legalsearch.stages import StageStats, StageTimer


class _Pool:
    def __init__(self) -> None:
        self.shut = False

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        self.shut = True


def _future(name: str | None) -> Future[_Done]:
    future: Future[_Done] = Future()
    if name is not None:
        future.set_result(_Done(StageStats(name, 1.0, 3, "documents", 10.0), {"edges": 1}))
    return future


def _lane(*names: str | None) -> tuple[SideLane, _Pool, Any]:
    lane = SideLane(StageTimer())
    pool = _Pool()
    lane._pool = pool  # type: ignore[assignment]
    lane._pid = _future(None)  # type: ignore[assignment]
    lane.pending = {f"s{i}": _future(n) for i, n in enumerate(names)}
    return lane, pool, SimpleNamespace(citation_stats={})


def test_reap_collects_the_finished_stages_in_order_and_keeps_the_process_while_one_runs() -> None:
    lane, pool, run = _lane("lexical", None, "snippets")
    lane.reap(run)
    assert [s.name for s in lane.timer.stages] == ["lexical"]
    assert list(lane.pending) == ["s1", "s2"]
    assert not pool.shut


def test_reap_ends_the_helper_process_once_every_side_stage_is_collected() -> None:
    lane, pool, run = _lane("lexical", "citations")
    lane.reap(run)
    assert [s.name for s in lane.timer.stages] == ["lexical", "citations"]
    assert run.citation_stats == {"edges": 1}
    assert pool.shut and lane._pool is None and lane._pid is None
    with lane.paused():  # nothing left to pause
        pass


def test_reap_with_nothing_finished_changes_nothing() -> None:
    lane, pool, run = _lane(None)
    lane.reap(run)
    assert lane.timer.stages == [] and list(lane.pending) == ["s0"] and not pool.shut
