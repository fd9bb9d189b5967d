"""What the ranking stage returns and passes between its steps: frozen results and intermediates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from legalsearch.ranking.fusion import _sum
from legalsearch.types import Keyword, Recommendation, Scalar, SearchHit


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
