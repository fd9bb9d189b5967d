"""Stage: the snippet index, where each document's opening words are and which lexical terms they produced.

Entry point: ``index_snippets`` runs the preprocessor over every document's opening text once, at training
time, and keeps each produced term's character span as arrays; in a training run the preprocessing stage has
already found the spans (``span_line``, written to the token cache while the tokenizer's caches were warm) and
``index_span_lines`` only turns them into term ids. At query time ``make_snippets`` finds the
passage with most query terms and marks them with array lookups: tokenizing ten result texts per request was
most of a recommendation's time before.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import logging
import re
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from legalsearch.config import PreprocessConfig
from legalsearch.errors import ArtifactError
from legalsearch.keywords import csr_rows
from legalsearch.model import load_arrays
from legalsearch.parallel import ordered_map
from legalsearch.text import Preprocessor, TokenSpan

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
        arrays = load_arrays(folder, FILES, "snippet index", mmap)
        n = int(arrays["indptr"][-1]) if arrays["indptr"].size else -1
        if any(arrays[k].shape != (n,) for k in ("starts", "ends", "terms")):
            raise ArtifactError(f"snippet index in {folder} is inconsistent: arrays of different lengths")
        return cls(**arrays)

    def __len__(self) -> int:
        return int(self.indptr.shape[0]) - 1


def index_snippets(
    texts: Iterable[str], preprocessor: Preprocessor, vocab: Mapping[str, int], snippet_chars: int
) -> SnippetIndex:
    """Spans and lexical term ids of every term in each text's opening ``head_chars`` characters.

    With ``n_process`` > 1 (the preprocessing setting) worker processes index batches beside this one: the
    arrays travel back compactly, unlike tokens, so here two processes on two cores pay off.
    """
    head = head_chars(snippet_chars)
    config = preprocessor.config
    it = (text[:head] for text in texts)
    batches = iter(lambda: list(islice(it, config.batch_size)), [])
    if config.n_process > 1:
        parts = list(ordered_map(batches, functools.partial(_index_batch, preprocessor, vocab), _index_remote,
                                 _unship_part, config.n_process, _init_worker,
                                 (dataclasses.replace(config, n_process=1), dict(vocab))))
    else:
        parts = [_index_batch(preprocessor, vocab, batch) for batch in batches]
    index = _concatenate(parts)
    log.info("snippet index: %d term positions in %d documents", index.terms.size, len(index))
    return index


#: between the tokens of one span in a ``span_line`` (spaCy tokens never hold it, nor whitespace: checked)
SPAN_TOKEN_SEP = "\x1f"
#: a ``span_line`` whose spans could not be written exactly: the document is indexed from its text instead
UNWRITTEN = "!"


def span_line(spans: Sequence[TokenSpan]) -> str:
    """One document's spans as a line of text: ``start end tokens`` per span, separated by spaces, the tokens
    joined by ``SPAN_TOKEN_SEP``; ``UNWRITTEN`` when a token holds whitespace or the separator."""
    line = " ".join(f"{span.start} {span.end} {SPAN_TOKEN_SEP.join(span.tokens)}" for span in spans)
    if line.count(" ") != max(0, 3 * len(spans) - 1) or "\n" in line or "\r" in line \
            or line.count(SPAN_TOKEN_SEP) != sum(len(span.tokens) - 1 for span in spans) \
            or any(not token or token != token.strip() for span in spans for token in span.tokens):
        return UNWRITTEN
    return line


def index_span_lines(
    lines: Iterable[str], texts: Iterable[str], preprocessor: Preprocessor, vocab: Mapping[str, int],
    snippet_chars: int,
) -> SnippetIndex:
    """``index_snippets`` from one ``span_line`` per text (the same arrays); a text whose line is ``UNWRITTEN``
    is preprocessed here."""
    head = head_chars(snippet_chars)
    indptr = array("q", [0])
    starts = array("i")
    ends = array("i")
    terms = array("i")
    get = vocab.get
    for line, text in zip(lines, texts, strict=True):
        if line == UNWRITTEN:
            part = _index_batch(preprocessor, vocab, [text[:head]])
            starts.extend(part.starts.tolist())
            ends.extend(part.ends.tolist())
            terms.extend(part.terms.tolist())
            indptr.append(len(terms))
            continue
        fields = line.split(" ") if line else []
        for k in range(0, len(fields), 3):
            joined = fields[k + 2]
            tokens = dict.fromkeys(joined.split(SPAN_TOKEN_SEP)) if SPAN_TOKEN_SEP in joined else (joined,)
            for token in tokens:
                term = get(token)
                if term is not None:
                    starts.append(int(fields[k]))
                    ends.append(int(fields[k + 1]))
                    terms.append(term)
        indptr.append(len(terms))
    index = SnippetIndex(*(np.frombuffer(a, dtype=t) for a, t in
                           ((indptr, np.int64), (starts, np.int32), (ends, np.int32), (terms, np.int32))))
    log.info("snippet index: %d term positions in %d documents (spans from the token cache)", index.terms.size,
             len(index))
    return index


def _index_batch(preprocessor: Preprocessor, vocab: Mapping[str, int], texts: list[str]) -> SnippetIndex:
    # compact typed arrays while collecting: Python lists of ~8M ints held 600 MB in a full training
    indptr = array("q", [0])
    starts = array("i")
    ends = array("i")
    terms = array("i")
    for spans in preprocessor.pipe_spans(texts):
        for span in spans:
            for token in dict.fromkeys(span.tokens):
                term = vocab.get(token)
                if term is not None:
                    starts.append(span.start)
                    ends.append(span.end)
                    terms.append(term)
        indptr.append(len(terms))
    return SnippetIndex(*(np.frombuffer(a, dtype=t) for a, t in
                          ((indptr, np.int64), (starts, np.int32), (ends, np.int32), (terms, np.int32))))


def _concatenate(parts: Sequence[SnippetIndex]) -> SnippetIndex:
    offsets = np.cumsum([0] + [int(p.indptr[-1]) for p in parts])
    indptr = np.concatenate([np.zeros(1, dtype=np.int64)]
                            + [p.indptr[1:] + off for p, off in zip(parts, offsets, strict=False)])
    return SnippetIndex(
        indptr.astype(np.int64),
        np.concatenate([np.empty(0, np.int32)] + [p.starts for p in parts]).astype(np.int32),
        np.concatenate([np.empty(0, np.int32)] + [p.ends for p in parts]).astype(np.int32),
        np.concatenate([np.empty(0, np.int32)] + [p.terms for p in parts]).astype(np.int32),
    )


_worker: tuple[Preprocessor, dict[str, int]] | None = None


def _init_worker(config: PreprocessConfig, vocab: dict[str, int]) -> None:
    global _worker
    _worker = (Preprocessor(config), vocab)


def _index_remote(texts: list[str]) -> tuple[np.ndarray, ...]:
    assert _worker is not None  # set by the pool initializer
    part = _index_batch(_worker[0], _worker[1], texts)
    return part.indptr, part.starts, part.ends, part.terms


def _unship_part(arrays: tuple[np.ndarray, ...]) -> SnippetIndex:
    return SnippetIndex(*arrays)


def wanted_ids(term_ids: Iterable[int]) -> np.ndarray:
    """A request's terms as the sorted array ``make_snippets`` takes: a vocabulary-wide mask per request cost
    more (a fresh 350 kB allocation) than looking the few terms up by binary search."""
    return np.array(sorted(set(term_ids)), dtype=np.int64)


_HTML_SPECIAL = re.compile("[&<>\"']")
_SCRATCH = threading.local()


def _scratch_mask(size: int) -> np.ndarray:
    """An all-False boolean array of at least ``size``, one per thread and kept: allocating a mask over the
    lexical vocabulary (350 kB) per request cost more than the lookups, and binary search did too.
    Callers set their entries and must reset them."""
    mask: np.ndarray | None = getattr(_SCRATCH, "mask", None)
    if mask is None or mask.size < size:
        mask = np.zeros(max(size, 2 * (0 if mask is None else mask.size)), dtype=bool)
        _SCRATCH.mask = mask
    return mask


def make_snippets(
    index: SnippetIndex, rows: Sequence[int], texts: Sequence[str], wanted: np.ndarray, chars: int
) -> list[Snippet]:
    """The ``chars`` long passage of each text with most wanted terms (sorted ids, ``wanted_ids``), those marked;
    the lead when none occurs.

    The array work runs once for all rows: per document it was a dozen numpy calls on ~100 positions, where
    the call overhead was most of the time.
    """
    if not rows:
        return []
    passages, bounds, matched = _passages(index, rows, texts, wanted, chars)
    return [Snippet(passage, frozenset(matched[bounds[r]:bounds[r + 1]])) for r, passage in enumerate(passages)]


def snippet_passages(
    index: SnippetIndex, rows: Sequence[int], texts: Sequence[str], wanted: np.ndarray, chars: int
) -> list[str]:
    """``make_snippets``' passages alone, for answers that do not list the matched terms."""
    return _passages(index, rows, texts, wanted, chars)[0] if rows else []


def _passages(
    index: SnippetIndex, rows: Sequence[int], texts: Sequence[str], wanted: np.ndarray, chars: int
) -> tuple[list[str], list[int], list[int]]:
    """Each text's passage; per row the bounds of its matched term ids in the list returned last."""
    at = csr_rows(index.indptr, rows)
    positions = at.positions
    terms = index.terms[positions]
    if wanted.size:
        # a lookup table over term ids; one slot past the highest wanted id stands for every higher id
        size = int(wanted[-1]) + 2
        mask = _scratch_mask(size)
        mask[wanted] = True
        try:
            picked = np.flatnonzero(mask[np.minimum(terms, size - 1)])
        finally:
            mask[wanted] = False
    else:
        picked = np.zeros(0, dtype=np.int64)
    # picked positions per row: rows' matches are consecutive in `picked`
    bounds = np.searchsorted(picked, at.bounds).tolist()
    at_pos = positions[picked]
    starts = index.starts[at_pos].astype(np.int64)
    # one word can produce several wanted terms (a compound and its parts): it is marked once; positions are
    # in text order, so repeats are neighbours
    keep = np.ones(picked.size, dtype=bool)
    keep[1:] = starts[1:] != starts[:-1]
    keep[[b for b in bounds[:-1] if b < picked.size]] = True  # each row's first match
    kept = np.flatnonzero(keep)
    kept_bounds = np.searchsorted(kept, bounds).tolist()
    # a kept span's window of `chars` covers the spans up to the first starting at or past start + chars; rows
    # are kept apart by a high key, so that one binary search serves all rows
    row_of = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(bounds))[kept]
    starts = starts[kept]
    keys = (row_of << 32) + starts
    ahead = np.searchsorted(keys, keys + chars) - np.arange(kept.size)
    covered = np.maximum(ahead, 0).tolist()
    kept_starts = starts.tolist()
    kept_ends = index.ends[at_pos[kept]].tolist()
    matched_terms = terms[picked].tolist()
    out: list[str] = []
    for r, text in enumerate(texts):
        if bounds[r] == bounds[r + 1]:
            out.append(html.escape(text[:chars] + ("…" if len(text) > chars else "")))
            continue
        ka, kb = kept_bounds[r], kept_bounds[r + 1]
        counts = covered[ka:kb]
        # the first start whose window covers most matches
        best_start = kept_starts[ka + counts.index(max(counts))]
        out.append(_window(text, kept_starts, kept_ends, ka, kb, best_start, chars))
    return out, bounds, matched_terms


def _window(text: str, starts: list[int], ends: list[int], lo: int, hi: int, best_start: int, chars: int) -> str:
    """The escaped passage around ``best_start`` with the spans ``starts[lo:hi]``, ``ends[lo:hi]`` inside it
    marked (the lists hold every row's spans: indices instead of slices spare two copies per result)."""
    start = max(0, best_start - chars // 4)
    if start > 0:
        # begin at a word boundary
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + chars)
    # most passages hold nothing to escape: one scan spares an html.escape per piece
    plain = _HTML_SPECIAL.search(text, start, end) is None
    out = ["…" if start > 0 else ""]
    pos = start
    for j in range(bisect_left(starts, start, lo, hi), hi):
        s = starts[j]
        if s > end:
            break  # spans are sorted and end after they start: none further fits
        e = ends[j]
        if e > end or s < pos:
            continue
        if plain:
            out.append(text[pos:s])
            out.append(f"<mark>{text[s:e]}</mark>")
        else:
            out.append(html.escape(text[pos:s]))
            out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(text[pos:end] if plain else html.escape(text[pos:end]))
    out.append("…" if end < len(text) else "")
    return "".join(out)
