"""The side lane of a training run: the stages marked ``side`` in ``pipeline.STAGES`` run, in table order, in one
helper process while the main process goes on with the others.

On two cores this pairs one-core Python stages (the BM25 index, the document store, the citation graph, the
snippet index: they need only the documents and the token cache) with the main lane's phrases, keywords and
vector stages; each side stage's timing is measured in the helper process and recorded when the main lane
collects it. Nothing is shared but files in the model folder and the stages' small results (citation statistics).

Stages that keep both cores busy themselves (word2vec's two worker threads) run with the helper process paused
(``SideLane.paused``: SIGSTOP, then SIGCONT): beside a side stage word2vec trained at half its words per second,
and the side stage gained no more than that.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from legalsearch.config import TrainConfig
from legalsearch.errors import LegalSearchError
from legalsearch.stages import StageStats, StageTimer
from legalsearch.types import Document

if TYPE_CHECKING:
    from legalsearch.pipeline import Run

log = logging.getLogger("legalsearch.pipeline")


@dataclass(frozen=True)
class _Snapshot:
    """What the side stages read of the run, sent to the helper process once."""

    config: TrainConfig
    corpus: tuple[Path, ...]
    extra_paths: tuple[Path, ...]
    out: Path
    cache_dir: Path
    token_dir: Path
    documents: list[Document]
    withheld: list[tuple[str, str, str, str]]


@dataclass(frozen=True)
class _Done:
    stats: StageStats
    citation_stats: dict[str, Any]


class SideLane:
    """Side stages in one helper process, their results collected in the order they were submitted (a run
    without worker processes runs them in the main process where the table puts them)."""

    def __init__(self, timer: StageTimer) -> None:
        self.timer = timer
        self._pool: ProcessPoolExecutor | None = None
        #: submitted, not yet collected, in submission order
        self.pending: dict[str, Future[_Done]] = {}
        #: the helper process's id, answered by its first task
        self._pid: Future[int] | None = None

    def __enter__(self) -> SideLane:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # after a failure elsewhere the running side stage still ends before the model folder is removed
        self._close()

    def _close(self) -> None:
        """End the helper process; a later ``submit`` starts another."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        self._pid = None

    def reap(self, run: Run) -> None:
        """Collect the side stages that are done, in submission order; when none is left, end the helper process,
        so that its memory (a copy of the documents and its stages' arrays, ~1 GB on the full corpus) is not
        held beside the main lane's later, larger stages."""
        done = 0
        for future in self.pending.values():
            if not future.done():
                break
            done += 1
        if done:
            self.wait_for(list(self.pending)[done - 1 : done], run)

    def submit(self, run: Run, name: str) -> None:
        """Queue stage ``name`` in the helper process (started, with a snapshot of the run, on first use)."""
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            # forkserver, not fork: see parallel.ordered_map
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            snapshot = _Snapshot(run.config, run.corpus, run.extra_paths, run.out, run.cache_dir, run.token_dir,
                                 run.documents, list(run.report.withheld))
            self._pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_side, initargs=(snapshot,))
            self._pid = self._pool.submit(os.getpid)
        log.info("stage %s: queued in the side process", name)
        self.pending[name] = self._pool.submit(_run_side_stage, name)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """A block during which the helper process is stopped (and its running stage with it), continued at the
        block's end whatever happens; nothing to do without a helper process or without job-control signals."""
        stop, cont = getattr(signal, "SIGSTOP", None), getattr(signal, "SIGCONT", None)
        if self._pid is None or stop is None or cont is None or not self.pending:
            yield
            return
        pid = self._pid.result()
        try:
            os.kill(pid, stop)
        except ProcessLookupError:  # the helper died: wait_for reports it
            yield
            return
        log.info("side process paused")
        try:
            yield
        finally:
            with suppress(ProcessLookupError):
                os.kill(pid, cont)
            log.info("side process continued")

    def wait_for(self, names: Sequence[str], run: Run) -> None:
        """Wait until the named side stages (and those submitted before them) are done; record their figures."""
        wanted = [n for n in names if n in self.pending]
        if not wanted:
            return
        order = list(self.pending)
        last = max(order.index(n) for n in wanted)
        for name in order[: last + 1]:
            future = self.pending.pop(name)
            try:
                done = future.result()
            except BrokenProcessPool as exc:
                raise LegalSearchError(f"the side process of the training run died in stage {name}: {exc}") from exc
            self.timer.record(done.stats)
            run.citation_stats.update(done.citation_stats)
        if not self.pending:
            self._close()


_side: Run | None = None


def _init_side(snapshot: _Snapshot) -> None:
    from legalsearch.pipeline import Run
    from legalsearch.text import Preprocessor

    global _side
    config = snapshot.config
    run = Run(config, snapshot.corpus, snapshot.extra_paths, snapshot.out, snapshot.cache_dir, False, _no_lock)
    run.documents = snapshot.documents
    run.report.withheld.extend(snapshot.withheld)
    run.token_dir = snapshot.token_dir
    # the side lane is the second process already: its snippet stage runs no pool of its own
    run.preprocessor = Preprocessor(replace(config.preprocess, n_process=1))
    _side = run


def _no_lock(_key: str) -> None:
    """The main process holds the token-cache entry's lock for the whole run."""


def _run_side_stage(name: str) -> _Done:
    from legalsearch.pipeline import STAGE_NAMES

    assert _side is not None  # set by the pool initializer
    stage = STAGE_NAMES[name]
    timer = StageTimer(folders=(_side.out, _side.cache_dir))
    with timer.stage(name, stage.unit) as count:
        count[0] = stage.run(_side)
    return _Done(timer.stages[0], dict(_side.citation_stats))
