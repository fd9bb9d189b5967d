"""Immutable result and record types shared by every stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

#: metadata values are scalars only, so that they filter by equality and serialise to JSON
Scalar = Union[str, int, float, bool, None]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class Document:
    """One indexed unit: a statute section, a decision, an article."""

    id: str
    text: str
    title: str = ""
    type: str = "document"
    metadata: Mapping[str, Scalar] = field(default_factory=dict)
    #: where it came from, for error reports ("file:line")
    source: str = ""


@dataclass(frozen=True, slots=True)
class Keyword:
    """A term (a word or a multiword phrase joined by ``_``) with its weight."""

    term: str
    weight: float


@dataclass(frozen=True, slots=True)
class SimilarTerm:
    """A vocabulary term related to another, with cosine similarity."""

    term: str
    score: float


@dataclass(frozen=True, slots=True)
class DocumentHit:
    """What every result of a list says about its document: id, score, title, type, metadata and snippet."""

    doc_id: str
    score: float
    title: str
    type: str
    metadata: Mapping[str, Scalar]
    snippet: str


@dataclass(frozen=True, slots=True)
class Recommendation(DocumentHit):
    """One recommended document with an explanation: the keywords it shares with the request."""

    keywords: tuple[Keyword, ...]
    #: why, in words, per relatedness signal that holds ("cites the seed", "same Titel: ...")
    reasons: tuple[str, ...] = ()
    #: each signal's part of the score (the fused ranking), or the word2vec cosine alone
    signals: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchHit(DocumentHit):
    """One search result: the fused score, its parts, and the query terms it matched."""

    matched_terms: tuple[str, ...]
    lexical_score: float | None = None
    embedding_score: float | None = None
    keywords: tuple[Keyword, ...] = ()
    #: the citation in the query that names this section ("§ 573 BGB"), which put it first
    cited_in_query: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record the reader refused, with where and why."""

    source: str
    line: int
    reason: str
