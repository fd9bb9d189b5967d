"""Citations in running text: "§ 573 Abs. 2 BGB", "§§ 573, 574 BGB", "Art. 1 GG" become tokens ("§573",
"§573@bgb"); citation markers with their numbers ("Abs. 2") are dropped."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

_SECTION_NUMBER = re.compile(r"\d+[a-z]?")
_ROMAN = re.compile(r"(?:X{0,2})(?:IX|IV|V?I{0,3})")
# a law abbreviation: letters only, at least two capitals ("BGB", "ArbGG", "DMietG", "AO")
_LAW = re.compile(r"[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]{0,14}")

#: words that start a citation
ARTICLE_WORDS: Final = frozenset({"Art", "Art.", "Artikel", "art.", "Art.-"})
#: citation markers: followed by a number they are part of a citation and dropped with their number
MARKERS: Final = frozenset(
    {
        "Abs.", "Abs", "Absatz", "Absatzes", "Absätze", "Absätzen", "Satz", "Satzes", "Sätze", "Sätzen", "S.",
        "Nr.", "Nr", "Nrn.", "Nummer", "Nummern", "Halbsatz", "Halbs.", "Hs.", "Buchst.", "Buchstabe", "lit.",
        "Alt.", "Alternative", "Var.", "Variante", "UAbs.", "Unterabs.", "Unterabsatz", "Rn.", "Rn", "Rdnr.",
        "Rz.", "Tz.",
    }
)
# continue a list inside a citation: "§§ 573, 574 BGB", "Abs. 1 und 2"
_LIST_WORDS: Final = frozenset({",", "und", "oder", "bis", "sowie", "u."})
_FOLLOWING: Final = frozenset({"f.", "ff.", "f", "ff"})


def is_part_number(word: str) -> bool:
    """A citation part's number: "2", "2a", a letter ("lit. f", "Buchst. a") or a roman numeral ("Alt. II")."""
    return bool(_SECTION_NUMBER.fullmatch(word) or (len(word) == 1 and word.isalpha())
                or (word.isupper() and _ROMAN.fullmatch(word)))


def skip_part_list(words: Sequence[str], j: int) -> int:
    """Skip "und 2", ", 3" continuations after a marker's number."""
    n = len(words)
    while j + 1 < n and words[j] in _LIST_WORDS and is_part_number(words[j + 1]) \
            and not _LAW.fullmatch(words[j + 1]):
        j += 2
    return j


class CitationParser:
    """Reads the citation that starts at a word; law abbreviations are told from the legal abbreviations."""

    def __init__(self, abbreviations: frozenset[str]) -> None:
        self._abbreviations = abbreviations

    def parse(self, words: Sequence[str], i: int) -> tuple[int, tuple[str, ...]] | None:
        """Parse "§ 573 Abs. 2 BGB", "§§ 573, 574 BGB", "§573b", "Art. 1 GG": the index after the citation and
        its tokens; None if it is no citation."""
        start = _start(words, i)
        if start is None:
            return None
        j, prefix, numbers = start
        if not numbers:
            return j, ()
        n = len(words)
        law = ""
        while j < n:
            w = words[j]
            if w in MARKERS and j + 1 < n and is_part_number(words[j + 1]):
                j = skip_part_list(words, j + 2)
            elif w in _FOLLOWING:
                j += 1
            elif w in _LIST_WORDS and j + 1 < n and _SECTION_NUMBER.fullmatch(words[j + 1]):
                numbers.append(words[j + 1])
                j += 2
            elif w in _LIST_WORDS and j + 2 < n and words[j + 1][:1] == "§" \
                    and _SECTION_NUMBER.fullmatch(words[j + 2]) and prefix == "§":
                # "§ 573 und § 574 BGB": one law for both
                numbers.append(words[j + 2])
                j += 3
            else:
                if self._is_law(w):
                    law = w.lower()
                    j += 1
                    if law == "sgb" and j < n and words[j].isupper() and _ROMAN.fullmatch(words[j]):
                        law += words[j].lower()  # "SGB V" -> "sgbv"
                        j += 1
                break
        toks: list[str] = []
        for num in numbers:
            tok = f"{prefix}{num}"
            toks.append(tok)
            if law:
                toks.append(f"{tok}@{law}")
        return j, tuple(dict.fromkeys(toks))

    def _is_law(self, word: str) -> bool:
        if word in self._abbreviations or not _LAW.fullmatch(word):
            return False
        return sum(c.isupper() for c in word) >= 2


def _start(words: Sequence[str], i: int) -> tuple[int, str, list[str]] | None:
    """The sign or article word and first number of a citation: (next index, prefix, numbers); a run of bare
    signs without a number gives (its end, "§", []), anything else that is no citation None."""
    n = len(words)
    first = words[i]
    numbers: list[str] = []
    if first[0] == "§":
        prefix = "§"
        rest = first.lstrip("§")
        j = i + 1
        while rest == "" and j < n and words[j] == "§":  # "§ §" from text that spaced the double sign
            j += 1
        if rest:
            if not _SECTION_NUMBER.fullmatch(rest):
                return None
            numbers.append(rest)
    else:
        prefix = "art"
        j = i + 1
        if first in ("Art", "art.") and j < n and words[j] == ".":
            j += 1
    if not numbers:
        if j < n and _SECTION_NUMBER.fullmatch(words[j]):
            numbers.append(words[j])
            j += 1
        elif prefix == "§":
            # a run of bare signs without a number: each sign of it would fail here the same way and give no
            # tokens, so the run is skipped at once (stepping sign by sign rescanned the run: quadratic)
            return j, prefix, numbers
        else:
            return None
    return j, prefix, numbers
