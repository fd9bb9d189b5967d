"""Bookkeeping of a training run's stages: each stage's time, throughput and peak memory, and one-line I/O errors.

``pipeline.train`` runs its stages through a ``StageTimer``; the figures go to the manifest (``timings``), the CLI's
summary table and the benchmarks.
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from legalsearch.errors import StorageError
from legalsearch.locks import describe_os_error

log = logging.getLogger("legalsearch.pipeline")


@dataclass(frozen=True)
class StageStats:
    """Time, throughput and peak memory of one stage."""

    name: str
    seconds: float
    items: int
    unit: str
    peak_rss_mb: float
    #: CPU seconds of this process (all its threads) during the stage; 0 where unknown
    cpu_seconds: float = 0.0

    @property
    def per_second(self) -> float:
        """Items per second."""
        return self.items / self.seconds if self.seconds > 0 else 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and finished children) so far, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def io_failure(exc: OSError, doing: str, folders: Sequence[Path]) -> StorageError:
    """A one-line StorageError for an I/O failure; says so when a folder the run writes to has no space left
    (numpy and faiss report a short write without the system's reason)."""
    message = describe_os_error(exc, doing)
    for folder in folders:
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        if free < 1 << 20:
            message += f" ({free:,} bytes free in {folder}: the disk is full)"
            break
    return StorageError(message)


@dataclass
class StageTimer:
    """Times the stages of one run, in the order they end."""

    stages: list[StageStats] = field(default_factory=list)
    #: folders the run writes to, named in the error when one of them is full
    folders: tuple[Path, ...] = ()

    @contextmanager
    def stage(self, name: str, unit: str) -> Iterator[list[int]]:
        """Time the block as stage ``name``; the block puts its item count (in ``unit``) into the yielded list."""
        counter = [0]
        start, cpu = time.perf_counter(), cpu_seconds()
        log.info("stage %s: started", name)
        try:
            yield counter
        except OSError as exc:
            raise io_failure(exc, f"training stopped in stage {name} by an I/O error on", self.folders) from exc
        self.record(StageStats(name, time.perf_counter() - start, counter[0], unit, peak_rss_mb(),
                               cpu_seconds() - cpu))

    def record(self, stats: StageStats) -> None:
        """Add the figures of a stage (timed here or in a helper process)."""
        self.stages.append(stats)
        log.info("stage %s: %.1f s (%.1f s CPU), %d %s (%.0f/s), peak %.0f MB", stats.name, stats.seconds,
                 stats.cpu_seconds, stats.items, stats.unit, stats.per_second, stats.peak_rss_mb)


def iter_stage_rows(stages: Iterable[StageStats]) -> Iterator[tuple[str, str, str, str]]:
    """Rows for a summary table: stage, seconds, throughput, peak memory."""
    for s in stages:
        yield s.name, f"{s.seconds:.1f}", f"{s.per_second:,.0f} {s.unit}/s", f"{s.peak_rss_mb:,.0f} MB"
