"""Stage: the snippet index, where each document's opening words are and which lexical terms they produced.

Entry point: ``index_snippets`` runs the preprocessor over every document's opening text once, at training
time, and keeps each produced term's character span as arrays. At query time ``make_snippet`` finds the
passage with most query terms and marks them with array lookups: tokenizing ten result texts per request was
most of a recommendation's time before.
"""

from __future__ import annotations

import html
import logging
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from legalsearch.errors import ArtifactError
from legalsearch.model import load_array
from legalsearch.text import Preprocessor

log = logging.getLogger(__name__)

FILES = {
    "indptr": "snippets_indptr.npy",
    "starts": "snippets_starts.npy",
    "ends": "snippets_ends.npy",
    "terms": "snippets_terms.npy",
}


def head_chars(snippet_chars: int) -> int:
    """How much of a text's beginning snippets are chosen from: long statutes would cost too much in full."""
    return max(snippet_chars * 12, 3000)


@dataclass(frozen=True)
class Snippet:
    """A passage as HTML-escaped text with matched terms in <mark>, and the matched lexical term ids."""

    html: str
    matched: frozenset[int]


@dataclass(frozen=True)
class SnippetIndex:
    """CSR arrays: document row i's terms are ``terms[indptr[i]:indptr[i+1]]`` with their spans, in text order."""

    indptr: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    terms: np.ndarray

    def save(self, folder: Path) -> None:
        """Write the four arrays as .npy files."""
        for name, file in FILES.items():
            np.save(folder / file, getattr(self, name))

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> SnippetIndex | None:
        """The index of a model folder, memory-mapped; None for a model trained before it existed."""
        if not (folder / FILES["indptr"]).exists():
            return None
        try:
            arrays = {name: load_array(folder / file, mmap) for name, file in FILES.items()}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"snippet index in {folder} is unreadable: {exc}") from exc
        n = int(arrays["indptr"][-1]) if arrays["indptr"].size else -1
        if any(arrays[k].shape != (n,) for k in ("starts", "ends", "terms")):
            raise ArtifactError(f"snippet index in {folder} is inconsistent: arrays of different lengths")
        return cls(**arrays)

    def __len__(self) -> int:
        return int(self.indptr.shape[0]) - 1


def index_snippets(
    texts: Iterable[str], preprocessor: Preprocessor, vocab: Mapping[str, int], snippet_chars: int
) -> SnippetIndex:
    """Spans and lexical term ids of every term in each text's opening ``head_chars`` characters."""
    head = head_chars(snippet_chars)
    # compact typed arrays while collecting: Python lists of ~8M ints held 600 MB in a full training
    indptr = array("q", [0])
    starts = array("i")
    ends = array("i")
    terms = array("i")
    for spans in preprocessor.pipe_spans(text[:head] for text in texts):
        for span in spans:
            for token in dict.fromkeys(span.tokens):
                term = vocab.get(token)
                if term is not None:
                    starts.append(span.start)
                    ends.append(span.end)
                    terms.append(term)
        indptr.append(len(terms))
    log.info("snippet index: %d term positions in %d documents", len(terms), len(indptr) - 1)
    return SnippetIndex(
        np.frombuffer(indptr, dtype=np.int64).copy(),
        np.frombuffer(starts, dtype=np.int32).copy(),
        np.frombuffer(ends, dtype=np.int32).copy(),
        np.frombuffer(terms, dtype=np.int32).copy(),
    )


def wanted_terms(n_terms: int, term_ids: Iterable[int]) -> np.ndarray:
    """A request's terms as a boolean array over the lexical vocabulary: one lookup per indexed position."""
    mask = np.zeros(n_terms, dtype=bool)
    mask[np.fromiter(term_ids, dtype=np.int64)] = True
    return mask


def make_snippet(index: SnippetIndex, row: int, text: str, wanted: np.ndarray, chars: int) -> Snippet:
    """The ``chars`` long passage of ``text`` with most wanted terms (``wanted_terms``), those marked; the lead
    when none occurs."""
    lo, hi = int(index.indptr[row]), int(index.indptr[row + 1])
    terms = index.terms[lo:hi]
    picked = np.flatnonzero(wanted[terms])
    if picked.size == 0:
        return Snippet(html.escape(text[:chars] + ("…" if len(text) > chars else "")), frozenset())
    matched = frozenset(terms[picked].tolist())
    # a handful of matches per document: plain Python from here beats a dozen small numpy calls
    spans: list[tuple[int, int]] = []
    previous = -1
    for s, e in zip(index.starts[lo:hi][picked].tolist(), index.ends[lo:hi][picked].tolist(), strict=True):
        # one word can produce several wanted terms (a compound and its parts): mark it once; positions are
        # in text order, so repeats are neighbours
        if s != previous:
            spans.append((s, e))
            previous = s
    # the first start whose window of `chars` covers most matches (two pointers over the sorted starts)
    best_start, best_count, j = spans[0][0], 0, 0
    for i, (s, _) in enumerate(spans):
        j = max(j, i)
        while j < len(spans) and spans[j][0] < s + chars:
            j += 1
        if j - i > best_count:
            best_start, best_count = s, j - i
    start = max(0, best_start - chars // 4)
    if start > 0:
        # begin at a word boundary
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + chars)
    out = ["…" if start > 0 else ""]
    pos = start
    for s, e in spans:
        if s < start or e > end or s < pos:
            continue
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:end]))
    out.append("…" if end < len(text) else "")
    return Snippet("".join(out), matched)
