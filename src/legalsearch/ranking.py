"""Stage at query time: recommendations, hybrid search, related terms, snippets and explanations.

Everything here reads a loaded ``Model``; nothing touches files per request.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

import numpy as np

from legalsearch import budget, relatedness
from legalsearch.citegraph import named_sections
from legalsearch.docstore import FilterValue, check_facets
from legalsearch.docvectors import text_vector
from legalsearch.embeddings import similar_terms as _similar_terms
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError, InvalidRequestError, UnknownDocumentError
from legalsearch.expansion import Neighbours
from legalsearch.feedback import Votes
from legalsearch.index import search_index
from legalsearch.keywords import PHRASE_JOINER
from legalsearch.neighbours import seed_query
from legalsearch.snippets import make_snippets, wanted_ids
from legalsearch.text import split_groups
from legalsearch.types import Keyword, Recommendation, Scalar, SearchHit, SimilarTerm


@dataclass(frozen=True)
class ExpandedTerm:
    """A term added to a query from the word2vec neighbourhood of a query term."""

    term: str
    source: str
    similarity: float
    weight: float


@dataclass(frozen=True)
class RecommendResult:
    """Recommendations, the request ids that were not known, and the model version that answered."""

    results: tuple[Recommendation, ...]
    ignored_ids: tuple[str, ...]
    model: str
    keywords: tuple[Keyword, ...]
    #: per requested facet, (value, count) over the candidates the ranking considered (``recommend``)
    facets: Mapping[str, list[tuple[Scalar, int]]] | None = None


@dataclass(frozen=True)
class SearchResult:
    """Hybrid search results with the query's own and expanded terms."""

    results: tuple[SearchHit, ...]
    query_terms: tuple[str, ...]
    expanded_terms: tuple[ExpandedTerm, ...]
    model: str
    #: per requested facet, (value, count) over every matching document (``Ranking.matched``)
    facets: Mapping[str, list[tuple[Scalar, int]]] | None = None


@dataclass(frozen=True)
class QueryAnalysis:
    """A text as the model sees it: lexical tokens, phrased tokens and TF-IDF keywords."""

    tokens: tuple[str, ...]
    phrased: tuple[str, ...]
    keywords: tuple[Keyword, ...]


def analyze_text(model: Model, text: str) -> QueryAnalysis:
    """Preprocess a text like the corpus; EmptyQueryError when nothing usable is left."""
    if not text or not text.strip():
        raise EmptyQueryError("the text is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from JSON escapes: not text spaCy can tokenize
        raise InvalidRequestError(f"the text is not valid Unicode: {exc.reason} at position {exc.start}") from exc
    with model.preprocessor.transient():
        words, tokens = split_groups(next(model.preprocessor.pipe_grouped([text])))
    budget.check("after preprocessing the text")
    if not tokens:
        raise EmptyQueryError("the text has no usable term: only stopwords, numbers or punctuation")
    phrased = model.phrases.apply(words)
    keywords = model.keyword_model.weigh(phrased)
    return QueryAnalysis(tuple(tokens), tuple(phrased), tuple(keywords))


def _allowed_rows(model: Model, filters: Mapping[str, FilterValue] | None, exclude_rows: Iterable[int]) -> (
    np.ndarray | None
):
    excluded = np.fromiter(exclude_rows, dtype=np.int64)
    if not filters and excluded.size == 0:
        return None
    rows = model.documents.filter_rows(filters) if filters else np.arange(len(model.documents), dtype=np.int64)
    if excluded.size:
        rows = rows[~np.isin(rows, excluded)]
    return rows


def _request_ids(model: Model, request: Mapping[str, float]) -> dict[int, float]:
    """A request's keyword weights keyed by keyword id, the form documents' keywords are stored in."""
    index = model.keyword_model.term_index
    return {i: w for t, w in request.items() if (i := index.get(t)) is not None}


def _explain(model: Model, rows: Sequence[int], request_ids: Mapping[int, float], limit: int = 8) -> (
    list[tuple[Keyword, ...]]
):
    """Per row, the keywords the document shares with the request, weighted by both sides, best first."""
    found = model.doc_keywords.rows(rows)
    vocabulary = model.keyword_model.vocabulary
    terms, weights, bounds = found.terms, found.weights, found.bounds
    request = request_ids.get
    out: list[tuple[Keyword, ...]] = []
    for r in range(len(rows)):
        lo, hi = bounds[r], bounds[r + 1]
        # a document's keywords are distinct, so one lookup each finds the shared ones: a dict per row and a set
        # intersection with the request cost three times as much for the ~20 keywords of a document
        shared = []
        for t, w in zip(terms[lo:hi], weights[lo:hi], strict=True):
            q = request(t)
            if q is not None:
                shared.append((round(w * q, 6), vocabulary[t]))
        if len(shared) > 1:  # a document shares ~3.5 of its ~18 keywords with a seed: often one or none
            shared.sort(key=lambda wt: (-wt[0], wt[1]))
        # Keywords only for those returned: a frozen dataclass costs a microsecond to build
        out.append(tuple([Keyword(t, w) for w, t in shared[:limit]]))
    return out


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


#: per model: a keyword id's lexical parts (id, part), as _marked finds them for the keyword's string
_KEYWORD_PARTS: WeakKeyDictionary[Model, dict[int, tuple[tuple[int, str], ...]]] = WeakKeyDictionary()


def _marked_keywords(model: Model, keyword_ids: Iterable[int]) -> _Marked:
    """``_marked`` for keywords given by id (a seed document's): each keyword's split into lexical terms is
    looked up once per model instead of once per request (the memo holds at most the keyword vocabulary)."""
    vocabulary = model.keyword_model.vocabulary
    if model.snippets is None:
        return _marked(model, (p for k in keyword_ids for p in vocabulary[k].split(PHRASE_JOINER)))
    memo = _KEYWORD_PARTS.get(model)
    if memo is None:
        memo = _KEYWORD_PARTS[model] = {}
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


_WORD = re.compile(r"\w[\w-]*")
_WORD_TOKENS: WeakKeyDictionary[object, dict[str, frozenset[str]]] = WeakKeyDictionary()
_WORD_MEMO_LIMIT = 200_000


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
    memo = _WORD_TOKENS.get(model.preprocessor)
    if memo is None or len(memo) > _WORD_MEMO_LIMIT:
        memo = {}
        _WORD_TOKENS[model.preprocessor] = memo
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


def _collapse(model: Model, rows: Sequence[int]) -> list[int]:
    """Keep the first of each group of near-identical texts (same fingerprint, see docstore)."""
    seen: set[int] = set()
    kept: list[int] = []
    for row, fingerprint in zip(rows, model.documents.text_hashes[rows].tolist(), strict=True):
        if fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(row)
    return kept


def recommend(
    model: Model,
    positive: Sequence[str] = (),
    negative: Sequence[str] = (),
    text: str | None = None,
    keywords: Sequence[str] = (),
    k: int = 10,
    offset: int = 0,
    filters: Mapping[str, FilterValue] | None = None,
    exclude: Sequence[str] = (),
    collapse: bool = True,
    facets: Sequence[str] = (),
    facet_limit: int = 20,
    fused: bool = True,
) -> RecommendResult:
    """Documents related to seed documents, a text, or keywords; seeds and excluded ids never come back.

    Seed documents are ranked by the model's fusion of relatedness signals (``relatedness``) when it has one
    and ``fused`` is true; by word2vec similarity alone otherwise. A text or keywords are ranked as ``search``
    ranks that query (``_recommend_by_query``). ``facets`` are counted over the candidates the ranking fetched
    for seed documents, over every matching document for a text or keywords (see docs/api.md), after the
    filters, without seeds and excluded ids."""
    if k < 1 or offset < 0:
        raise InvalidRequestError("k must be at least 1 and offset at least 0")
    check_facets(facets)
    given = bool(positive) + (text is not None) + bool(keywords)
    if given != 1:
        raise InvalidRequestError("give exactly one of: positive document ids, text, keywords")
    if not positive:
        query_text = text if text is not None else " ".join(t.replace(PHRASE_JOINER, " ") for t in keywords)
        return _recommend_by_query(model, query_text, k, offset, filters, exclude, collapse, facets, facet_limit)
    pos_rows = [model.index.rows[i] for i in positive if i in model.index.rows]
    neg_rows = [model.index.rows[i] for i in negative if i in model.index.rows]
    ignored = [i for i in [*positive, *negative] if i not in model.index.rows]
    if not pos_rows:
        raise UnknownDocumentError(list(positive))
    seed_rows = pos_rows + neg_rows
    # the very query the neighbour table was searched with at training time
    query = seed_query(model.docvectors, pos_rows, neg_rows)
    seeds = model.doc_keywords.rows(pos_rows)
    vocabulary = model.keyword_model.vocabulary
    # kept by keyword id too: explanations and marked snippet terms look the request up by id
    request_ids: dict[int, float] = {}
    for t, w in zip(seeds.terms, seeds.weights, strict=True):
        request_ids[t] = request_ids.get(t, 0.0) + w / len(pos_rows)
    request = {vocabulary[t]: w for t, w in request_ids.items()}
    marked = _marked_keywords(model, request_ids)
    if not query.any():
        raise EmptyQueryError("none of the request's terms is known to the model")
    exclude_rows = set(seed_rows) | {model.index.rows[i] for i in exclude if i in model.index.rows}
    # exclusions are dropped after the search (it over-fetches by their number): an allow-list of all other
    # rows would cost more than the search itself
    allowed = _allowed_rows(model, filters, exclude_rows) if filters else None
    if allowed is not None and allowed.size == 0:
        return RecommendResult((), tuple(ignored), model.version, (),
                               _facets(model, facets, np.zeros(0, dtype=np.int64), facet_limit))
    req = _Request(pos_rows, neg_rows, exclude_rows, request, request_ids, marked, tuple(ignored))
    if fused and model.fusion is not None:
        return _recommend_fused(model, req, offset, k, allowed, collapse, facets, facet_limit)
    return _recommend_by_vector(model, req, query, offset, k, allowed, collapse, facets, facet_limit)


def _recommend_by_vector(model: Model, req: _Request, query: np.ndarray, offset: int, k: int,
                         allowed: np.ndarray | None, collapse: bool, facets: Sequence[str], facet_limit: int) -> (
    RecommendResult
):
    """Seed documents' recommendations by word2vec similarity alone (models without a fitted fusion)."""
    want = offset + k
    exclude_rows = req.exclude
    fetch = want * 2 + len(exclude_rows) + 10
    table = model.neighbours
    if (table is not None and len(req.positive) == 1 and not req.negative and allowed is None
            and fetch <= table.width):
        # one seed, no filter: the search this request would make was made at training time
        hits = table.hits(req.positive[0], fetch)
    else:
        hits = search_index(model.index, query[None, :], fetch, allowed_rows=allowed)
    hit_rows: list[int] = hits.rows[0].tolist()
    rows = [r for r in hit_rows if r >= 0 and r not in exclude_rows]
    scores = dict(zip(hit_rows, hits.scores[0].tolist(), strict=True))
    if collapse:
        rows = _collapse(model, rows)
    counted = _facets(model, facets, np.asarray(rows, dtype=np.int64), facet_limit)
    page = rows[offset:want]
    chars = model.config.search.snippet_chars
    # records, not Documents: a frozen dataclass per result is a cost for nothing here
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippets(model, page, [r["text"] for r in records], req.marked, chars)
    # the reasons the other signals give, though they did not rank: the evidence of the page's rows alone
    found = relatedness.page_evidence(model, req.positive, page, ("structure", "citations", "feedback"))
    features = relatedness.features_of(model, req.positive, np.asarray(page, dtype=np.int64), found)
    results = [
        Recommendation(
            doc_id=r["id"], score=round(scores[row], 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip.html, keywords=explained,
            reasons=tuple(relatedness.reasons(model, req.positive, row, x, found)),
            signals={"word2vec": round(scores[row], 6)},
        )
        for row, r, snip, explained, x in zip(page, records, snippets, _explain(model, page, req.keyword_ids),
                                               features, strict=True)
    ]
    return RecommendResult(tuple(results), req.ignored, model.version, _request_keywords(req.keywords), counted)


def _recommend_by_query(model: Model, query: str, k: int, offset: int, filters: Mapping[str, FilterValue] | None,
                        exclude: Sequence[str], collapse: bool, facets: Sequence[str], facet_limit: int) -> (
    RecommendResult
):
    """Recommendations for a text or keywords: the ranking ``search`` serves for that query (``rank``: the same
    candidates, expansions, fusion and named sections first), without the excluded ids, near-duplicates
    collapsed, explained as search explains its hits (shared keywords, each signal's part, the naming citation).
    Facets count every document the query matches within the filters, as search's do, less the excluded ids."""
    exclude_rows = {model.index.rows[i] for i in exclude if i in model.index.rows}
    want = offset + k
    # over-fetched by what exclusions and collapsing may drop, as for seed documents; up to the search's
    # candidate pool (200 by default) the order of the rows does not depend on how many are fetched
    ranked = rank(model, query, want * 2 + len(exclude_rows) + 10, filters, matched=bool(facets))
    if ranked.rows.size == 0 and not ranked.marks:
        raise EmptyQueryError("none of the request's terms is known to the model")
    at = {row: i for i, row in enumerate(ranked.rows.tolist())}
    rows = [row for row in at if row not in exclude_rows]
    if collapse:
        rows = _collapse(model, rows)
    counted = None
    if ranked.matched is not None:
        matched = ranked.matched
        if exclude_rows:
            matched = matched.copy()
            matched[np.fromiter(exclude_rows, dtype=np.int64)] = False
        counted = _facets(model, facets, matched, facet_limit)
    page = rows[offset:want]
    request = {kw.term: kw.weight for kw in ranked.analysis.keywords}
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippets(model, page, [r["text"] for r in records], _ranking_marked(model, ranked),
                         model.config.search.snippet_chars)
    results = [
        Recommendation(
            doc_id=r["id"], score=round(float(ranked.scores[at[row]]), 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip.html, keywords=explained,
            reasons=(f"named in the request: {ranked.named[row]}",) if row in ranked.named else (),
            signals={name: round(float(part[at[row]]), 6) for name, part in ranked.parts.items()},
        )
        for row, r, snip, explained in zip(page, records, snippets,
                                           _explain(model, page, _request_ids(model, request)), strict=True)
    ]
    return RecommendResult(tuple(results), (), model.version, _request_keywords(request), counted)


def _fused_parts(model: Model, fusion: relatedness.Fusion, seeds: Sequence[int], page: Sequence[int],
                 found: relatedness.Evidence, related: relatedness.Related | None) -> (
    tuple[np.ndarray, list[dict[str, float]]]
):
    """The page's features and each signal's part of its scores; from the precomputed table (``related`` None)
    the features of the page alone are computed."""
    if related is not None:
        at = {r: i for i, r in enumerate(related.rows.tolist())}
        features = related.features[[at[r] for r in page]] if page else related.features[:0]
        return features, relatedness.contributions(fusion, features)
    if "lexical" in fusion.signals:
        relatedness.mlt_scores(model, found, seeds)
    features = relatedness.features_of(model, seeds, np.asarray(page, dtype=np.int64), found)
    return features, relatedness.contributions(fusion, features)


def _request_keywords(request: Mapping[str, float]) -> tuple[Keyword, ...]:
    return tuple(Keyword(t, w) for t, w in sorted(request.items(), key=lambda tw: (-tw[1], tw[0]))[:20])


@dataclass(frozen=True)
class _Request:
    """A recommendation request by seed documents, resolved to rows and keyword weights."""

    positive: list[int]
    negative: list[int]
    exclude: set[int]
    keywords: dict[str, float]
    keyword_ids: dict[int, float]
    marked: _Marked
    ignored: tuple[str, ...]


def _recommend_fused(model: Model, req: _Request, offset: int, k: int, allowed: np.ndarray | None,
                     collapse: bool, facets: Sequence[str], facet_limit: int) -> RecommendResult:
    """Seed documents' recommendations by the fusion of relatedness signals (``relatedness``).

    One seed without filter or negative ids reads its ranking from the table precomputed at training time
    (``legalsearch fit-recommend``) when it is deep enough; everything else ranks the candidates now."""
    fusion = model.fusion
    assert fusion is not None
    want = offset + k
    table = model.related
    fetch = want * 2 + len(req.exclude) + 10
    if (table is not None and len(req.positive) == 1 and not req.negative and allowed is None
            and fetch <= table.width):
        hits = table.hits(req.positive[0], fetch)
        ranked = [(r, s) for r, s in zip(hits.rows[0].tolist(), hits.scores[0].tolist(), strict=True)
                  if r >= 0 and r not in req.exclude]
        rows = [r for r, _ in ranked]
        scores = dict(ranked)
        found = None
        related = None
    else:
        related, found = relatedness.rank_related(model, fusion, req.positive, req.negative, allowed,
                                                  req.exclude)
        budget.check("after ranking the related documents")
        rows = related.rows.tolist()
        scores = dict(zip(rows, related.scores.tolist(), strict=True))
    if collapse:
        rows = _collapse(model, rows)
    counted = _facets(model, facets, np.asarray(rows, dtype=np.int64), facet_limit)
    page = rows[offset:want]
    if found is None:  # the evidence of the page's rows alone: what its explanations need
        found = relatedness.page_evidence(model, req.positive, page, fusion.signals)
    features, parts = _fused_parts(model, fusion, req.positive, page, found, related)
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippets(model, page, [r["text"] for r in records], req.marked, model.config.search.snippet_chars)
    results = [
        Recommendation(
            doc_id=r["id"], score=round(scores[row], 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip.html, keywords=explained,
            reasons=tuple(relatedness.reasons(model, req.positive, row, x, found)), signals=signal_parts,
        )
        for row, r, snip, explained, x, signal_parts in zip(
            page, records, snippets, _explain(model, page, req.keyword_ids), features, parts, strict=True)
    ]
    return RecommendResult(tuple(results), req.ignored, model.version, _request_keywords(req.keywords), counted)


def _facets(model: Model, names: Sequence[str], rows: np.ndarray, limit: int) -> (
    dict[str, list[tuple[Scalar, int]]] | None
):
    """Facet counts over ``rows``; None when no facet was asked for (the answer then has no ``facets``)."""
    return model.documents.facets(names, rows, limit) if names else None


def warm_up(model: Model) -> None:
    """Build the per-model caches the hot path uses, so that the first request is not slow."""
    model.expansions.candidates()
    _ = model.keyword_terms
    _ = model.suggestions


@dataclass(frozen=True)
class _Candidate:
    """An expansion of one query term that passed the filters depending only on the model, with the parts of
    it that may join the lexical query (in enough documents, not in too many) and the parts snippets mark,
    each with its lexical term id."""

    expanded: ExpandedTerm
    parts: tuple[tuple[int, str], ...]
    marks: tuple[tuple[int, str], ...]


#: per model, each query term's expansion candidates: the table lookups, similarity threshold and document
#: frequency checks were ~15% of a search and depend on nothing but the term
_EXPANSIONS: WeakKeyDictionary[Model, dict[str, tuple[_Candidate, ...]]] = WeakKeyDictionary()
_EXPANSION_MEMO_LIMIT = 200_000


def _candidates(model: Model, term: str, found: Neighbours) -> tuple[_Candidate, ...]:
    cfg = model.config.search
    words = model.vectors.index_to_key
    max_df = cfg.expansion_max_df * model.lexical.n_docs
    vocab = model.lexical.vocab
    out: list[_Candidate] = []
    taken = 0
    # one spare neighbour per term, since a term is its own nearest neighbour
    for row, sim in zip(found.rows[: cfg.expansion_width].tolist(),
                        found.similarities[: cfg.expansion_width].tolist(), strict=True):
        if row < 0:
            break
        word = words[row]
        if word == term:
            continue
        if taken >= cfg.expansion_terms:
            break
        taken += 1
        if not sim >= cfg.expansion_min_similarity:  # NaN too: an expanded term's figures are finite
            continue
        marks = tuple((i, p) for p in word.split(PHRASE_JOINER) if (i := vocab.get(p)) is not None)
        # very common expansions (e.g. 'vertrag') add noise to every candidate, not recall
        parts = tuple((i, p) for i, p in marks if 0 < model.lexical.document_frequency(p) <= max_df)
        expanded = ExpandedTerm(word, term, round(sim, 4), round(cfg.expansion_weight * sim, 4))
        out.append(_Candidate(expanded, parts, marks))
    return tuple(out)


def _associated(model: Model, term: str) -> tuple[_Candidate, ...]:
    """A query term's associated keywords of a feedback model (``associations.py``; similarity: their NPMI,
    weight: ``[feedback] association_weight`` x NPMI); none without associations."""
    fb = model.feedback
    if fb is None or fb.associations is None:
        return ()
    weight = model.config.feedback.association_weight
    max_df = model.config.search.expansion_max_df * model.lexical.n_docs
    vocab = model.lexical.vocab
    out = []
    for a in fb.associations.of(term):
        marks = tuple((i, p) for p in a.term.split(PHRASE_JOINER) if (i := vocab.get(p)) is not None)
        parts = tuple((i, p) for i, p in marks if 0 < model.lexical.document_frequency(p) <= max_df)
        out.append(_Candidate(ExpandedTerm(a.term, term, a.npmi, round(weight * a.npmi, 4)), parts, marks))
    return tuple(out)


def _expand(model: Model, terms: Sequence[str]) -> list[_Candidate]:
    """Related terms for query terms, weighted by similarity, restricted to the keyword vocabulary, with each
    expansion's lexical parts. Neighbours come from the model's expansion table (computed at training time for
    frequent words)."""
    if model.config.search.expansion_terms <= 0:
        return []
    kv = model.vectors
    assoc = model.feedback.associations if model.feedback is not None else None
    sources = [t for t in dict.fromkeys(terms) if t in kv.key_to_index or (assoc is not None and t in assoc)]
    if not sources:
        return []
    memo = _EXPANSIONS.get(model)
    if memo is None or len(memo) > _EXPANSION_MEMO_LIMIT:
        memo = {}
        _EXPANSIONS[model] = memo
    if any(t not in memo for t in sources):
        # all sources in one call, as before the memo: rarer words' neighbours are computed per batch
        embedded = [t for t in sources if t in kv.key_to_index]
        found = dict(zip(embedded, model.expansions.neighbours([kv.key_to_index[t] for t in embedded]),
                         strict=True))
        for term in sources:
            if term not in memo:
                # a feedback model's lay -> legal associations come first, then the word2vec neighbours
                memo[term] = _associated(model, term) + (_candidates(model, term, found[term]) if term in found
                                                         else ())
    seen = set(terms)
    out: list[_Candidate] = []
    for term in sources:
        for candidate in memo[term]:
            word = candidate.expanded.term
            if word not in seen:
                seen.add(word)
                out.append(candidate)
    return out


def query_term_weights(tokens: Sequence[str], scheme: str) -> dict[str, float]:
    """Lexical weight per distinct query token for n occurrences: n ("count"), 1 ("once") or sqrt(n) ("sqrt")."""
    counts: dict[str, int] = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    if scheme == "count":
        return {t: float(n) for t, n in counts.items()}
    if scheme == "once":
        return dict.fromkeys(counts, 1.0)
    if scheme == "sqrt":
        return {t: math.sqrt(n) for t, n in counts.items()}
    raise InvalidRequestError(f"unknown query term weighting {scheme!r}")


def _zscore(values: np.ndarray) -> np.ndarray:
    # numpy's mean and std, spelled out: the same float64 operations in the same order (bit-identical), without
    # the keyword handling that made them a tenth of the fusion's cost
    n = values.size
    mean = float(np.add.reduce(values)) / n
    centred = values - mean
    std = math.sqrt(float(np.add.reduce(centred * centred)) / n)
    return centred / std if std > 0 else np.zeros_like(values)


def _union(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The sorted distinct rows of ``parts`` (what np.unique gives, whose hashing is slower for a few hundred)."""
    rows = np.sort(np.concatenate(parts))
    return rows[np.concatenate(([True], rows[1:] != rows[:-1]))] if rows.size else rows


#: every this many rows one goes into the sample that estimates the score threshold of a lexical top list
_SAMPLE_STEP = 16


def _top_rows(scores: np.ndarray, pool: int) -> np.ndarray:
    """The rows of the ``pool`` best positive scores: the set an argpartition over all rows picks.

    A question's scores are positive for half the corpus; partitioning all of them (and negating the array
    first) was ~10% of a search. Instead a threshold from a sample of every 16th row leaves a few hundred
    candidates. Where rows tied at the cut would make the choice among them arbitrary, the full argpartition
    decides, as before.
    """
    n = scores.shape[0]
    sample = scores[::_SAMPLE_STEP]
    # twice the share of the pool in the sample: usually ~2 * pool rows score at least that
    want = 2 * pool // _SAMPLE_STEP + 1
    if pool < n and want < sample.size:
        threshold = float(np.partition(sample, sample.size - want)[sample.size - want])
        if threshold > 0:
            candidates = np.flatnonzero(scores >= threshold)
            if candidates.size >= pool:
                values = scores[candidates]
                best = np.argpartition(-values, pool - 1)[:pool]
                cut = values[best].min()
                if np.count_nonzero(values == cut) == np.count_nonzero(values[best] == cut):
                    return candidates[best].astype(np.int64)
    top = np.argpartition(-scores, min(pool, n - 1))[:pool]
    top_scores = scores[top]
    return top[np.isfinite(top_scores) & (top_scores > 0)].astype(np.int64)


@dataclass(frozen=True)
class Ranking:
    """Ranked rows of one query before hits are built: fused, lexical and embedding scores per row."""

    rows: np.ndarray
    scores: np.ndarray
    lexical: np.ndarray
    embedding: np.ndarray
    analysis: QueryAnalysis
    expanded_terms: tuple[ExpandedTerm, ...]
    #: lexical term id -> term of the query's tokens and expansions: what snippets mark
    marks: Mapping[int, str] = field(default_factory=dict)
    #: with ``rank(matched=True)``: every row the query matches within the filters, as a mask over the model's rows
    #: (what facets count)
    matched: np.ndarray | None = None
    #: row -> the citation in the query that names it ("§ 573 BGB"); these rows are ranked first
    named: Mapping[int, str] = field(default_factory=dict)
    #: per signal ("lexical", "word2vec"), its part of each row's score: the parts sum to ``scores``
    parts: Mapping[str, np.ndarray] = field(default_factory=dict)


#: modes of ``rank``: the served hybrid and each side alone; for a model trained with feedback also each feedback
#: signal alone and the hybrid without each of them (``legalsearch eval``'s ablations)
MODES = ("hybrid", "lexical", "embedding")
FEEDBACK_MODES = ("votes", "prior", "hybrid-without-votes", "hybrid-without-prior", "hybrid-without-feedback")
#: the feedback signals (``feedback.SIGNALS``) each mode uses; modes not named use none
_MODE_SIGNALS: dict[str, tuple[str, ...]] = {
    "hybrid": ("votes", "prior"), "hybrid-without-votes": ("prior",), "hybrid-without-prior": ("votes",),
    "votes": ("votes",), "prior": ("prior",),
}


@dataclass(frozen=True)
class Scored:
    """One query's candidate rows (sorted) with the parts of their score, before a mode's weights join them:
    ``parts`` are the score without feedback by signal ("lexical", "word2vec": what ``mode`` gives a model
    trained without it); ``votes`` and ``prior`` the feedback signals per row (None when the mode uses none);
    ``first`` the order of named rows."""

    rows: np.ndarray
    lex: np.ndarray
    emb: np.ndarray
    parts: Mapping[str, np.ndarray]
    votes: np.ndarray | None
    prior: np.ndarray | None
    first: np.ndarray
    lex_ranked: np.ndarray
    named: Mapping[int, str]

    @property
    def base(self) -> np.ndarray:
        """The score without feedback: the sum of ``parts``."""
        return _sum(self.parts)


def _sum(parts: Mapping[str, np.ndarray]) -> np.ndarray:
    values = list(parts.values())
    total = values[0]
    for part in values[1:]:
        total = total + part
    return total


def rank(
    model: Model,
    query: str,
    k: int = 10,
    filters: Mapping[str, FilterValue] | None = None,
    expand: bool = True,
    mode: str = "hybrid",
    matched: bool = False,
) -> Ranking:
    """The best ``k`` rows for a query (score desc, then row), as ``search`` serves them, without snippets.

    With ``matched``, also every row the query matches within the filters: a positive lexical score for the
    analysed query (its terms and expansions), or among the embedding candidates fused with the lexical ones.
    A model trained with feedback adds its signals to the hybrid with the weights fitted at training."""
    if k < 1:
        raise InvalidRequestError("k must be at least 1")
    if mode not in MODES and not (mode in FEEDBACK_MODES and model.feedback is not None):
        known = MODES + (FEEDBACK_MODES if model.feedback is not None else ())
        raise InvalidRequestError(f"unknown search mode {mode!r} for this model; known: {', '.join(known)}")
    analysis = analyze_text(model, query)
    lex_terms, marks, expanded = lexical_query(model, analysis, expand)
    scored = score_candidates(model, analysis, query, lex_terms, k, filters, mode)
    if scored is None:
        empty = np.zeros(0, dtype=np.float64)
        return Ranking(np.zeros(0, dtype=np.int64), empty, empty, empty, analysis, expanded, marks,
                       np.zeros(len(model.documents), dtype=np.bool_) if matched else None)
    parts = fuse(model, scored, mode)
    fused = _sum(parts)
    order = np.lexsort((scored.rows, -fused, scored.first))[:k]
    rows = scored.rows
    return Ranking(rows[order], fused[order], scored.lex[order], scored.emb[order], analysis, expanded, marks,
                   _matched_rows(scored.lex_ranked, rows) if matched else None, scored.named,
                   {name: part[order] for name, part in parts.items()})


def lexical_query(model: Model, analysis: QueryAnalysis, expand: bool = True) -> (
    tuple[dict[int, float], dict[int, str], tuple[ExpandedTerm, ...]]
):
    """The lexical query by term id (query tokens, then the expansions' parts), the terms to mark by id (the
    expansions' ids are memoised with them), and the expanded terms."""
    candidates = _expand(model, analysis.phrased) if expand else []
    budget.check("after expanding the query")
    vocab = model.lexical.vocab
    lex_terms: dict[int, float] = {}
    marks: dict[int, str] = {}
    for t, w in query_term_weights(analysis.tokens, model.config.search.query_term_weighting).items():
        if (i := vocab.get(t)) is not None:
            lex_terms[i] = w
            marks[i] = t
    for c in candidates:
        for i, _ in c.parts:
            if i not in lex_terms:
                lex_terms[i] = c.expanded.weight
        marks.update(c.marks)
    return lex_terms, marks, tuple(c.expanded for c in candidates)


def fuse(model: Model, scored: Scored, mode: str) -> dict[str, np.ndarray]:
    """The parts of every candidate's score in ``mode`` (they sum to the score): ``scored.parts``, plus the
    feedback signals with the weights fitted for the mode (``feedback.SearchFusion``); or one signal alone."""
    if mode == "votes" and scored.votes is not None:
        return {"votes": scored.votes}
    if mode == "prior" and scored.prior is not None:
        return {"prior": scored.prior}
    parts = dict(scored.parts)
    if model.feedback is None or mode not in model.feedback.fusion.variants:
        return parts
    weights = model.feedback.fusion.variants[mode]
    if scored.votes is not None and weights.votes:
        parts["votes"] = weights.votes * scored.votes
    if scored.prior is not None and weights.prior:
        parts["prior"] = weights.prior * scored.prior
    return parts


def score_candidates(
    model: Model,
    analysis: QueryAnalysis,
    query: str,
    lex_terms: Mapping[int, float],
    k: int,
    filters: Mapping[str, FilterValue] | None,
    mode: str,
    exclude_questions: Sequence[int] = (),
) -> Scored | None:
    """The candidates of an analysed query and their score parts (``Scored``); None when there are none.

    ``exclude_questions``: feedback questions whose votes are left out (training fits the fusion weights on each
    feedback question ranked with the votes of all the others)."""
    cfg = model.config.search
    signals = _MODE_SIGNALS.get(mode, ()) if model.feedback is not None else ()
    lexical_side = mode not in ("embedding", "votes", "prior")
    allowed = _allowed_rows(model, filters, ())
    if allowed is not None and allowed.size == 0:
        return None
    pool = min(len(model.documents), max(cfg.candidates, k))
    lex_scores, lex_scores_ranked = _lexical_scores(model, analysis, lex_terms, allowed, lexical_side)
    found: list[np.ndarray] = [_top_rows(lex_scores_ranked, pool)] if lexical_side else []
    # expansions stay out of the query vector: on the tune half they did not help the embedding side
    qvec = text_vector({kw.term: kw.weight for kw in analysis.keywords}, model.vectors)
    if mode not in ("lexical", "votes", "prior") and float(np.linalg.norm(qvec)) > 0:
        # only the set of rows matters here: _union sorts them
        hits = search_index(model.index, qvec[None, :], min(pool, max(cfg.embedding_candidates, k)),
                            allowed_rows=allowed, ordered=False)
        found.append(hits.rows[0][hits.rows[0] >= 0].astype(np.int64))
    named = _named_rows(model, query, allowed)
    if named:
        found.append(np.fromiter(named, dtype=np.int64))
    votes = _feedback_votes(model, analysis, qvec, allowed, exclude_questions) if signals else None
    if votes is not None:
        found.extend([votes.rows] if "votes" in signals else [])
        found.extend([votes.popular] if "prior" in signals else [])
    budget.check("after retrieving candidates")
    rows = _union(found) if found else np.zeros(0, dtype=np.int64)
    if rows.size == 0:
        return None
    lex = lex_scores[rows].astype(np.float64)
    emb = (np.asarray(model.docvectors[rows], dtype=np.float32) @ qvec).astype(np.float64)
    # the sections the query names come first, in the query's order; then the score decides
    first = np.full(rows.size, len(named), dtype=np.int64)
    for place, row in enumerate(named):
        first[np.searchsorted(rows, row)] = place
    voted = votes.at(rows) if votes is not None and "votes" in signals else None
    fb = model.feedback
    prior = np.asarray(fb.prior[rows], dtype=np.float64) if fb is not None and "prior" in signals else None
    return Scored(rows, lex, emb, _score_parts(model, mode, lex, emb), voted, prior, first, lex_scores_ranked,
                  named)


def _lexical_scores(model: Model, analysis: QueryAnalysis, lex_terms: Mapping[int, float],
                    allowed: np.ndarray | None, lexical_side: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every row's lexical score (zeros without the lexical side), and the same with -inf outside ``allowed``
    (what the lexical candidates and the matched rows are taken from)."""
    n = len(model.documents)
    lex_scores = (model.lexical.scores_of_ids(lex_terms, _token_counts(model, analysis)) if lexical_side
                  else np.zeros(n, np.float32))
    if allowed is None:
        return lex_scores, lex_scores
    masked = np.full(n, -np.inf, dtype=np.float32)
    masked[allowed] = lex_scores[allowed]
    return lex_scores, masked


def _score_parts(model: Model, mode: str, lex: np.ndarray, emb: np.ndarray) -> dict[str, np.ndarray]:
    """The candidates' score without feedback by signal: one side alone, or both z-scored and weighted."""
    if mode == "lexical":
        return {"lexical": lex}
    if mode == "embedding":
        return {"word2vec": emb}
    cfg = model.config.search
    return {"lexical": cfg.lexical_weight * _zscore(lex), "word2vec": cfg.embedding_weight * _zscore(emb)}


def _token_counts(model: Model, analysis: QueryAnalysis) -> dict[int, int] | None:
    """The query tokens' counts by lexical id, for an index whose profiles weigh them otherwise (else None)."""
    if not model.lexical.reweights:
        return None
    vocab = model.lexical.vocab
    counts: dict[int, int] = {}
    for t in analysis.tokens:
        if (i := vocab.get(t)) is not None:
            counts[i] = counts.get(i, 0) + 1
    return counts


def _feedback_votes(model: Model, analysis: QueryAnalysis, qvec: np.ndarray, allowed: np.ndarray | None,
                    exclude_questions: Sequence[int]) -> Votes | None:
    """The feedback questions' votes for a query (``feedback.FeedbackIndex.votes``)."""
    fb = model.feedback
    if fb is None:
        return None
    cfg = model.config.feedback
    terms = query_term_weights(analysis.tokens, model.config.search.query_term_weighting)
    sims = fb.similarities(terms, qvec, cfg.word2vec_weight)  # text_vector's query is a unit vector already
    return fb.votes(sims, cfg.neighbours, allowed, cfg.prior_candidates, exclude_questions)


def _matched_rows(lex_scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The mask of rows with a positive lexical score (-inf outside the filters) or among the fused candidates."""
    # a mask, not a union of sorted arrays: half the corpus may match a question, and sorting that cost more; nor
    # the rows of the mask: facets count a mask by runs of rows faster than they gather tens of thousands of rows
    mask = lex_scores > 0
    mask[candidates] = True
    return mask


def _named_rows(model: Model, query: str, allowed: np.ndarray | None) -> dict[int, str]:
    """The sections the query cites that the filters let through."""
    named = named_sections(model, query)
    if named and allowed is not None:
        keep = np.isin(np.fromiter(named, dtype=np.int64), allowed)
        named = {row: cite for (row, cite), ok in zip(named.items(), keep.tolist(), strict=True) if ok}
    return named


def _ranking_marked(model: Model, ranked: Ranking) -> _Marked:
    """The terms a query's snippets mark: its tokens and expanded terms."""
    if model.snippets is None:  # a model from before the snippet index: snippets match the terms' strings
        expanded = ranked.expanded_terms
        return _marked(model, {*ranked.analysis.tokens, *(p for e in expanded for p in e.term.split(PHRASE_JOINER))})
    return _marked_ids(ranked.marks)


def search(
    model: Model,
    query: str,
    k: int = 10,
    offset: int = 0,
    filters: Mapping[str, FilterValue] | None = None,
    expand: bool = True,
    mode: str = "hybrid",
    facets: Sequence[str] = (),
    facet_limit: int = 20,
) -> SearchResult:
    """Hybrid retrieval: BM25 over expanded query terms fused with embedding similarity.

    ``facets`` are counted over every document the query matches within the filters (``rank``'s ``matched``)."""
    if k < 1 or offset < 0:
        raise InvalidRequestError("k must be at least 1 and offset at least 0")
    check_facets(facets)
    cfg = model.config.search
    ranked = rank(model, query, offset + k, filters, expand, mode, matched=bool(facets))
    analysis, expanded = ranked.analysis, ranked.expanded_terms
    marked_terms = _ranking_marked(model, ranked)
    request_ids = _request_ids(model, {kw.term: kw.weight for kw in analysis.keywords})
    page = ranked.rows[offset:].tolist()
    budget.check("before the snippets")
    records = [model.documents.record(row) for row in page]
    snippets = _snippets(model, page, [r["text"] for r in records], marked_terms, cfg.snippet_chars)
    hits_out = tuple(
        SearchHit(
            doc_id=r["id"], score=round(score, 6), title=r["title"], type=r["type"],
            metadata=r["metadata"], snippet=snip.html, matched_terms=snip.matched,
            lexical_score=round(lexical, 6), embedding_score=round(embedding, 6), keywords=explained,
            cited_in_query=ranked.named.get(row),
        )
        for row, r, snip, explained, score, lexical, embedding in zip(
            page, records, snippets, _explain(model, page, request_ids), ranked.scores[offset:].tolist(),
            ranked.lexical[offset:].tolist(), ranked.embedding[offset:].tolist(), strict=True,
        )
    )
    counted = _facets(model, facets, ranked.matched, facet_limit) if ranked.matched is not None else None
    return SearchResult(hits_out, analysis.tokens, expanded, model.version, counted)


def similar_terms(model: Model, term: str, k: int = 10, intersection: bool = False) -> list[SimilarTerm]:
    """Related terms from the keyword vocabulary (a multiword term may be given with spaces or '_').

    With ``intersection``, only neighbours that the main model and every seed variant agree on are kept
    (the model must have been trained with ``word2vec.intersection_models`` > 0)."""
    words = split_groups(next(model.preprocessor.pipe_grouped([term])))[0]
    if not words:
        raise EmptyQueryError(f"{term!r} has no usable term after preprocessing")
    key = PHRASE_JOINER.join(words)
    if key not in model.vectors.key_to_index:
        literal = re.sub(r"\s+", PHRASE_JOINER, term.strip().lower())
        key = literal if literal in model.vectors.key_to_index else key
    if intersection:
        if not model.thesaurus:
            raise InvalidRequestError(
                "this model has no seed variants for the intersection method: train it with "
                "[word2vec] intersection_models > 0"
            )
        found = _similar_terms([model.vectors, *model.thesaurus], key, k, allowed=model.keyword_terms)
    else:
        first = _associated_first(model, key, k)
        if first is not None:
            return first
        found = _similar_terms(model.vectors, key, k, allowed=model.keyword_terms)
    return found


def _associated_first(model: Model, key: str, k: int) -> list[SimilarTerm] | None:
    """A feedback model's associated keywords of ``key`` (score: NPMI), then its word2vec neighbours; None when
    the model has no association for it (the neighbours alone, as before)."""
    fb = model.feedback
    found = fb.associations.of(key) if fb is not None and fb.associations is not None else ()
    if not found:
        return None
    first = [SimilarTerm(a.term, a.npmi) for a in found]
    taken = {s.term for s in first} | {key}
    rest = ([s for s in _similar_terms(model.vectors, key, k + len(first), allowed=model.keyword_terms)
             if s.term not in taken] if key in model.vectors.key_to_index else [])
    return (first + rest)[:k]
