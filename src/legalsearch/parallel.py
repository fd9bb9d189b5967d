"""Batches over worker processes plus this one, results in input order: preprocessing and the snippet index."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from typing import Any, Final, Generic, TypeVar

B = TypeVar("B")
R = TypeVar("R")
S = TypeVar("S")

#: batches held per process at most (memory stays flat)
PENDING_PER_PROCESS: Final = 8


@dataclass(frozen=True)
class _Done(Generic[R]):
    value: R


def ordered_map(
    batches: Iterable[B],
    local: Callable[[B], R],
    remote: Callable[[B], S],
    unship: Callable[[S], R],
    n_process: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
) -> Iterator[R]:
    """``local(batch)`` for every batch, in order, with ``n_process - 1`` workers computing ``unship(remote(b))``.

    This process works on a batch itself whenever the workers already hold two batches each, so it works while
    they start (importing spaCy and loading the lemma table takes them ~2.5 s) instead of waiting, and
    n_process = 2 on 2 cores is one worker next to this process rather than two workers beside an idle one.
    ``remote`` must be a module-level function (it is pickled) that answers what ``local`` would.
    """
    n_workers = n_process - 1
    max_pending = PENDING_PER_PROCESS * n_process
    methods = multiprocessing.get_all_start_methods()
    # not fork: forking a process that already runs threads (BLAS, FAISS, a web server, a test runner) can
    # leave a child holding a lock no thread will release, and the pool then hangs on exit. forkserver forks
    # from a clean single-threaded server.
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    it = iter(batches)
    with ctx.Pool(n_workers, initializer=initializer, initargs=initargs) as pool:
        pending: deque[_Done[R] | AsyncResult[S]] = deque()
        remote_held = 0
        while True:
            while pending and (len(pending) >= max_pending or _is_ready(pending[0])):
                head = pending.popleft()
                if isinstance(head, _Done):
                    yield head.value
                else:
                    remote_held -= 1
                    yield unship(head.get())
            batch = next(it, None)
            if batch is None:
                break
            if remote_held < 2 * n_workers:
                pending.append(pool.apply_async(remote, (batch,)))
                remote_held += 1
            else:
                pending.append(_Done(local(batch)))
        for head in pending:
            yield head.value if isinstance(head, _Done) else unship(head.get())


def _is_ready(item: _Done[Any] | AsyncResult[Any]) -> bool:
    return isinstance(item, _Done) or item.ready()
