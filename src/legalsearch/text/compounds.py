"""German compounds split against the lemma table: "mietvertragskündigung" -> "mietvertrag", "kündigung"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from legalsearch.text.memo import ENTRY_BYTES, STR_BYTES, token_bytes
from legalsearch.text.tokenizer import Lexicon

#: shortest compound part (modifier or head)
MIN_COMPOUND_PART: Final = 4
#: longer words are never split: the longest official German compound has 63 letters, the longest one split in
#: the court sentences and the laws 47; this and the scan below bound a word's splitting whatever the input
MAX_COMPOUND_CHARS: Final = 64
#: a split giving more parts is refused (the most seen in real text: 12)
MAX_COMPOUND_PARTS: Final = 16
_LINKING_ELEMENTS: Final = ("es", "s", "en", "n")

#: a compound's split: (compound lemma, head lemma, parts)
Split = tuple[str, str, tuple[str, ...]]


class CompoundSplitter:
    """Splits unknown lowercase words into a modifier and the longest known noun head, memoised per word.

    ``charge(nbytes)`` is called before each memo entry is added (the owner's memo budget; it may empty
    ``memo`` in place)."""

    def __init__(self, lexicon: Lexicon, stopwords: frozenset[str], blocked_heads: frozenset[str],
                 charge: Callable[[int], None]) -> None:
        self._lex = lexicon
        self._stopwords = stopwords
        self._blocked_heads = blocked_heads
        self._charge = charge
        self.memo: dict[str, Split | None] = {}

    def decompose(self, low: str) -> Split | None:
        """Split an unknown lowercase compound: (compound lemma, head lemma, parts) or None.

        Bounded by design: words longer than ``MAX_COMPOUND_CHARS`` are not split, and the splitting of a word
        that is not memoised yet runs on an explicit stack of its prefixes, never by recursion over the input.
        """
        memo = self.memo
        if low in memo:
            return memo[low]
        if not self._splittable(low):
            return self._remember(low, None)
        # every sub-split a compound asks for is of one of its own prefixes (its modifier, minus a linking
        # element); each prefix is split once, so the work is at most a few scans per prefix
        stack = [len(low)]
        while stack:
            prefix = low[: stack[-1]]
            outcome = self._split(prefix)
            if isinstance(outcome, int):
                stack.append(outcome)
                continue
            self._remember(prefix, outcome)
            stack.pop()
        return memo[low]

    def _splittable(self, low: str) -> bool:
        return 2 * MIN_COMPOUND_PART <= len(low) <= MAX_COMPOUND_CHARS and low not in self._lex.known_lemmas

    def _remember(self, low: str, result: Split | None) -> Split | None:
        self._charge(ENTRY_BYTES + STR_BYTES + len(low) + (token_bytes(result[2]) + 2 * STR_BYTES if result else 0))
        self.memo[low] = result
        return result

    def _split(self, low: str) -> Split | int | None:
        """One scan for ``low``'s split: the split, None, or the length of a prefix whose split it needs first."""
        nouns = self._lex.nouns
        # heads longer than the longest noun cannot be nouns; the scan is at most that long whatever the input
        first = max(MIN_COMPOUND_PART, len(low) - self._lex.max_noun_chars)
        # the longest known noun head wins: it carries the meaning (Miet|vertrags|kündigung -> kündigung)
        for cut in range(first, len(low) - MIN_COMPOUND_PART + 1):
            head = low[cut:]
            head_lemma = nouns.get(head)
            if head_lemma is None or head_lemma in self._blocked_heads or head in self._blocked_heads:
                continue
            modifier = self._modifier(low[:cut])
            if modifier is None:
                continue
            if isinstance(modifier, int):
                return modifier
            mod_lemma, mod_parts = modifier
            # a head is a noun lemma and every lemma is a known word, so heads are never split further
            compound = low[:cut] + head_lemma
            parts = tuple(p for p in dict.fromkeys((mod_lemma, *mod_parts, head_lemma)) if p != compound)
            if len(parts) > MAX_COMPOUND_PARTS:
                continue
            return compound, head_lemma, parts
        return None

    def _modifier(self, mod: str) -> tuple[str, tuple[str, ...]] | int | None:
        """The lemma of a compound's first part, allowing linking elements and a dropped final -e; or the length
        of the prefix whose split is needed to know it."""
        words, nouns, stop = self._lex.words, self._lex.nouns, self._stopwords
        candidates = [mod]
        candidates += [mod[: -len(le)] for le in _LINKING_ELEMENTS if mod.endswith(le)]
        for cand in candidates:
            if len(cand) < MIN_COMPOUND_PART:
                continue
            lemma = words.get(cand)
            if lemma is not None and lemma not in stop and cand not in stop:
                return lemma, ()
        for cand in candidates:
            if len(cand) >= MIN_COMPOUND_PART - 1 and cand + "e" in nouns:  # Miet|vertrag -> Miete
                return nouns[cand + "e"], ()
        memo = self.memo
        for cand in candidates:
            # three-part compounds whose first part is itself an unknown compound
            if len(cand) >= 2 * MIN_COMPOUND_PART:
                if cand not in memo:
                    if self._splittable(cand):
                        return len(cand)
                    continue
                sub = memo[cand]
                if sub is not None:
                    return sub[0], sub[2]
        return None
