"""The byte budget of the preprocessors' word memos (one per process) and the estimates charged against it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from legalsearch.errors import ConfigError

#: estimated bytes one memo entry costs beyond its strings (dict slot, key and tuple objects)
ENTRY_BYTES: Final = 120
#: estimated bytes of one token string beyond its characters
STR_BYTES: Final = 56
#: bytes the memos of a Preprocessor may hold (estimated) before they are emptied; ``set_memo_budget`` changes it
_memo_budget = [512 * 2**20]


def set_memo_budget(nbytes: int) -> None:
    """Bytes the word memos of every Preprocessor of this process may hold before they are emptied and refilled
    (tokens never change with it; a small budget only costs some repeated work). The server lowers it
    (``memo_mb``): a flood of new words in queries would otherwise grow each worker by their memo entries."""
    if nbytes < 1:
        raise ConfigError(f"memo budget {nbytes}: must be at least 1 byte")
    _memo_budget[0] = nbytes


def memo_budget() -> int:
    """The bytes ``set_memo_budget`` allows."""
    return _memo_budget[0]


def token_bytes(tokens: Iterable[str]) -> int:
    """Estimated bytes of the token strings."""
    return sum(STR_BYTES + len(t) for t in tokens)
