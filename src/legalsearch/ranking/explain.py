"""Explanations (the keywords a result shares with the request) and snippets with the matched terms marked."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from legalsearch.engine import Model
from legalsearch.keywords import PHRASE_JOINER, csr_rows
from legalsearch.ranking.results import Ranking
from legalsearch.snippets import make_snippets, snippet_passages, wanted_ids
from legalsearch.types import Keyword


def _request_ids(model: Model, request: Mapping[str, float]) -> dict[int, float]:
    """A request's keyword weights keyed by keyword id, the form documents' keywords are stored in."""
    index = model.keyword_model.term_index
    return {i: w for t, w in request.items() if (i := index.get(t)) is not None}


def _explain(model: Model, rows: Sequence[int], request_ids: Mapping[int, float], limit: int = 8) -> (
    list[tuple[Keyword, ...]]
):
    """Per row, the keywords the document shares with the request, weighted by both sides, best first."""
    if not request_ids or not rows:
        return [() for _ in rows]
    keywords = model.doc_keywords
    at = csr_rows(keywords.indptr, rows)
    terms = keywords.terms[at.positions]
    # the page's ~180 keywords against the request's, in one search: a document shares ~3.5 of its ~18 keywords
    # with a seed, so looking each up in Python cost most of the explanation
    wanted = np.fromiter(request_ids, dtype=np.int64, count=len(request_ids))
    order = np.argsort(wanted)
    wanted = wanted[order]
    request = np.fromiter(request_ids.values(), dtype=np.float64, count=len(request_ids))[order]
    i = np.minimum(np.searchsorted(wanted, terms), wanted.size - 1)
    shared_at = np.flatnonzero(wanted[i] == terms)
    # float64 products of the same doubles as Python's: the weights round exactly as they did one by one
    products = (keywords.weights[at.positions[shared_at]].astype(np.float64) * request[i[shared_at]]).tolist()
    shared_terms = terms[shared_at].tolist()
    cuts = np.searchsorted(shared_at, at.bounds).tolist()
    vocabulary = model.keyword_model.vocabulary
    out: list[tuple[Keyword, ...]] = []
    for r in range(len(rows)):
        shared = [(round(products[j], 6), vocabulary[shared_terms[j]]) for j in range(cuts[r], cuts[r + 1])]
        if len(shared) > 1:
            shared.sort(key=lambda wt: (-wt[0], wt[1]))
        # Keywords only for those returned: a frozen dataclass costs a microsecond to build
        out.append(tuple([Keyword(t, w) for w, t in shared[:limit]]))
    return out


def _request_keywords(request: Mapping[str, float]) -> tuple[Keyword, ...]:
    return tuple(Keyword(t, w) for t, w in sorted(request.items(), key=lambda tw: (-tw[1], tw[0]))[:20])


@dataclass(frozen=True)
class _Marked:
    """The terms to mark in a request's snippets, prepared once per request."""

    terms: frozenset[str]
    ids: dict[int, str]
    #: sorted lexical term ids (``wanted_ids``); None for a model without snippet index
    wanted: np.ndarray | None


def _marked(model: Model, terms: Iterable[str]) -> _Marked:
    wanted = frozenset(terms)
    vocab = model.lexical.vocab
    ids = {i: t for t in wanted if (i := vocab.get(t)) is not None}
    return _Marked(wanted, ids, wanted_ids(ids) if model.snippets is not None else None)


def _marked_ids(ids: Mapping[int, str]) -> _Marked:
    """``_marked`` for terms already looked up by lexical id (models with a snippet index only: ``terms``
    serves the others)."""
    return _Marked(frozenset(ids.values()), dict(ids), wanted_ids(ids))


def _marked_keywords(model: Model, keyword_ids: Iterable[int]) -> _Marked:
    """``_marked`` for keywords given by id (a seed document's): each keyword's split into lexical terms is
    looked up once per model instead of once per request (the memo holds at most the keyword vocabulary)."""
    vocabulary = model.keyword_model.vocabulary
    if model.snippets is None:
        return _marked(model, (p for k in keyword_ids for p in vocabulary[k].split(PHRASE_JOINER)))
    memo = model.ranking_caches.keyword_parts
    vocab = model.lexical.vocab
    ids: dict[int, str] = {}
    for k in keyword_ids:
        parts = memo.get(k)
        if parts is None:
            words = vocabulary[k].split(PHRASE_JOINER)
            parts = memo[k] = tuple((i, w) for w in words if (i := vocab.get(w)) is not None)
        for i, w in parts:
            ids[i] = w
    return _marked_ids(ids)


def _ranking_marked(model: Model, ranked: Ranking) -> _Marked:
    """The terms a query's snippets mark: its tokens and expanded terms."""
    if model.snippets is None:  # a model from before the snippet index: snippets match the terms' strings
        expanded = ranked.expanded_terms
        return _marked(model, {*ranked.analysis.tokens, *(p for e in expanded for p in e.term.split(PHRASE_JOINER))})
    return _marked_ids(ranked.marks)


@dataclass(frozen=True)
class _Snippet:
    html: str
    matched: tuple[str, ...]


def _snippets(model: Model, rows: Sequence[int], texts: Sequence[str], marked: _Marked, chars: int) -> (
    list[_Snippet]
):
    """Results' snippets and the query terms each matched: from the snippet index, or by tokenizing the texts
    for models trained before the index existed."""
    if model.snippets is None or marked.wanted is None:
        return [_Snippet(*snippet(model, text, marked.terms, chars)) for text in texts]
    return [
        _Snippet(found.html, tuple(sorted(marked.ids[i] for i in found.matched)))
        for found in make_snippets(model.snippets, rows, texts, marked.wanted, chars)
    ]


def _snippet_html(model: Model, rows: Sequence[int], texts: Sequence[str], marked: _Marked, chars: int) -> (
    list[str]
):
    """``_snippets``' passages alone, for results that do not list the matched terms (recommendations)."""
    if model.snippets is None or marked.wanted is None:
        return [snippet(model, text, marked.terms, chars)[0] for text in texts]
    return snippet_passages(model.snippets, rows, texts, marked.wanted, chars)


_WORD = re.compile(r"\w[\w-]*")


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    tokens: frozenset[str]


def _word_hits(model: Model, text: str, wanted: set[str]) -> list[_Hit]:
    """Words of ``text`` whose normalised tokens meet ``wanted``.

    Words are found with a regex and normalised one by one through a memo, not by running the tokenizer over
    every result text: snippets were most of a request's time otherwise.
    """
    memo = model.ranking_caches.word_memo()
    hits = []
    for match in _WORD.finditer(text):
        word = match.group()
        toks = memo.get(word)
        if toks is None:
            toks = frozenset(model.preprocessor.tokens(word))
            memo[word] = toks
        if toks and not toks.isdisjoint(wanted):
            hits.append(_Hit(match.start(), match.end(), toks))
    return hits


def snippet(model: Model, text: str, terms: Iterable[str], chars: int) -> tuple[str, tuple[str, ...]]:
    """The passage of ``text`` with most query terms, matches wrapped in <mark>; and the terms matched."""
    wanted = set(terms)
    head = text[: max(chars * 12, 3000)]
    hits = _word_hits(model, head, wanted)
    matched = tuple(sorted({t for s in hits for t in s.tokens if t in wanted}))
    if not hits:
        cut = text[:chars]
        return html.escape(cut + ("…" if len(text) > chars else "")), matched
    # the window start that covers most hits within `chars`
    starts = [s.start for s in hits]
    best_start, best_count = starts[0], 0
    for i, start in enumerate(starts):
        count = sum(1 for s in starts[i:] if s < start + chars)
        if count > best_count:
            best_start, best_count = start, count
    lo = max(0, best_start - chars // 4)
    # begin at a word boundary
    if lo > 0:
        space = head.rfind(" ", 0, lo)
        lo = space + 1 if space >= 0 else lo
    hi = min(len(text), lo + chars)
    out: list[str] = ["…" if lo > 0 else ""]
    pos = lo
    for s in hits:
        if s.start < lo or s.end > hi:
            continue
        out.append(html.escape(text[pos : s.start]))
        out.append(f"<mark>{html.escape(text[s.start : s.end])}</mark>")
        pos = s.end
    out.append(html.escape(text[pos:hi]))
    out.append("…" if hi < len(text) else "")
    return "".join(out), matched
