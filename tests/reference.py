"""Reference implementations that only tests use: the plain versions the fast paths in src/ are held equal to."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from legalsearch.config import PreprocessConfig
from legalsearch.ranking import ExpandedTerm
from legalsearch.ranking.query import _expand
from legalsearch.snippets import Snippet, SnippetIndex, make_snippets
from legalsearch.text import Preprocessor, TokenSpan


def token_spans(pre: Preprocessor, text: str) -> list[TokenSpan]:
    """Surface stretches of ``text`` with the tokens each produced (stretches producing none left out), read with
    spaCy's Token offsets: what ``Preprocessor.pipe_spans`` gives for one text."""
    doc = pre._tokenize(text)
    words = [t.text for t in doc]
    starts = [t.idx for t in doc]
    spans: list[TokenSpan] = []
    i, n = 0, len(words)
    while i < n:
        j, toks = pre._step(words, i)
        if toks:
            start = starts[i]
            end = starts[j - 1] + len(words[j - 1])
            spans.append(TokenSpan(start, end, text[start:end], toks))
        i = j
    return spans


def preprocess(texts: Iterable[str], config: PreprocessConfig) -> Iterator[list[str]]:
    """Tokens of each text, streamed in order, from a fresh preprocessor."""
    return Preprocessor(config).pipe(texts)


def wanted_terms(n_terms: int, term_ids: Iterable[int]) -> np.ndarray:
    """A request's terms as a boolean array over the lexical vocabulary."""
    mask = np.zeros(n_terms, dtype=bool)
    mask[np.fromiter(term_ids, dtype=np.int64)] = True
    return mask


def make_snippet(index: SnippetIndex, row: int, text: str, wanted: np.ndarray, chars: int) -> Snippet:
    """The ``chars`` long passage of ``text`` with most wanted terms (a ``wanted_terms`` mask), those marked;
    the lead when none occurs: ``make_snippets`` for one document."""
    return make_snippets(index, [row], [text], np.flatnonzero(wanted), chars)[0]


def expand_terms(model: Any, terms: Sequence[str]) -> list[ExpandedTerm]:
    """Related terms for query terms, weighted by similarity, restricted to the keyword vocabulary."""
    return [c.expanded for c in _expand(model, terms)]


def lucene_bm25(term: str, doc: list[str], docs: list[list[str]], k1: float, b: float) -> float:
    """Lucene BM25 of ``term`` in ``doc`` over the collection ``docs``, written out by hand."""
    n = len(docs)
    df = sum(term in d for d in docs)
    if df == 0:
        return 0.0
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    tf = doc.count(term)
    avgdl = sum(map(len, docs)) / n
    return idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
