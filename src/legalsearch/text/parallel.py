"""Preprocessing in worker processes: the pool's worker functions and the wire format of their answers."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

from legalsearch.config import PreprocessConfig
from legalsearch.parallel import ordered_map

if TYPE_CHECKING:
    from legalsearch.text.preprocessor import Preprocessor

_worker: Preprocessor | None = None

#: a batch's tokens as they travel back from a worker: one string (see ``ship``) or, failing that, the lists
Shipped = str | list[list[str]]


def pipe_parallel(pre: Preprocessor, texts: Iterable[str], grouped: bool = False) -> Iterator[list[str]]:
    """Tokens of each text from ``n_process - 1`` worker processes plus this one; batches come back in input
    order."""
    config = pre.config
    it = iter(texts)
    batches = iter(lambda: list(islice(it, config.batch_size)), [])
    for tokens in ordered_map(
        batches,
        functools.partial(pre.batch, grouped=grouped),
        functools.partial(_work, grouped=grouped),
        unship,
        config.n_process,
        _init_worker,
        (config,),
    ):
        yield from tokens


def _init_worker(config: PreprocessConfig) -> None:
    from legalsearch.text.preprocessor import Preprocessor

    global _worker
    _worker = Preprocessor(dataclasses.replace(config, n_process=1))


def _work(batch: list[str], grouped: bool = False) -> Shipped:
    assert _worker is not None  # set by the pool initializer
    return ship(_worker.batch(batch, grouped))


def ship(results: list[list[str]]) -> Shipped:
    """Tokens joined by " ", texts by newlines: one string pickles and unpickles far faster than the lists.

    Tokens never hold whitespace and are never empty (``min_token_chars`` >= 1); the separator count checks it,
    and a batch that breaks the rule travels as lists, so the round trip is exact either way.
    """
    joined = "\n".join(map(" ".join, results))
    tokens = sum(map(len, results))
    nonempty = len(results) - results.count([])
    if joined.count(" ") != tokens - nonempty or joined.count("\n") != len(results) - 1:
        return results
    return joined


def unship(shipped: Shipped) -> list[list[str]]:
    """The token lists ``ship`` sent."""
    if isinstance(shipped, list):
        return shipped
    return [line.split(" ") if line else [] for line in shipped.split("\n")]
