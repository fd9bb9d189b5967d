"""Stage: the feedback artifacts of a model (``feedback.FeedbackIndex``) and the /search fusion weights, fitted at
training on the feedback itself.

``build_feedback`` analyses every feedback question as a query (``ranking.analyze_text``: the representation a
query gets at search time), indexes the questions (BM25 over their tokens, their word2vec query vectors), counts the
prior, and fits the weights of the feedback signals: each of up to ``fit_questions`` questions is ranked by
``ranking.score_candidates`` with the votes of all *other* questions (leave-one-out, so that no question vouches
for itself), and the weights that give the best mean nDCG@10 on them are kept, for the served hybrid and for each
ablation (``feedback.VARIANTS``). It also returns the co-relevance of documents answered together
(``relatedness.CoRelevance``), which ``/recommend``'s fusion reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from legalsearch.associations import Associations, learn_associations
from legalsearch.config import FeedbackConfig, LexicalConfig
from legalsearch.corpus.report import IngestReport
from legalsearch.docstore import FilterValue
from legalsearch.docvectors import text_vector
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError
from legalsearch.feedback import (
    POPULAR_LIMIT,
    VARIANTS,
    FeedbackIndex,
    FeedbackQuestion,
    SearchFusion,
    Weights,
    key_digest,
    prior_of,
    vote_weights,
)
from legalsearch.lexical import build_lexical_index
from legalsearch.ranking import QueryAnalysis, analyze_text, lexical_query, score_candidates
from legalsearch.relatedness import CoRelevance

log = logging.getLogger(__name__)

#: the depth of the measure the weights are chosen by (nDCG@10, the project's headline measure)
DEPTH = 10
#: vote weights tried (0, then 0.25 to 64 in steps of sqrt(2)) and prior weights tried
VOTE_GRID = (0.0, *(round(0.25 * 2 ** (i / 2), 4) for i in range(17)))
PRIOR_GRID = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: rounds of coordinate search (votes, then prior, then votes again ...)
ROUNDS = 2
#: a row scored this far below every other candidate is none (padding of the fitting matrices)
_PAD = -1e12


@dataclass(frozen=True)
class _Analysed:
    question: FeedbackQuestion
    analysis: QueryAnalysis
    rows: dict[int, float]


@dataclass(frozen=True)
class _Fitting:
    """The fitting questions' candidates as padded matrices (questions x candidates): the score without feedback,
    the vote and prior of each candidate, a boost that puts the rows the question names first (as ``rank`` does),
    and 1 where the candidate is an answer."""

    base: np.ndarray
    votes: np.ndarray
    prior: np.ndarray
    boost: np.ndarray
    gains: np.ndarray
    ideal: np.ndarray

    def ndcg(self, weights: Weights) -> float:
        """Mean nDCG@10 of the fitting questions ranked with ``weights`` (ties: lower row first)."""
        score = self.base + weights.votes * self.votes + weights.prior * self.prior + self.boost
        top = np.argsort(-score, axis=1, kind="stable")[:, :DEPTH]
        gains = np.take_along_axis(self.gains, top, axis=1)
        dcg = (gains / np.log2(np.arange(2, DEPTH + 2))).sum(axis=1)
        return float(np.mean(dcg / self.ideal))


@dataclass(frozen=True)
class FeedbackBuild:
    """What ``build_feedback`` made: the index (fitted weights included), the co-relevance, and figures for the
    manifest."""

    index: FeedbackIndex
    corelevance: CoRelevance
    stats: Mapping[str, Any]


def _analyse(model: Model, questions: Sequence[FeedbackQuestion], report: IngestReport) -> list[_Analysed]:
    out = []
    for q in questions:
        try:
            analysis = analyze_text(model, q.query)
        except EmptyQueryError:
            report.skip(q.source, q.line, "query without usable term")
            continue
        out.append(_Analysed(q, analysis, {model.index.rows[d]: c for d, c in q.docs}))
    return out


def _index(model: Model, analysed: Sequence[_Analysed], config: FeedbackConfig) -> FeedbackIndex:
    """The feedback index of the analysed questions, with zero weights (fitted afterwards)."""
    lexical = build_lexical_index((list(a.analysis.tokens) for a in analysed),
                                  LexicalConfig(k1=config.k1, b=config.b))
    vectors = np.stack([text_vector({kw.term: kw.weight for kw in a.analysis.keywords}, model.vectors)
                        for a in analysed]).astype(np.float32)
    groups = [vote_weights(a.rows) for a in analysed]
    indptr = np.cumsum([0, *(len(g) for g in groups)]).astype(np.int64)
    rows = np.array([r for g in groups for r in sorted(g)], dtype=np.int32)
    weights = np.array([g[r] for g in groups for r in sorted(g)], dtype=np.float32)
    prior = prior_of((a.rows for a in analysed), len(model.documents))
    seen = np.flatnonzero(prior > 0)
    popular = seen[np.lexsort((seen, -prior[seen]))][:POPULAR_LIMIT].astype(np.int32)
    keys = frozenset(key_digest(a.question.key) for a in analysed)
    zero = SearchFusion({v: Weights() for v in VARIANTS})
    return FeedbackIndex(lexical, vectors, indptr, rows, weights, prior, popular, keys, zero)


def _sample(analysed: Sequence[_Analysed], limit: int) -> list[int]:
    """The questions the weights are fitted on: all, or the first ``limit`` by sha1 of their key."""
    order = sorted(range(len(analysed)), key=lambda i: hashlib.sha1(analysed[i].question.key.encode()).hexdigest())
    return sorted(order[:limit])


def _fitting(model: Model, analysed: Sequence[_Analysed], chosen: Sequence[int],
             filters: Mapping[str, FilterValue] | None = None) -> _Fitting | None:
    """Rank each chosen question with the votes of the others (within ``filters``: the collection) and gather its
    candidates' score parts."""
    same_text: dict[str, list[int]] = {}
    for i, a in enumerate(analysed):
        same_text.setdefault(a.question.query, []).append(i)
    parts: list[tuple[np.ndarray, ...]] = []
    answers: list[int] = []
    for i in chosen:
        a = analysed[i]
        terms, _, _ = lexical_query(model, a.analysis)
        # a question asked twice (two ids, one text) must not vote for itself either
        scored = score_candidates(model, a.analysis, a.question.query, terms, DEPTH, filters, "hybrid",
                                  exclude_questions=same_text[a.question.query])
        if scored is None or scored.votes is None or scored.prior is None:
            continue
        boost = np.where(scored.first < len(scored.named), 1e9 * (len(scored.named) - scored.first), 0.0)
        gains = np.isin(scored.rows, np.fromiter(a.rows, dtype=np.int64)).astype(np.float64)
        parts.append((scored.base, scored.votes, scored.prior, boost, gains))
        answers.append(len(a.rows))
    if not parts:
        return None
    width = max(p[0].size for p in parts)

    def pad(j: int, fill: float) -> np.ndarray:
        out = np.full((len(parts), width), fill, dtype=np.float64)
        for r, p in enumerate(parts):
            out[r, : p[j].size] = p[j]
        return out

    discounts = 1.0 / np.log2(np.arange(2, DEPTH + 2))
    ideal = np.array([discounts[: min(DEPTH, n)].sum() for n in answers])
    return _Fitting(pad(0, _PAD), pad(1, 0.0), pad(2, 0.0), pad(3, 0.0), pad(4, 0.0), ideal)


def _search(fitting: _Fitting, votes: bool, prior: bool) -> tuple[Weights, float]:
    """Coordinate search over the grids of the signals allowed; the smaller weight wins a tie."""
    best = Weights()
    score = fitting.ndcg(best)
    for _ in range(ROUNDS):
        for name, grid, allowed in (("votes", VOTE_GRID, votes), ("prior", PRIOR_GRID, prior)):
            if not allowed:
                continue
            for value in grid:
                trial = dataclasses.replace(best, **{name: value})
                got = fitting.ndcg(trial)
                if got > score + 1e-12:
                    best, score = trial, got
    return best, score


def fit_weights(model: Model, analysed: Sequence[_Analysed], config: FeedbackConfig) -> SearchFusion:
    """The weights of every variant, chosen on the feedback questions ranked leave-one-out."""
    chosen = _sample(analysed, config.fit_questions)
    fitting = _fitting(model, analysed, chosen)
    if fitting is None:
        log.warning("feedback: no question to fit the weights on; the feedback signals keep weight 0")
        return SearchFusion({v: Weights() for v in VARIANTS}, {"fitted_on": 0})
    found = {
        "hybrid": _search(fitting, votes=True, prior=True),
        "hybrid-without-votes": _search(fitting, votes=False, prior=True),
        "hybrid-without-prior": _search(fitting, votes=True, prior=False),
    }
    info = {"fitted_on": int(fitting.base.shape[0]), "measure": f"nDCG@{DEPTH}, leave-one-out",
            "without_feedback": round(fitting.ndcg(Weights()), 4),
            "fitted": {v: round(s, 4) for v, (_, s) in found.items()}}
    log.info("feedback fusion: %s", {v: w.to_dict() for v, (w, _) in found.items()})
    return SearchFusion({v: w for v, (w, _) in found.items()}, info)


def question_keywords(model: Model, rows: Sequence[int]) -> list[str]:
    """The TF-IDF keywords of a question's relevant rows (each document's top keywords, as trained)."""
    vocabulary = model.keyword_model.vocabulary
    return [vocabulary[t] for t in model.doc_keywords.rows(sorted(rows)).terms]


def learn_model_associations(model: Model, analysed: Sequence[_Analysed], config: FeedbackConfig) -> (
    Associations | None
):
    """Lay -> legal associations between the questions' words (phrased, as query expansion sees them) and their
    relevant documents' keywords (``associations.learn_associations``); None with ``association_terms`` 0."""
    if config.association_terms <= 0:
        return None
    pairs = [(a.analysis.phrased, question_keywords(model, list(a.rows))) for a in analysed]
    found = learn_associations(pairs, config.association_min_count, config.association_min_npmi,
                               config.association_terms)
    log.info("feedback: %d lay words associated with %d keywords", len(found), found.params.get("pairs", 0))
    return found


def build_feedback(model: Model, questions: Sequence[FeedbackQuestion], config: FeedbackConfig,
                   report: IngestReport) -> FeedbackBuild | None:
    """The feedback index of a model (fusion weights fitted) and the co-relevance; None when no question has a
    usable term (each such question is reported)."""
    analysed = _analyse(model, questions, report)
    if not analysed:
        return None
    index = _index(model, analysed, config)
    fusion = fit_weights(dataclasses.replace(model, feedback=index), analysed, config)
    # the weights are fitted without the associations: learned from every question, they would let a question
    # expand itself towards its own answers' keywords
    associations = learn_model_associations(model, analysed, config)
    index = dataclasses.replace(index, fusion=fusion, associations=associations)
    corelevance = CoRelevance.from_groups([list(a.rows) for a in analysed], len(model.documents))
    stats = {"questions": len(analysed), "answers": int(index.rows.shape[0]),
             "documents": int(np.count_nonzero(index.prior)),
             "corelevance_pairs": int(corelevance.indices.shape[0]),
             "fusion": {v: w.to_dict() for v, w in fusion.variants.items()}, "fit": dict(fusion.info),
             "associations": dict(associations.params) if associations is not None else {}}
    return FeedbackBuild(index, corelevance, stats)


