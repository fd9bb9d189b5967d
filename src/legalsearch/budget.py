"""A per-request time budget: a deadline the serving code sets and the ranking code checks between its steps.

Threads cannot be stopped from outside, and a worker answers one request at a time, so a request that runs long
holds every other request of its worker. What can be bounded by design is (preprocessing is linear and capped,
JSON depth and text length are limited at the door); the budget bounds the rest cooperatively: ``check`` raises
``BudgetExceededError`` once the deadline of the current request (a context variable, so concurrent requests of
an event loop each see their own) has passed. Without a deadline (training, the CLI) ``check`` does nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

from legalsearch.errors import BudgetExceededError

#: (deadline on the monotonic clock, the budget in seconds) of the request being served, or None
_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("legalsearch_deadline", default=None)


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Give the code run inside ``seconds`` of time (0 or less: no budget)."""
    if seconds <= 0:
        yield
        return
    token = _DEADLINE.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check(step: str) -> None:
    """Raise ``BudgetExceededError`` if the current request's budget is spent (``step``: what was done)."""
    current = _DEADLINE.get()
    if current is not None and time.monotonic() > current[0]:
        raise BudgetExceededError(f"the request took longer than its {current[1]:g} s budget ({step})")
