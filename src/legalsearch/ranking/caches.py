"""Per-model memos of the ranking, held by the loaded model (``Model.ranking_caches``), and their warm-up.

``warm_up`` runs before a model is swapped in (``api.state``); what it does not build fills per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from legalsearch.keywords import PHRASE_JOINER
from legalsearch.relatedness import structure_of

if TYPE_CHECKING:
    from legalsearch.engine import Model
    from legalsearch.ranking.query import _Candidate
    from legalsearch.relatedness import Structure

#: the word and expansion memos start over past this many entries (the keyword parts hold at most the vocabulary)
_WORD_MEMO_LIMIT = 200_000
_EXPANSION_MEMO_LIMIT = 200_000


@dataclass(eq=False)
class RankingCaches:
    """The memos of one loaded model; each depends on nothing but the model (and the word or term it is keyed by).

    ``keyword_parts``: a keyword id's lexical parts (id, part), as ``explain._marked`` finds them for the
    keyword's string (seed documents' marked snippet terms); ``word_tokens``: a word of a result text -> its
    normalised tokens (``explain._word_hits``, models without a snippet index); ``expansions``: a query term ->
    its expansion candidates (``query._expand``: table lookups, similarity threshold and document frequency checks
    were ~15% of a search); ``structure``: the statute structure columns (``relatedness.structure_of``).
    """

    keyword_parts: dict[int, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    word_tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    expansions: dict[str, tuple[_Candidate, ...]] = field(default_factory=dict)
    structure: Structure | None = None

    def word_memo(self) -> dict[str, frozenset[str]]:
        """``word_tokens``, started over when it has grown past its limit."""
        if len(self.word_tokens) > _WORD_MEMO_LIMIT:
            self.word_tokens = {}
        return self.word_tokens

    def expansion_memo(self) -> dict[str, tuple[_Candidate, ...]]:
        """``expansions``, started over when it has grown past its limit."""
        if len(self.expansions) > _EXPANSION_MEMO_LIMIT:
            self.expansions = {}
        return self.expansions


def warm_up(model: Model) -> None:
    """Build the per-model caches the hot path uses, so that the first request is not slow.

    Built here: the expansion table's candidate rows, the keyword vocabulary as a set, the suggestion index, the
    statute structure columns the recommendations' reasons read (20-50 ms on the full model), and (models with a
    snippet index) the lexical parts of every keyword. Filled per request: the word tokens and the expansion
    candidates (keyed by the words of result texts and queries, which no model lists)."""
    model.expansions.candidates()
    structure_of(model)
    _ = model.keyword_terms
    _ = model.suggestions
    if model.snippets is not None:
        fill_keyword_parts(model)


def fill_keyword_parts(model: Model) -> None:
    """Every keyword's lexical parts into ``keyword_parts`` (what ``explain._marked_keywords`` fills lazily)."""
    memo = model.ranking_caches.keyword_parts
    vocab = model.lexical.vocab
    for k, term in enumerate(model.keyword_model.vocabulary):
        if k not in memo:
            memo[k] = tuple((i, w) for w in term.split(PHRASE_JOINER) if (i := vocab.get(w)) is not None)
