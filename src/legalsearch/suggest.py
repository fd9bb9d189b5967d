"""Completions as a user types: keywords, phrases, law titles and section ids, with typo tolerance.

Everything a suggestion is looked up in is built once per model (``build_suggestions``, at load): the folded
keys of every entry in one sorted list (a prefix is a contiguous range, found by bisection), each key's document
frequency, the best entries of every large range, and deletion indexes over the keys' first characters for
typos (SymSpell's idea: two strings within d edits share a string made by deleting at most d characters from
each). Folding lowercases and spells umlauts out (ä -> ae, ß -> ss), so "Kündi" and "kuendi" are one prefix.

Ranking: entries whose key starts with the query come first, by document frequency (ties by key); then,
when the query has at least 5 characters (1 edit) or 9 (2 edits), entries whose key begins with a string
within that many edits of the query (Levenshtein, rapidfuzz), fewer edits first, then by document frequency.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from legalsearch.docstore import DocumentStore
from legalsearch.errors import ArtifactError, EmptyQueryError
from legalsearch.keywords import PHRASE_JOINER, KeywordModel
from legalsearch.model import load_array

#: the artifact's folder inside a model folder, and its file of strings
SUGGEST_DIR = "suggest"
_STRINGS_FILE = "strings.json"
#: the most suggestions one request may ask for
MAX_SUGGESTIONS = 20
#: (edits allowed, shortest query, in characters as typed, that gets them)
TYPO_STEPS = ((2, 9), (1, 5))
#: a key range longer than this has its best entries ranked at build time, not per request
_BIG_RANGE = 512
#: best entries kept per large range: two keys per law may both fall into one range
_TOP = 2 * MAX_SUGGESTIONS
#: how many characters of a key its deletion index reads, per number of edits
_HEAD = {1: 5, 2: 7}
#: query characters beyond the head that the typo search's first refinement level checks, and that each further
#: level adds (each level drops the key ranges that went too far). A level costs ~15 numpy and rapidfuzz calls
#: whatever its size: on the full corpus's benchmark mix checking the heads themselves first (0) cost a third more
#: CPU than 10, and 10 no more than checking the whole query at once; the levels bound the work on long queries
_FIRST = 10
_STEP = 5
#: up to this many texts are compared with the query one by one: batches cost more to set up than they save
_FEW_TEXTS = 12
#: characters of each key in the array the heads' ranges are searched in (a head is at most 7 long, its end 8)
_HEAD_ARRAY = max(_HEAD.values()) + 1
#: characters compared at once when the common prefixes of neighbouring keys are measured
_LCP_CHARS = 32
#: sorts after every character a key can hold
_END = "\U0010ffff"
_UMLAUT_SPELLING = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"))
_SPACES = re.compile(r"\s+")
#: the combining marks NFKD splits accented letters into (é -> e + U+0301)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_SECTION_SIGN = re.compile(r"§\s*")


def fold(text: str) -> str:
    """The form keys and queries are compared in: lowercase, umlauts spelled out, accents and repeated spaces
    dropped, "§573" spaced as "§ 573". Leading spaces go; a trailing one stays (the user started a new word)."""
    t = text.lower().replace(PHRASE_JOINER, " ")
    if not t.isascii():  # decomposed umlauts first composed (NFC), then accents dropped; most keys skip this
        t = unicodedata.normalize("NFC", t)
        # str.replace per umlaut: several times faster than str.translate over a whole key
        for umlaut, spelled in _UMLAUT_SPELLING:
            if umlaut in t:
                t = t.replace(umlaut, spelled)
        t = _COMBINING.sub("", unicodedata.normalize("NFKD", t))
        if "§" in t:
            t = _SECTION_SIGN.sub("§ ", t)
    if "  " in t or not t.isprintable():
        t = _SPACES.sub(" ", t)
    return t.lstrip()


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One completion: its text, what it is, the document it names (sections) and its document frequency."""

    text: str
    kind: str
    doc_id: str | None
    df: int
    #: the law abbreviation of a law or section suggestion
    law: str | None
    #: edits between the query and the start of the key (0: the key starts with the query)
    edits: int


@dataclass(frozen=True)
class _Entries:
    text: list[str]
    kind: list[str]
    doc_id: list[str | None]
    law: list[str | None]
    df: list[int]
    #: every key of an entry (a law has two: its title and its abbreviation)
    keys: list[list[str]]


@dataclass(frozen=True)
class _DeletionIndex:
    """Heads (a key's first ``_HEAD[d]`` characters) by the strings d deletions make of them."""

    edits: int
    width: int
    #: sorted deletion strings, and the head each belongs to
    strings: np.ndarray
    head_of: np.ndarray
    heads: list[str]
    #: per head, the range of the keys that start with it (found at build and at load, not saved)
    head_lo: np.ndarray
    head_hi: np.ndarray


class SuggestionIndex:
    """Prefix and typo-tolerant lookups over one model's suggestion entries."""

    def __init__(self, entries: _Entries) -> None:
        pairs = sorted((key, e) for e, keys in enumerate(entries.keys) for key in keys if key)
        # the keys live on in sorted order below; a list per entry would cost ~20 MB on the full corpus
        entries.keys.clear()
        self._entries = entries
        self.keys: list[str] = [k for k, _ in pairs]
        self._entry_of = np.asarray([e for _, e in pairs], dtype=np.int64)
        self._df = np.asarray(entries.df, dtype=np.int64)[self._entry_of] if pairs else np.zeros(0, np.int64)
        # the typo search walks ranges with numpy, not bisection over the list: each step of a bisection reads
        # another string object somewhere in memory, and a request made thousands of them
        self._lcp = _common_prefix_lengths(self.keys)
        self._heads = np.asarray([k[: _HEAD_ARRAY] for k in self.keys], dtype=f"U{_HEAD_ARRAY}")
        self._top = self._rank_big_ranges()
        self._deletions = {d: self._deletion_index(d) for d, _ in TYPO_STEPS}

    def _head_ranges(self, heads: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per head, the range of the keys that start with it: where it and it + ``_END`` fall among the keys'
        first characters (needles of the array's own width: another would make numpy convert the whole array)."""
        width = f"U{_HEAD_ARRAY}"
        return (np.searchsorted(self._heads, np.asarray(heads, dtype=width)).astype(np.int64),
                np.searchsorted(self._heads, np.asarray([h + _END for h in heads], dtype=width)).astype(np.int64))

    def __len__(self) -> int:
        return len(self._entries.text)

    def save(self, model_dir: Path) -> None:
        """Write the index into ``model_dir / SUGGEST_DIR`` (created): arrays as .npy, strings as JSON."""
        folder = model_dir / SUGGEST_DIR
        folder.mkdir(parents=True, exist_ok=True)
        es = self._entries
        strings = {"keys": self.keys, "text": es.text, "kind": es.kind, "doc_id": es.doc_id, "law": es.law,
                   "df": es.df, "heads": {str(d): ix.heads for d, ix in self._deletions.items()}}
        (folder / _STRINGS_FILE).write_text(json.dumps(strings, ensure_ascii=False), encoding="utf-8")
        bounds = np.asarray(sorted(self._top), dtype=np.int64).reshape(-1, 2)
        arrays = {"entry_of": self._entry_of, "lcp": self._lcp, "heads": self._heads, "top_bounds": bounds,
                  "top_rows": np.asarray([self._top[(lo, hi)] for lo, hi in bounds.tolist()],
                                         dtype=np.int64).reshape(-1, _TOP)}
        for d, ix in self._deletions.items():
            arrays[f"deletions{d}_strings"] = ix.strings
            arrays[f"deletions{d}_head_of"] = ix.head_of
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", array)

    @classmethod
    def load(cls, model_dir: Path, mmap: bool = True) -> SuggestionIndex | None:
        """The index ``save`` wrote into a model folder, arrays memory-mapped; None for a model trained before it
        existed."""
        folder = model_dir / SUGGEST_DIR
        if not folder.is_dir():
            return None
        try:
            strings = json.loads((folder / _STRINGS_FILE).read_text(encoding="utf-8"))
            arrays = {p.stem: load_array(p, mmap) for p in folder.glob("*.npy")}
            index = cls.__new__(cls)
            index._entries = _Entries(strings["text"], strings["kind"], strings["doc_id"], strings["law"],
                                      strings["df"], [])
            index.keys = strings["keys"]
            index._entry_of = arrays["entry_of"]
            index._df = np.asarray(strings["df"], dtype=np.int64)[index._entry_of]
            index._lcp = arrays["lcp"]
            index._heads = arrays["heads"]
            index._top = {(lo, hi): arrays["top_rows"][i]
                          for i, (lo, hi) in enumerate(arrays["top_bounds"].tolist())}
            index._deletions = {
                d: _DeletionIndex(d, _HEAD[d] - d, arrays[f"deletions{d}_strings"], arrays[f"deletions{d}_head_of"],
                                  strings["heads"][str(d)], *index._head_ranges(strings["heads"][str(d)]))
                for d, _ in TYPO_STEPS
            }
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise ArtifactError(f"suggestion index in {folder} is unreadable: {exc}") from exc
        sizes = {len(index.keys), len(index._entry_of), len(index._lcp), len(index._heads)}
        if len(sizes) != 1 or (index._entry_of.size and int(index._entry_of.max()) >= len(index._entries.text)):
            raise ArtifactError(f"suggestion index in {folder} is inconsistent: its arrays disagree in length")
        return index

    def suggest(self, query: str, k: int = 8) -> list[Suggestion]:
        """Up to ``k`` completions of ``query``, best first (see the module's docstring for the order)."""
        folded = fold(query)
        if not folded.strip():
            raise EmptyQueryError("the query is empty")
        found: dict[int, int] = {}
        self._take([(0, *self._range(folded))], k, found)
        typed = len(query.strip())
        # a digit names a section or a date: one typo in it names another one, not a misspelling
        allowed = 0 if any(map(str.isdigit, folded)) else max(
            (d for d, shortest in TYPO_STEPS if typed >= shortest), default=0)
        self._take_typos(folded, allowed, k, found)
        return [self._suggestion(e, d) for e, d in found.items()]

    def _take_typos(self, folded: str, allowed: int, k: int, found: dict[int, int]) -> None:
        """``_take`` the matches within ``allowed`` edits while fewer than ``k`` are found: those of one edit
        first, all ranked before those of two."""
        if len(found) >= k or not allowed:
            return
        if allowed == 2 and len(folded) >= _HEAD[2]:
            # the two-edit search finds the one-edit matches too (as groups one character longer): one search
            # serves both. Not for a query that folds shorter than the two-edit heads (spaces and accents folded
            # away): its one-edit matches may be keys too short for those heads
            spans = self._typo_ranges(folded, 2)
            self._take(self._one_edit_groups(spans, len(folded)), k, found)
            if len(found) < k:
                self._take(spans, k, found)
            return
        for edits in range(1, allowed + 1):
            if len(found) >= k:
                break
            self._take(self._typo_ranges(folded, edits), k, found)

    def _suggestion(self, entry: int, edits: int) -> Suggestion:
        es = self._entries
        return Suggestion(es.text[entry], es.kind[entry], es.doc_id[entry], es.df[entry], es.law[entry], edits)

    def _range(self, prefix: str) -> tuple[int, int]:
        return bisect_left(self.keys, prefix), bisect_left(self.keys, prefix + _END)

    def _take(self, spans: Sequence[tuple[int, int, int]], k: int, found: dict[int, int]) -> None:
        """Add to ``found`` (entry -> edits) the best entries of (edits, lo, hi) key ranges not found yet, up to
        ``k`` in all: fewer edits first, then the more frequent (ties by key)."""
        if len(spans) == 1:  # a prefix: one range, ranked at build time when large, else by one stable sort
            edits, lo, hi = spans[0]
            best = self._top.get((lo, hi))
            ranked = best[: 2 * k] if best is not None else lo + np.argsort(-self._df[lo:hi], kind="stable")
            self._add(self._entry_of[ranked].tolist(), [edits] * len(ranked), k, found)
            return
        parts: list[np.ndarray] = []
        costs: list[np.ndarray] = []
        plain: list[tuple[int, int, int]] = []
        for edits, lo, hi in set(spans):
            if lo < hi:
                # a large range brings its ranked best, a small one all of its keys: one sort ranks them all
                best = self._top.get((lo, hi))
                if best is None:
                    plain.append((edits, lo, hi))
                    continue
                parts.append(best[: 2 * k])
                costs.append(np.full(parts[-1].size, edits))
        if len(plain) == 1:
            parts.append(np.arange(plain[0][1], plain[0][2]))
            costs.append(np.full(parts[-1].size, plain[0][0]))
        elif plain:
            ranges = np.asarray(plain, dtype=np.int64)
            parts.append(_spread(ranges[:, 1], ranges[:, 2])[0])
            costs.append(np.repeat(ranges[:, 0], ranges[:, 2] - ranges[:, 1]))
        if not parts:
            return
        positions, edit_counts = np.concatenate(parts), np.concatenate(costs)
        order = np.lexsort((positions, -self._df[positions], edit_counts))
        self._add(self._entry_of[positions[order]].tolist(), edit_counts[order].tolist(), k, found)

    @staticmethod
    def _add(entries: list[int], edits: list[int], k: int, found: dict[int, int]) -> None:
        """Add entries in their order to ``found`` (those not in it yet) until it holds ``k``."""
        for entry, count in zip(entries, edits, strict=True):
            if len(found) >= k:
                return
            found.setdefault(entry, count)

    def _groups(self, lo: int, hi: int, width: int) -> Iterable[tuple[str, int, int]]:
        """The distinct first ``width`` characters of the keys in a range, each with its own range; a key
        shorter than that is a group of its own (a longer key it is a prefix of has other first characters)."""
        keys = self.keys
        i = lo
        while i < hi:
            key = keys[i]
            if len(key) < width:
                j = bisect_right(keys, key, i, hi)
                yield key, i, j
            else:
                head = key[:width]
                j = bisect_left(keys, head + _END, i, hi)
                yield head, i, j
            i = j

    def _groups_of(self, los: np.ndarray, his: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the groups of ``_groups`` start and end in several disjoint ranges at once, in order
        (``_head_spans``, or groups of a narrower width), from the common prefix lengths of neighbouring keys: a
        group starts where a key shares fewer than ``width`` characters with the one before. The first key of a
        group stands for it: the others share its first ``width`` characters."""
        positions, firsts = _spread(los, his)
        starts_at = self._lcp[positions] < width
        starts_at[firsts] = True
        index = np.flatnonzero(starts_at)
        return positions[index], positions[np.append(index[1:], positions.size) - 1] + 1

    def _one_edit_groups(self, spans: Sequence[tuple[int, int, int]], length: int) -> list[tuple[int, int, int]]:
        """The one-edit answer of a query of ``length`` characters (``_typo_ranges(query, 1)``) from its two-edit
        answer: the groups of ``length + 1`` characters over the ones at one edit among its groups of
        ``length + 2`` (whose keys all share their first ``length + 1`` characters, and so their edits)."""
        ones = np.asarray([(lo, hi) for edits, lo, hi in spans if edits == 1], dtype=np.int64).reshape(-1, 2)
        if not ones.size:
            return []
        # neighbouring groups of one wider group are one range: its groups start where the common prefixes say
        opens = np.flatnonzero(np.concatenate(([True], ones[1:, 0] != ones[:-1, 1])))
        starts, ends = self._groups_of(ones[opens, 0], ones[np.append(opens[1:], len(ones)) - 1, 1], length + 1)
        return [(1, lo, hi) for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True)]

    def _head_spans(self, index: _DeletionIndex, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The key ranges of the heads that share a deletion string with the query's head."""
        wanted = np.asarray(sorted(_deletions(query[: _HEAD[index.edits]], index.edits, index.width)))
        at, _ = _spread(np.searchsorted(index.strings, wanted, side="left"),
                        np.searchsorted(index.strings, wanted, side="right"))
        heads = np.unique(index.head_of[at])
        if heads.size < 2:
            return index.head_lo[heads], index.head_hi[heads]
        # in head order, so by start; a head's range holds those of the longer heads it begins: merged, a range
        # that starts beyond every range before it opens a merged one, which reaches their farthest end
        los, reach = index.head_lo[heads], np.maximum.accumulate(index.head_hi[heads])
        opens = np.flatnonzero(np.concatenate(([True], los[1:] > reach[:-1])))
        return los[opens], reach[np.append(opens[1:], los.size) - 1]

    def _typo_ranges(self, query: str, edits: int) -> list[tuple[int, int, int]]:
        """(edits, lo, hi) of the key ranges whose keys begin within ``edits`` of the query (more than 0).

        The heads' ranges are refined level by level: at ``m`` query characters the groups of keys sharing their
        first ``m + edits`` characters are kept when ``query[:m]`` is within ``edits`` of a start of theirs (the
        first level ``_FIRST`` characters past the head, then ``_STEP`` more each); at the whole query the groups
        left, with their edits, are the answer. Which levels are checked changes only the work, not the answer."""
        index = self._deletions[edits]
        if len(query) < index.width or index.strings.size == 0:
            return []
        los, his = self._head_spans(index, query)
        m = min(_HEAD[edits] + _FIRST, len(query))
        while los.size:
            starts, ends = self._groups_of(los, his, m + edits)
            found = _prefix_distances_within(query[:m], [self.keys[i] for i in starts.tolist()], edits,
                                             exact=m == len(query))
            if m == len(query):
                last = (found > 0) & (found <= edits)
                return list(zip(found[last].tolist(), starts[last].tolist(), ends[last].tolist(), strict=True))
            keep = found <= edits
            los, his = starts[keep], ends[keep]
            m = min(m + _STEP, len(query))
        return []

    def _rank_big_ranges(self) -> dict[tuple[int, int], np.ndarray]:
        """The best ``_TOP`` key positions of every prefix range longer than ``_BIG_RANGE`` keys."""
        top: dict[tuple[int, int], np.ndarray] = {}
        stack = [("", 0, len(self.keys))]
        while stack:
            prefix, lo, hi = stack.pop()
            if hi - lo <= _BIG_RANGE:
                continue
            if prefix:
                df = self._df[lo:hi]
                best = np.argpartition(-df, _TOP)[:_TOP]
                top[(lo, hi)] = lo + best[np.lexsort((best, -df[best]))]
            stack.extend(g for g in self._groups(lo, hi, len(prefix) + 1) if len(g[0]) > len(prefix))
        return top

    def _deletion_index(self, edits: int) -> _DeletionIndex:
        width = _HEAD[edits] - edits
        heads = sorted({key[: _HEAD[edits]] for key in self.keys if len(key) >= width})
        strings: list[str] = []
        head_of: list[int] = []
        for h, head in enumerate(heads):
            found = _deletions(head, edits, width)
            strings.extend(found)
            head_of.extend([h] * len(found))
        order = np.argsort(np.asarray(strings, dtype=f"U{width}"), kind="stable")
        return _DeletionIndex(edits, width, np.asarray(strings, dtype=f"U{width}")[order],
                              np.asarray(head_of, dtype=np.int32)[order], heads, *self._head_ranges(heads))


def _deletions(text: str, edits: int, width: int) -> set[str]:
    """The first ``width`` characters of every string made by deleting up to ``edits`` characters of ``text``
    (at most ``width + edits`` characters long): its subsequences of length ``width``.

    Two strings whose starts are within d edits share such a string (each side deletes the characters the
    other lacks, a substitution deletes on both): truncating to ``width`` = head length - d makes that hold
    whatever the edits did to the length."""
    return {"".join(c) for c in combinations(text[: width + edits], width)}


def _common_prefix_lengths(keys: Sequence[str]) -> np.ndarray:
    """Per key, how many first characters it shares with the key before it (0 for the first)."""
    n = len(keys)
    out = np.zeros(n, dtype=np.int32)
    chunk = 50_000
    for lo in range(1, n, chunk):
        hi = min(n, lo + chunk)
        # fixed-width code points, compared column by column: zero padding ends a shorter key
        block = np.asarray(keys[lo - 1 : hi], dtype=f"U{_LCP_CHARS}").view(np.uint32).reshape(-1, _LCP_CHARS)
        same = block[1:] == block[:-1]
        found = np.where(same.all(axis=1), _LCP_CHARS, same.argmin(axis=1))
        out[lo:hi] = found
    lengths = np.fromiter((len(k) for k in keys), dtype=np.int32, count=n)
    out[1:] = np.minimum(out[1:], np.minimum(lengths[1:], lengths[:-1]))
    for i in np.flatnonzero(out >= _LCP_CHARS).tolist():  # longer common starts: counted one by one (rare)
        a, b = keys[i - 1], keys[i]
        j = _LCP_CHARS
        while j < min(len(a), len(b)) and a[j] == b[j]:
            j += 1
        out[i] = j
    return out


def prefix_distances(query: str, texts: Sequence[str], limit: int) -> list[int]:
    """Per text, the fewest edits that turn ``query`` into a prefix of it (``limit + 1`` when more than
    ``limit``): the least Levenshtein distance to the text's starts of ``len(query) ± limit`` characters,
    each length compared with all texts in one rapidfuzz call."""
    n = len(query)
    if not texts:
        return []
    best = np.full(len(texts), limit + 1, dtype=np.int64)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    for length in range(max(0, n - limit), n + limit + 1):
        found = cdist([query], [t[:length] for t in texts], scorer=Levenshtein.distance, score_cutoff=limit,
                      dtype=np.int32)[0]
        # a text shorter than this length has no such start (its slice is the whole text): it must not count
        found[lengths < length] = limit + 1
        np.minimum(best, found, out=best)
    return list(best.tolist())


def _prefix_distances_within(query: str, texts: Sequence[str], limit: int, exact: bool) -> np.ndarray:
    """Per text, a number that is at most ``limit`` exactly when ``prefix_distances`` is, and with ``exact`` is
    ``prefix_distances`` itself.

    One rapidfuzz call compares the query with each text's start of the query's length first. A start ``j``
    characters longer or shorter is at least ``j`` edits away, and at least that distance less ``j``: starts of
    other lengths are compared only for the texts where they could still decide (or lower) the answer."""
    if len(texts) <= _FEW_TEXTS:
        return np.asarray([_prefix_distance(query, t, limit) for t in texts], dtype=np.int64)
    n = len(query)
    at_n = _distances(query, [t[:n] for t in texts], 2 * limit)
    best = np.minimum(at_n, limit + 1)
    for j in range(1, limit + 1):
        rows = np.flatnonzero((np.maximum(j, at_n - j) < best) & (exact | (best > limit)))
        if not rows.size:
            continue
        chosen = [texts[i] for i in rows.tolist()]
        for length in (n - j, n + j):
            if length >= 0:
                starts = [t[:length] for t in chosen]
                found = _distances(query, starts, limit)
                # a text shorter than this length has no such start (its slice is the whole text): no count
                found[np.fromiter(map(len, starts), dtype=np.int64, count=len(starts)) < length] = limit + 1
                best[rows] = np.minimum(best[rows], found)
    return best


def _distances(query: str, texts: Sequence[str], limit: int) -> np.ndarray:
    """Levenshtein distances of the query to each text, ``limit + 1`` for any over ``limit``."""
    return cdist([query], texts, scorer=Levenshtein.distance, score_cutoff=limit, dtype=np.int32)[0].astype(np.int64)


def _prefix_distance(query: str, text: str, limit: int) -> int:
    """``prefix_distances`` of one text, one rapidfuzz call per length (a few texts cost less so than in batches)."""
    n = len(query)
    return min((Levenshtein.distance(query, text[:length], score_cutoff=limit)
                for length in range(max(0, n - limit), min(n + limit, len(text)) + 1)), default=limit + 1)


def _spread(los: np.ndarray, his: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every position of the ranges ``[lo, hi)``, range after range, and where each range starts among them."""
    lengths = his - los
    firsts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(los - firsts, lengths), firsts


def build_suggestions(keywords: KeywordModel, documents: DocumentStore, ids: Sequence[str]) -> SuggestionIndex:
    """The suggestion index of a model: its keyword vocabulary (words and phrases), its laws (title and
    abbreviation, counted by documents) and its sections ("BGB § 573 Ordentliche Kündigung des Vermieters")."""
    entries = _Entries([], [], [], [], [], [])

    def add(text: str, kind: str, doc_id: str | None, law: str | None, df: int, keys: list[str]) -> None:
        entries.text.append(text)
        entries.kind.append(kind)
        entries.doc_id.append(doc_id)
        entries.law.append(law)
        entries.df.append(df)
        entries.keys.append(keys)

    for term, df in zip(keywords.vocabulary, keywords.df.tolist(), strict=True):
        if "§" in term:  # citation tokens ("§573"): the section entries name them better
            continue
        text = term.replace(PHRASE_JOINER, " ")
        add(text, "phrase" if PHRASE_JOINER in term else "keyword", None, None, int(df), [fold(text)])
    laws: dict[str, list[int]] = {}
    for row in range(len(documents)):
        law = documents.field_value("law", row)
        if isinstance(law, str):
            laws.setdefault(law, []).append(row)
    for law, rows in sorted(laws.items()):
        # decisions name the law they apply but not its title: the title is the statutes'
        title = next((t for r in rows if isinstance(t := documents.field_value("law_title", r), str) and t), None)
        text = f"{title} ({law})" if title else law
        add(text, "law", None, law, len(rows), sorted({fold(law), fold(text)}))
        for row in rows:
            if isinstance(documents.field_value("section", row), str):
                doc_title = str(documents.record(row)["title"])
                # an annex's id already holds its title ("BGB Anlage 1 Muster ...")
                section = ids[row] if doc_title in ids[row] else f"{ids[row]} {doc_title}".strip()
                add(section, "section", ids[row], law, 1, [fold(section)])
    return SuggestionIndex(entries)
