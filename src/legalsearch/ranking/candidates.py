"""Candidate sources of a query (lexical, embedding, named sections, feedback) and their score parts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from legalsearch import budget
from legalsearch.citegraph import named_sections
from legalsearch.docstore import FilterValue
from legalsearch.docvectors import text_vector
from legalsearch.engine import Model
from legalsearch.feedback import Votes
from legalsearch.index import search_index
from legalsearch.ranking.fusion import _MODE_SIGNALS, _score_parts
from legalsearch.ranking.query import query_term_weights
from legalsearch.ranking.results import QueryAnalysis, Scored


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
