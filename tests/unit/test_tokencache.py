"""The token cache's readers: the fast field splitting gives what ``split_groups`` gives, edge cases included."""

from __future__ import annotations

import pytest

from legalsearch.text import split_groups
from legalsearch.tokencache import every_token_of, words_of


@pytest.mark.parametrize("field", [
    "", "a", "miete kündigung", "mietvertrag|miete|vertrag frist", "§573|§573@bgb x", "a|b|c d|e",
    "|a b", "a |b", "a|| b", "a|", "a| b", "||", "x |", "a||b|c",
])
def test_fast_field_splitting_matches_split_groups(field: str) -> None:
    words, every = split_groups(field.split())
    assert words_of(field) == words
    assert every_token_of(field) == every
