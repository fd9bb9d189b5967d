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
#: query characters the typo search adds per refinement step (each step drops key ranges that went too far); on
#: the full corpus's benchmark mix 1 cost twice the CPU of 4-6 (more levels), larger steps no less
_STEP = 5
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
                                  strings["heads"][str(d)])
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
        allowed = 0 if any(c.isdigit() for c in folded) else max(
            (d for d, shortest in TYPO_STEPS if typed >= shortest), default=0)
        # one edit first: all its matches rank before those of two, which are looked for only if still short
        for edits in range(1, allowed + 1):
            if len(found) >= k:
                break
            self._take(self._typo_ranges(folded, edits), k, found)
        return [self._suggestion(e, d) for e, d in found.items()]

    def _suggestion(self, entry: int, edits: int) -> Suggestion:
        es = self._entries
        return Suggestion(es.text[entry], es.kind[entry], es.doc_id[entry], es.df[entry], es.law[entry], edits)

    def _range(self, prefix: str) -> tuple[int, int]:
        return bisect_left(self.keys, prefix), bisect_left(self.keys, prefix + _END)

    def _take(self, spans: Iterable[tuple[int, int, int]], k: int, found: dict[int, int]) -> None:
        """Add to ``found`` (entry -> edits) the best entries of (edits, lo, hi) key ranges not found yet, up to
        ``k`` in all: fewer edits first, then the more frequent (ties by key)."""
        parts: list[np.ndarray] = []
        costs: list[np.ndarray] = []
        for edits, lo, hi in set(spans):
            if lo < hi:
                # a large range brings its ranked best, a small one all of its keys: one sort ranks them all
                best = self._top.get((lo, hi))
                part = best[: 2 * k] if best is not None else np.arange(lo, hi)
                parts.append(part)
                costs.append(np.full(part.size, edits))
        if not parts:
            return
        positions = np.concatenate(parts)
        order = np.lexsort((positions, -self._df[positions], np.concatenate(costs)))
        for pos, edits in zip(positions[order].tolist(), np.concatenate(costs)[order].tolist(), strict=True):
            if len(found) >= k:
                return
            found.setdefault(int(self._entry_of[pos]), edits)

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

    def _groups_of(self, spans: Sequence[tuple[int, int]], width: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``_groups`` of several ranges at once, from the common prefix lengths of neighbouring keys: a group
        starts where a key shares fewer than ``width`` characters with the one before. Overlapping ranges (a
        head's range inside a shorter head's) are merged first; their groups are the same."""
        merged: list[list[int]] = []
        for lo, hi in sorted(spans):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            elif lo < hi:
                merged.append([lo, hi])
        if not merged:
            return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
        bounds = np.asarray(merged, dtype=np.int64)
        lengths = bounds[:, 1] - bounds[:, 0]
        firsts = np.cumsum(lengths) - lengths
        positions = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(bounds[:, 0] - firsts, lengths)
        starts_at = self._lcp[positions] < width
        starts_at[firsts] = True
        index = np.flatnonzero(starts_at)
        starts = positions[index]
        ends = positions[np.append(index[1:], positions.size) - 1] + 1
        keys = self.keys
        return [keys[i][:width] for i in starts.tolist()], starts, ends

    def _typo_ranges(self, query: str, edits: int) -> list[tuple[int, int, int]]:
        """(edits, lo, hi) of the key ranges whose keys begin within ``edits`` of the query (more than 0)."""
        index = self._deletions[edits]
        if len(query) < index.width or index.strings.size == 0:
            return []
        wanted = np.asarray(sorted(_deletions(query[: _HEAD[edits]], edits, index.width)))
        los = np.searchsorted(index.strings, wanted, side="left")
        his = np.searchsorted(index.strings, wanted, side="right")
        heads = sorted({index.heads[h] for lo, hi in zip(los.tolist(), his.tolist(), strict=True)
                        for h in index.head_of[lo:hi].tolist()})
        # needles of the array's own width: another width would make numpy convert the whole array per call
        width = f"U{_HEAD_ARRAY}"
        spans = list(zip(np.searchsorted(self._heads, np.asarray(heads, dtype=width)).tolist(),
                         np.searchsorted(self._heads, np.asarray([h + _END for h in heads], dtype=width)).tolist(),
                         strict=True))
        # the first level checks the heads themselves: most deletion matches are no near match at all
        levels = [*range(_HEAD[edits], len(query), _STEP), len(query)]
        out: list[tuple[int, int, int]] = []
        for m in levels:
            texts, starts, ends = self._groups_of(spans, m + edits)
            found = np.asarray(prefix_distances(query[:m], texts, edits), dtype=np.int64)
            keep = found <= edits
            spans = list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))
            if m == len(query):
                last = keep & (found > 0)
                out = list(zip(found[last].tolist(), starts[last].tolist(), ends[last].tolist(), strict=True))
        return out

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
                              np.asarray(head_of, dtype=np.int32)[order], heads)


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
