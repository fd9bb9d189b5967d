"""Each builder of ``api.answers`` makes exactly its response model: the same keys in the same order, nested
objects too, and values the model validates and dumps unchanged."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from legalsearch.api import answers, schemas


def _check(value: Any, annotation: Any, where: str) -> None:
    """``value`` has the shape ``annotation`` declares: models as dicts of exactly their fields, in order."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert isinstance(value, dict), where
        assert list(value) == [f.alias or name for name, f in annotation.model_fields.items()], where
        for name, field in annotation.model_fields.items():
            _check(value[field.alias or name], field.annotation, f"{where}.{name}")
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple):
        for i, item in enumerate(value):
            _check(item, args[0], f"{where}[{i}]")
    elif origin is dict:
        for key, item in value.items():
            _check(item, args[1], f"{where}[{key!r}]")
    elif origin in (Union, types.UnionType) and value is not None:
        models = [a for a in args if get_origin(a) is not None or (isinstance(a, type) and issubclass(a, BaseModel))]
        if len(models) == 1:
            _check(value, models[0], where)


def _samples(model) -> dict[str, tuple[Callable[[], Any], type[BaseModel]]]:  # type: ignore[no-untyped-def]
    """Per result type: a builder applied to a real result of the demo model, and the model it must make."""
    from legalsearch.citegraph import counts_of, incoming, outgoing
    from legalsearch.ranking import recommend, search, similar_terms

    found = search(model, "Kündigung wegen Eigenbedarf nach § 12 DMietG", k=5, facets=["law", "type", "year"])
    recommended = recommend(model, positive=[model.index.ids[0]], k=5, facets=["law"])
    suggested = model.suggestions.suggest("kündi", 5)
    similar = similar_terms(model, "kündigung", 3)
    doc_id = "DMietG § 12"
    doc = model.document(doc_id)
    counts = counts_of(model, model.row_of(doc_id))
    assert counts is not None
    cites = outgoing(model, "DEMO-LG-BERLIN-67-S-22-20")
    cited = incoming(model, "DMietG § 14")
    assert found.results and found.expanded_terms and found.facets and recommended.results and suggested and similar
    assert cites.links and cites.unresolved and cited.links
    return {
        "keyword": (lambda: answers.keyword_json(found.results[0].keywords[0]), schemas.KeywordOut),
        "facet count": (lambda: answers.facet_count_json(*found.facets["law"][0]), schemas.FacetCountOut),
        "search result": (lambda: answers.search_hit_json(found.results[0]), schemas.SearchHitOut),
        "expanded term": (lambda: answers.expanded_term_json(found.expanded_terms[0]), schemas.ExpandedTermOut),
        "search answer": (lambda: answers.search_json(found), schemas.SearchResponse),
        "recommendation": (lambda: answers.recommendation_json(recommended.results[0]), schemas.Recommendation),
        "recommend answer": (lambda: answers.recommend_json(recommended), schemas.RecommendResponse),
        "suggestion": (lambda: answers.suggestion_json(suggested[0]), schemas.SuggestionOut),
        "suggest answer": (lambda: answers.suggest_json("kündi", suggested, model.version), schemas.SuggestResponse),
        "similar term": (lambda: answers.similar_term_json(similar[0]), schemas.SimilarTermOut),
        "similar terms answer": (lambda: answers.similar_terms_json("kündigung", similar, model.version),
                                 schemas.SimilarTermsResponse),
        "citation counts": (lambda: answers.citation_counts_json(counts), schemas.CitationCountsOut),
        "document": (lambda: answers.document_json(doc, model.keywords(doc_id, 5), counts, model.version),
                     schemas.DocumentResponse),
        "citation link": (lambda: answers.citation_link_json(cites.links[0]), schemas.CitationLinkOut),
        "unresolved citation": (lambda: answers.unresolved_citation_json(cites.unresolved[0]),
                                schemas.UnresolvedCitationOut),
        "citations answer": (lambda: answers.citations_json(cites, model.version), schemas.CitationsResponse),
        "cited-by answer": (lambda: answers.cited_by_json(cited, 0, 20, model.version), schemas.CitedByResponse),
    }


KINDS = ["keyword", "facet count", "search result", "expanded term", "search answer", "recommendation",
         "recommend answer", "suggestion", "suggest answer", "similar term", "similar terms answer",
         "citation counts", "document", "citation link", "unresolved citation", "citations answer", "cited-by answer"]


@pytest.fixture(scope="module")
def samples(demo_model) -> dict[str, tuple[Callable[[], Any], type[BaseModel]]]:  # type: ignore[no-untyped-def]
    return _samples(demo_model)


@pytest.mark.parametrize("kind", KINDS)
def test_the_builder_makes_its_response_model(samples: dict[str, tuple[Callable[[], Any], type[BaseModel]]],
                                               kind: str) -> None:
    build, model = samples[kind]
    built = build()
    _check(built, model, kind)
    assert model.model_validate(built).model_dump(mode="json", by_alias=True) == built


def test_every_builder_is_tested() -> None:
    builders = {name for name, value in vars(answers).items() if name.endswith("_json") and callable(value)}
    # the list helpers apply a tested builder to each item
    assert len(KINDS) == len(builders - {"keywords_json", "facets_json"})
