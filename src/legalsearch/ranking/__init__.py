"""Stage at query time: recommendations, hybrid search, related terms, snippets and explanations.

Everything here reads a loaded ``Model``; nothing touches files per request. The steps: ``query`` (analysis and
expansion), ``candidates`` (the candidate sources and their score parts), ``fusion`` (one score per candidate),
``explain`` (explanations and snippets), ``search`` and ``recommend`` (the answers), ``caches`` (the per-model
memos and their warm-up); ``results`` holds what they return.
"""

from legalsearch.ranking.caches import RankingCaches, warm_up
from legalsearch.ranking.candidates import score_candidates
from legalsearch.ranking.explain import snippet
from legalsearch.ranking.fusion import FEEDBACK_MODES, MODES, fuse
from legalsearch.ranking.query import analyze_text, lexical_query, query_term_weights
from legalsearch.ranking.recommend import recommend
from legalsearch.ranking.results import (
    ExpandedTerm,
    QueryAnalysis,
    Ranking,
    RecommendResult,
    Scored,
    SearchResult,
)
from legalsearch.ranking.search import rank, search, similar_terms

__all__ = [
    "FEEDBACK_MODES",
    "MODES",
    "ExpandedTerm",
    "QueryAnalysis",
    "Ranking",
    "RankingCaches",
    "RecommendResult",
    "Scored",
    "SearchResult",
    "analyze_text",
    "fuse",
    "lexical_query",
    "query_term_weights",
    "rank",
    "recommend",
    "score_candidates",
    "search",
    "similar_terms",
    "snippet",
    "warm_up",
]
