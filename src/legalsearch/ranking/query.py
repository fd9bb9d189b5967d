"""Query analysis: a text preprocessed like the corpus, its lexical term weights and expansions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from legalsearch import budget
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError, InvalidRequestError
from legalsearch.expansion import Neighbours
from legalsearch.keywords import PHRASE_JOINER
from legalsearch.ranking.results import ExpandedTerm, QueryAnalysis
from legalsearch.text import split_groups


def analyze_text(model: Model, text: str) -> QueryAnalysis:
    """Preprocess a text like the corpus; EmptyQueryError when nothing usable is left."""
    if not text or not text.strip():
        raise EmptyQueryError("the text is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from JSON escapes: not text spaCy can tokenize
        raise InvalidRequestError(f"the text is not valid Unicode: {exc.reason} at position {exc.start}") from exc
    with model.preprocessor.transient():
        words, tokens = split_groups(model.preprocessor.query_groups(text))
    budget.check("after preprocessing the text")
    if not tokens:
        raise EmptyQueryError("the text has no usable term: only stopwords, numbers or punctuation")
    phrased = model.phrases.apply(words)
    keywords = model.keyword_model.weigh(phrased)
    return QueryAnalysis(tuple(tokens), tuple(phrased), tuple(keywords))


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


@dataclass(frozen=True)
class _Candidate:
    """An expansion of one query term that passed the filters depending only on the model, with the parts of
    it that may join the lexical query (in enough documents, not in too many) and the parts snippets mark,
    each with its lexical term id."""

    expanded: ExpandedTerm
    parts: tuple[tuple[int, str], ...]
    marks: tuple[tuple[int, str], ...]


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
    memo = model.ranking_caches.expansion_memo()
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
