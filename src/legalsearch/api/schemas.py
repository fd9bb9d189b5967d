"""Request and response bodies of the HTTP API; every field carries a description and an example.

The response models describe the answers for OpenAPI; ``api.answers`` builds them (one builder per model).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator

from legalsearch.docstore import FACET_NAMES, DateRange, FilterValue
from legalsearch.errors import InvalidRequestError
from legalsearch.suggest import MAX_SUGGESTIONS

#: a metadata value as stored: scalars only
Scalar = str | int | float | bool | None

#: deepest page a client may ask for; beyond it FAISS would fetch (and collapse) ever larger candidate lists
MAX_OFFSET = 10_000
MAX_K = 100
MAX_IDS = 100
MAX_EXCLUDE = 1000
MAX_FACET_LIMIT = 1000
DEFAULT_FACET_LIMIT = 20
#: longest prefix /suggest completes: no key is longer than a section's id and title
MAX_SUGGEST_CHARS = 200

_FILTERS_DESCRIPTION = (
    "Metadata filters, all of which must match: field -> value, field -> list of values (any of them), or "
    "field -> {\"from\": date, \"to\": date} (inclusive ISO date range, either end may be left out). "
    "Fields: 'type' and any metadata field of the corpus (law, court, date, ...); an unknown field gives 422."
)
_FILTERS_EXAMPLE: dict[str, Any] = {"type": ["statute"], "law": "DMietG"}


class DateRangeFilter(BaseModel):
    """An inclusive date range over an ISO date metadata field."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: date | None = Field(
        None, alias="from", description="First date included (ISO 8601).", examples=["2018-01-01"]
    )
    end: date | None = Field(None, alias="to", description="Last date included (ISO 8601).", examples=["2022-12-31"])

    @model_validator(mode="after")
    def _ordered(self) -> DateRangeFilter:
        if self.start is None and self.end is None:
            raise ValueError("a date range needs 'from', 'to' or both")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"date range 'from' {self.start} is after 'to' {self.end}")
        return self

    def to_range(self) -> DateRange:
        """The docstore's range over ISO strings."""
        return DateRange(
            self.start.isoformat() if self.start else None, self.end.isoformat() if self.end else None
        )


FilterSpec = DateRangeFilter | list[Scalar] | Scalar


def to_filters(raw: dict[str, FilterSpec] | None) -> dict[str, FilterValue] | None:
    """Validated API filters as the ranking functions take them."""
    if not raw:
        return None
    out: dict[str, FilterValue] = {}
    for name, value in raw.items():
        if isinstance(value, DateRangeFilter):
            out[name] = value.to_range()
        elif isinstance(value, list):
            if not value:
                raise InvalidRequestError(f"filter {name!r} has an empty list of values")
            out[name] = value
        else:
            out[name] = value
    return out


_FACETS_DESCRIPTION = (
    f"Facets to count ({', '.join(FACET_NAMES)}; 'year' is the year of the 'date' field): each value's number of "
    "documents among all that match, not only the returned page (what is counted: docs/api.md); an unknown "
    "name gives 422."
)
_FACET_LIMIT_DESCRIPTION = "Most values returned per facet (the most frequent ones)."


def parse_facets(raw: str | list[str] | None) -> tuple[str, ...]:
    """Facet names from a comma-separated string (or a list), without blanks and repeats, in the given order."""
    if raw is None:
        return ()
    parts = raw.split(",") if isinstance(raw, str) else raw
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


class FacetCountOut(BaseModel):
    """One facet value and how many matching documents have it."""

    value: str | int | float | bool = Field(description="The value (a year is an integer).", examples=["BGB"])
    count: int = Field(description="Matching documents with this value.", examples=[12])


_FACETS_OUT_DESCRIPTION = (
    "Null unless facets were asked for; then per facet, its values with their counts, most frequent first (ties by "
    "value), at most `facet_limit` of them."
)
_FACETS_OUT_EXAMPLE = {"law": [{"value": "BGB", "count": 12}], "year": [{"value": 2021, "count": 3}]}


class KeywordOut(BaseModel):
    """A weighted term."""

    term: str = Field(description="The term; multiword terms join their words with '_'.", examples=["kündigung"])
    weight: float = Field(description="Its weight (TF-IDF, or the shared weight in explanations).", examples=[0.42])


class Explanation(BaseModel):
    """Why a document was recommended."""

    keywords: list[KeywordOut] = Field(
        description="Keywords the document shares with the request, strongest first.",
        examples=[[{"term": "kündigung", "weight": 0.12}]],
    )


class RecommendExplanation(Explanation):
    """Why a document was recommended: shared keywords, and the relatedness signals that hold for it."""

    reasons: list[str] = Field(
        description="Per relatedness signal that holds, in words: citations ('cites the seed', 'cited by the seed',"
        " 'cited together with the seed by 3 documents'), statute structure ('same Untertitel: Mietverhältnisse "
        "über Wohnraum', 'next section in the law') and feedback ('answered together with the seed in 2 "
        "questions'), with or without a fitted fusion. For text and keyword requests 'named in the request: § 573 "
        "BGB' on a section the request names.",
        examples=[["cites the seed", "same Untertitel: Mietverhältnisse über Wohnraum"]],
    )
    signals: dict[str, float] = Field(
        description="Each relatedness signal's part of the score (word2vec, lexical, structure, citations, "
        "feedback): how much the score falls without that signal's features. Without a fitted fusion only "
        "word2vec, the cosine similarity. For text and keyword requests the two parts of search's hybrid score "
        "(lexical, word2vec: weighted z-scores summing to the score).",
        examples=[{"word2vec": 0.41, "lexical": 0.87, "structure": 1.2, "citations": 0.35}],
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        # JSON may escape lone surrogates; they are no text, and break every encoder further on
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


class RecommendRequest(BaseModel):
    """What to recommend for: seed documents, a text, or keywords (exactly one of them)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"positive": ["DMietG § 12"], "k": 5},
                {"text": "Kündigung des Mietvertrags wegen Eigenbedarf", "filters": {"type": "decision"}},
                {"keywords": ["kündigung", "mietvertrag"], "collapse": False},
            ]
        },
    )

    positive: list[str] | None = Field(
        None, min_length=1, max_length=MAX_IDS,
        description="Ids of documents the results should resemble (seeds; never returned).",
        examples=[["DMietG § 12"]],
    )
    negative: list[str] = Field(
        default_factory=list, max_length=MAX_IDS,
        description="Ids of documents the results should not resemble; only together with 'positive'.",
        examples=[[]],
    )
    text: str | None = Field(
        None, description="A free text (a case description, a contract clause) to find related documents for.",
        examples=["Der Vermieter kündigt das Mietverhältnis wegen Eigenbedarfs."],
    )
    keywords: list[str] | None = Field(
        None, min_length=1, max_length=MAX_IDS,
        description="Terms to find related documents for.", examples=[["kündigung", "eigenbedarf"]],
    )
    k: int = Field(10, ge=1, le=MAX_K, description="Number of results.", examples=[10])
    offset: int = Field(
        0, ge=0, le=MAX_OFFSET, description="Results to skip (stable pagination).", examples=[0]
    )
    filters: dict[str, FilterSpec] | None = Field(
        None, description=_FILTERS_DESCRIPTION, examples=[_FILTERS_EXAMPLE]
    )
    exclude: list[str] = Field(
        default_factory=list, max_length=MAX_EXCLUDE,
        description="Ids that must not be returned (e.g. already shown).", examples=[["DMietG § 13"]],
    )
    collapse: bool = Field(True, description="Keep only the best of near-identical documents.", examples=[True])
    facets: list[str] | None = Field(
        None, max_length=len(FACET_NAMES), description=_FACETS_DESCRIPTION, examples=[["law", "type"]]
    )
    facet_limit: int = Field(
        DEFAULT_FACET_LIMIT, ge=1, le=MAX_FACET_LIMIT, description=_FACET_LIMIT_DESCRIPTION, examples=[20]
    )

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _has_surrogate(data):
            raise ValueError("the body contains invalid Unicode (an unpaired surrogate escape such as \\ud800)")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> RecommendRequest:
        given = [name for name in ("positive", "text", "keywords") if getattr(self, name) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of 'positive', 'text', 'keywords' (got: {found})")
        if self.negative and self.positive is None:
            raise ValueError("'negative' ids only work together with 'positive' ids")
        return self


class Recommendation(BaseModel):
    """One recommended document."""

    id: str = Field(description="Document id.", examples=["DMietG § 13"])
    title: str = Field(description="Document title.", examples=["Kündigung wegen Eigenbedarfs"])
    type: str = Field(description="Document type (statute, decision, ...).", examples=["statute"])
    score: float | None = Field(
        description="Relatedness (higher is closer): the fused score of the relatedness signals for seed documents "
        "when the model has a fitted fusion, otherwise the cosine similarity to the seeds; for a text or keywords "
        "search's hybrid score of the query.", examples=[0.83])
    metadata: dict[str, Scalar] = Field(
        description="Metadata of the document (law, court, date, ...).", examples=[{"law": "DMietG"}]
    )
    snippet: str = Field(
        description="HTML-escaped passage; request keywords are wrapped in <mark>…</mark>.",
        examples=["Der Vermieter kann das Mietverhältnis nur <mark>kündigen</mark>, wenn …"],
    )
    explanation: RecommendExplanation = Field(description="Why it was recommended.")


class RecommendResponse(BaseModel):
    """Recommendations from one model version."""

    results: list[Recommendation] = Field(description="Results, best first.")
    ignored_ids: list[str] = Field(
        description="Given ids (positive, negative) the model does not know; they were ignored.",
        examples=[["DMietG § 999"]],
    )
    model: str = Field(description="Version of the model that answered.", examples=["20261128-151200-a1b2c3"])
    facets: dict[str, list[FacetCountOut]] | None = Field(
        None, description=_FACETS_OUT_DESCRIPTION, examples=[_FACETS_OUT_EXAMPLE]
    )


class ExpandedTermOut(BaseModel):
    """A term the query was expanded with."""

    term: str = Field(description="The added term.", examples=["mietverhältnis"])
    source: str = Field(description="The query term it is related to.", examples=["mietvertrag"])
    similarity: float = Field(description="Cosine similarity of the word vectors.", examples=[0.71])
    weight: float = Field(description="Weight it got relative to a query term (1.0).", examples=[0.21])


class SearchExplanation(Explanation):
    """Why a document was found."""

    cited_in_query: str | None = Field(
        None,
        description="The citation in the query that names this section (as the query wrote it); such sections "
        "are put first, in the query's order, whatever their score. null for every other hit.",
        examples=["§ 12 DMietG"],
    )


class SearchHitOut(BaseModel):
    """One search result."""

    id: str = Field(description="Document id.", examples=["DMietG § 12"])
    title: str = Field(description="Document title.", examples=["Ordentliche Kündigung"])
    type: str = Field(description="Document type.", examples=["statute"])
    score: float | None = Field(description="Fused score (weighted z-scores; only comparable within one answer).",
                                examples=[1.7])
    lexical_score: float | None = Field(description="BM25 score over the expanded query.", examples=[7.3])
    embedding_score: float | None = Field(description="Cosine of document and query vectors.", examples=[0.64])
    metadata: dict[str, Scalar] = Field(description="Metadata of the document.", examples=[{"law": "DMietG"}])
    snippet: str = Field(
        description="HTML-escaped passage with matched terms wrapped in <mark>…</mark>.",
        examples=["… das Mietverhältnis <mark>kündigen</mark> …"],
    )
    matched_terms: list[str] = Field(description="Query (or expanded) terms found in the snippet.",
                                     examples=[["kündigen"]])
    explanation: SearchExplanation = Field(
        description="Keywords the document shares with the query, and the query's citation naming it."
    )


class SearchResponse(BaseModel):
    """Hybrid search results from one model version."""

    results: list[SearchHitOut] = Field(description="Results, best first.")
    query_terms: list[str] = Field(description="The query's terms after preprocessing.",
                                   examples=[["kündigung", "mietvertrag"]])
    expanded_terms: list[ExpandedTermOut] = Field(description="Related terms added to the query.")
    model: str = Field(description="Version of the model that answered.", examples=["20261128-151200-a1b2c3"])
    facets: dict[str, list[FacetCountOut]] | None = Field(
        None, description=_FACETS_OUT_DESCRIPTION, examples=[_FACETS_OUT_EXAMPLE]
    )


class SearchParams(BaseModel):
    """The query parameters of GET /search (one declaration for FastAPI and the direct reader)."""

    q: str = Field(description="The query (German).", examples=["Kündigung wegen Eigenbedarf"])
    k: int = Field(10, ge=1, le=MAX_K, description="Number of results.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Results to skip (stable pagination).")
    type: list[str] | None = Field(
        None, description="Only these document types (repeatable).", examples=[["statute"]]
    )
    law: list[str] | None = Field(
        None, description="Only documents of these laws (repeatable).", examples=[["DMietG"]]
    )
    court: list[str] | None = Field(
        None, description="Only decisions of these courts (repeatable).", examples=[["BGH"]]
    )
    date_from: date | None = Field(
        None, description="Only documents dated on or after this day.", examples=["2018-01-01"]
    )
    date_to: date | None = Field(
        None, description="Only documents dated on or before this day.", examples=["2022-12-31"]
    )
    filters: str | None = Field(
        None,
        description="Further filters as a JSON object, same shape as in POST /recommend "
        '(field -> value | [values] | {"from": date, "to": date}); the parameters above take precedence.',
        examples=['{"court": ["BGH", "LG Berlin"]}'],
    )
    expand: bool = Field(True, description="Add related terms from word2vec to the query.")
    mode: Literal["hybrid", "lexical", "embedding"] = Field(
        "hybrid", description="Retrievers used: both, or only one."
    )
    facets: str | None = Field(
        None, description="Comma-separated. " + _FACETS_DESCRIPTION, examples=["law,type,court,year"]
    )
    facet_limit: int = Field(DEFAULT_FACET_LIMIT, ge=1, le=MAX_FACET_LIMIT, description=_FACET_LIMIT_DESCRIPTION)


def _repeatable(annotation: Any) -> bool:
    return any(get_origin(arg) is list for arg in (annotation, *get_args(annotation)))


#: the parameters of GET /search a client may repeat (``type=statute&type=decision``), each the metadata filter of
#: its name: the list fields of ``SearchParams``, which declares them
SEARCH_LIST_PARAMS: tuple[str, ...] = tuple(
    name for name, field in SearchParams.model_fields.items() if _repeatable(field.annotation)
)


class SimilarTermOut(BaseModel):
    """A related term."""

    term: str = Field(description="The related term.", examples=["mietverhältnis"])
    score: float = Field(description="Cosine similarity of the word vectors.", examples=[0.71])


class SimilarTermsResponse(BaseModel):
    """Terms related to a term."""

    term: str = Field(description="The term as asked.", examples=["mietvertrag"])
    similar: list[SimilarTermOut] = Field(description="Related terms, most similar first.")
    model: str = Field(description="Version of the model that answered.", examples=["20261128-151200-a1b2c3"])


class CitationCountsOut(BaseModel):
    """How a document is linked in the citation graph."""

    cites: int = Field(description="Documents its citations resolve to (self-citations left out).", examples=[3])
    cited_by: int = Field(description="Documents whose citations resolve to it.", examples=[12])
    unresolved: int = Field(description="Its citations that resolve to no document (unknown law, missing "
                            "section, no law, malformed range).", examples=[1])


class CitationLinkOut(BaseModel):
    """One edge of the citation graph, seen from one of its ends."""

    id: str = Field(description="The other document's id.", examples=["DMietG § 13"])
    title: str = Field(description="Its title.", examples=["Kündigung wegen Eigenbedarfs"])
    type: str = Field(description="Its type.", examples=["statute"])
    count: int = Field(description="How many citations of the citing document name the cited one.", examples=[2])
    start: int = Field(description="Offset (characters) of the first citing span in the citing document's text.",
                       examples=[118])
    end: int = Field(description="End offset of that span.", examples=[142])
    surface: str = Field(description="That span as written.", examples=["§ 13 Abs. 2 Nr. 2 DMietG"])
    kind: str = Field(description="Edge kind: citing type -> cited type.", examples=["decision->statute"])


class UnresolvedCitationOut(BaseModel):
    """A citation that names no document of the corpus, kept as written."""

    start: int = Field(description="Offset of the span in the document's text.", examples=[40])
    end: int = Field(description="End offset of the span.", examples=[49])
    surface: str = Field(description="The span as written.", examples=["§ 573 BGB"])
    reason: Literal["unknown law", "missing section", "no law", "malformed range", "not indexed"] = Field(
        description="Why it resolves to no document: the law is not in the corpus, the law lacks the section, "
        "no law is named (outside a statute), a range runs backwards, or the sections exist only as repealed or "
        "empty headings that are not indexed.", examples=["unknown law"]
    )
    law: str | None = Field(description="The law as written, if it names one.", examples=["BGB"])


class CitationsResponse(BaseModel):
    """What a document cites."""

    id: str = Field(description="The citing document.", examples=["DEMO-BGH-VIII-ZR-12-21"])
    citations: list[CitationLinkOut] = Field(description="Cited documents, one entry each, in corpus order.")
    unresolved: list[UnresolvedCitationOut] = Field(description="Citations that resolve to no document.")
    model: str = Field(description="Version of the model that answered.", examples=["20261128-151200-a1b2c3"])


class CitedByResponse(BaseModel):
    """One page of the documents citing a document."""

    id: str = Field(description="The cited document.", examples=["DMietG § 13"])
    total: int = Field(description="Citing documents in all (after the type filter).", examples=[4])
    offset: int = Field(description="Entries skipped.", examples=[0])
    limit: int = Field(description="Page size asked for.", examples=[20])
    cited_by: list[CitationLinkOut] = Field(
        description="Citing documents, most citations first, then corpus order; the span is in the citing text."
    )
    model: str = Field(description="Version of the model that answered.", examples=["20261128-151200-a1b2c3"])


class DocumentResponse(BaseModel):
    """One document with its top keywords."""

    id: str = Field(description="Document id.", examples=["DMietG § 12"])
    title: str = Field(description="Document title.", examples=["Ordentliche Kündigung"])
    type: str = Field(description="Document type.", examples=["statute"])
    metadata: dict[str, Scalar] = Field(description="Metadata of the document.", examples=[{"law": "DMietG"}])
    text: str = Field(description="Full text.", examples=["Der Vermieter kann …"])
    keywords: list[KeywordOut] = Field(description="Top TF-IDF keywords, best first.")
    citations: CitationCountsOut | None = Field(
        None, description="Its links in the citation graph (null for a model trained without the graph); "
        "details at /documents/{id}/citations and /documents/{id}/cited-by."
    )
    model: str = Field(description="Version of the model that answered.", examples=["20261128-151200-a1b2c3"])


class ModelResponse(BaseModel):
    """The model being served."""

    model: str = Field(description="Its version.", examples=["20261128-151200-a1b2c3"])
    manifest: dict[str, Any] = Field(
        description="Its manifest: versions, config, counts, file hashes, timings.",
        examples=[{"version": "20261128-151200-a1b2c3", "counts": {"documents": 80}}],
    )


class LiveResponse(BaseModel):
    """Liveness."""

    status: Literal["alive"] = Field(description="Always 'alive' while the process runs.", examples=["alive"])


class ReloadFailure(BaseModel):
    """A model version that was refused."""

    version: str | None = Field(description="The version 'current' pointed at.", examples=["20261128-151200-a1b2c3"])
    reason: str = Field(description="Why it was refused.", examples=["file docvectors.npy is corrupted"])
    at: str = Field(description="When (UTC, ISO 8601).", examples=["2026-11-28T15:12:00+00:00"])


class WorkerStatus(BaseModel):
    """What one worker process serves."""

    pid: int = Field(description="The worker's process id.", examples=[4242])
    ready: bool = Field(description="Whether it serves a verified model.", examples=[True])
    model: str | None = Field(description="The version it serves, if any.", examples=["20261128-151200-a1b2c3"])
    current: str | None = Field(description="The version models/current named when it last looked.",
                                examples=["20261128-151200-a1b2c3"])
    fallback: str | None = Field(
        None, description="Why it serves another version than `current` (current refused), else null.",
        examples=[None],
    )
    last_reload_error: ReloadFailure | None = Field(None, description="The last model it refused, if any.")

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> WorkerStatus:
        """From a holder's status dict (api.state.ModelHolder.status), as the workers exchange them."""
        error = status.get("last_reload_error")
        return cls(
            pid=int(status["pid"]), ready=bool(status.get("ready")), model=status.get("model"),
            current=status.get("current"), fallback=status.get("fallback"),
            last_reload_error=ReloadFailure(version=error.get("version"), reason=str(error.get("reason", "")),
                                            at=str(error.get("at", ""))) if isinstance(error, dict) else None,
        )


class ReadyResponse(BaseModel):
    """Readiness, with what is served and the last refused reload."""

    ready: bool = Field(description="Whether a verified model is being served.", examples=[True])
    detail: str = Field(description="'ready', or why not.", examples=["ready"])
    model: str | None = Field(description="Version being served, if any.", examples=["20261128-151200-a1b2c3"])
    current: str | None = Field(description="Version models/current points at now.",
                                examples=["20261128-151200-a1b2c3"])
    last_reload_error: ReloadFailure | None = Field(description="The last refused model, if any.")
    fallback: str | None = Field(
        None, description="Why this worker serves another version than `current` (current refused), else null.",
        examples=[None],
    )
    watching: bool = Field(description="Whether models/current is watched for changes.", examples=[True])
    worker: int = Field(description="The process id of the worker that answered.", examples=[4242])
    workers: list[WorkerStatus] = Field(
        description="Every worker's status (under `legalsearch serve --workers N`, as the main process last "
        "relayed them; otherwise only this process)."
    )


class ReloadResponse(BaseModel):
    """Result of a forced reload."""

    changed: bool = Field(description="Whether a different model is served now.", examples=[True])
    model: str | None = Field(description="Version served after the reload.", examples=["20261128-151200-a1b2c3"])
    previous: str | None = Field(description="Version served before.", examples=["20261127-090000-000000"])
    workers: list[WorkerStatus] = Field(description="Every worker's status after the reload.")
    pending: list[int] = Field(
        description="Workers that had not reported their reload within reload_wait_s (pids); empty normally.",
        examples=[[]],
    )


class ErrorResponse(BaseModel):
    """Error body."""

    detail: str = Field(description="What went wrong.", examples=["unknown document id(s): DMietG § 999"])


class SuggestParams(BaseModel):
    """The query parameters of GET /suggest (one declaration for FastAPI and the direct reader)."""

    q: str = Field(
        min_length=1, max_length=MAX_SUGGEST_CHARS,
        description="What the user has typed so far (case and umlauts do not matter: 'kuendi' finds 'kündigung').",
        examples=["kündi"],
    )
    k: int = Field(8, ge=1, le=MAX_SUGGESTIONS, description="Number of suggestions.")


class SuggestionOut(BaseModel):
    """One completion."""

    text: str = Field(description="The completion as shown (keywords and phrases are lemmatised, lowercase).",
                      examples=["BGB § 573 Ordentliche Kündigung des Vermieters"])
    kind: Literal["keyword", "phrase", "law", "section"] = Field(
        description="A keyword of the vocabulary, a multiword phrase, a law (title and abbreviation), or a "
        "section (id and title).", examples=["section"]
    )
    id: str | None = Field(description="The document a section suggestion names; null for the other kinds.",
                           examples=["BGB § 573"])
    df: int = Field(description="Documents it occurs in (keywords, phrases), documents of the law (laws); 1 for a "
                    "section.", examples=[1])
    law: str | None = Field(description="The law abbreviation of a law or section suggestion (a `law` filter "
                            "value); null for keywords and phrases.", examples=["BGB"])
    edits: int = Field(description="Typos corrected to reach it: 0 when it starts with the query as typed.",
                       examples=[0])


class SuggestResponse(BaseModel):
    """Completions of a typed prefix."""

    query: str = Field(description="The query as given.", examples=["kündi"])
    suggestions: list[SuggestionOut] = Field(
        description="Completions, best first: those that start with the query by document frequency, then "
        "those reached with one or two corrected typos (fewer first)."
    )
    model: str = Field(description="Version of the model that answered.", examples=["20261128-151200-a1b2c3"])
