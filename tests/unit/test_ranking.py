import numpy as np
import pytest
from reference import expand_terms

from legalsearch.ranking import ExpandedTerm
from legalsearch.ranking.candidates import _top_rows


def _reference(scores: np.ndarray, pool: int) -> set[int]:
    # what rank() did before the sampled threshold: an argpartition over every row
    n = scores.shape[0]
    top = np.argpartition(-scores, min(pool, n - 1))[:pool]
    top_scores = scores[top]
    return set(top[np.isfinite(top_scores) & (top_scores > 0)].tolist())


@pytest.mark.parametrize("seed", range(6))
def test_top_rows_pick_the_same_set_as_a_full_argpartition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    for pool in (1, 10, 200, 999):
        # half the rows unmatched, the rest continuous, coarse (many ties at any cut), or filtered out
        scores = np.where(rng.random(n) < 0.5, 0.0, rng.gamma(2.0, 1.0, n)).astype(np.float32)
        coarse = np.round(scores, 1)
        filtered = scores.copy()
        filtered[rng.random(n) < 0.3] = -np.inf
        few = np.zeros(n, dtype=np.float32)
        few[rng.choice(n, pool // 2 + 1, replace=False)] = 1.5
        for s in (scores, coarse, filtered, few, np.zeros(n, dtype=np.float32)):
            got = _top_rows(s, pool)
            assert got.dtype == np.int64
            assert len(set(got.tolist())) == got.size
            assert set(got.tolist()) == _reference(s, pool)


def test_top_rows_with_a_pool_as_large_as_the_collection() -> None:
    scores = np.array([0.0, 2.0, -np.inf, 1.0], dtype=np.float32)
    assert sorted(_top_rows(scores, 4).tolist()) == [1, 3]


def _expand_reference(model, terms: list[str]) -> list[ExpandedTerm]:  # type: ignore[no-untyped-def]
    # expand_terms as it was before the per-model memo: every filter per request
    cfg = model.config.search
    kv = model.vectors
    sources = [t for t in dict.fromkeys(terms) if t in kv.key_to_index]
    seen = set(terms)
    out = []
    for term, found in zip(sources, model.expansions.neighbours([kv.key_to_index[t] for t in sources]), strict=True):
        taken = 0
        for row, sim in zip(found.rows[: cfg.expansion_terms + 1].tolist(),
                            found.similarities[: cfg.expansion_terms + 1].tolist(), strict=True):
            if row < 0:
                break
            word = kv.index_to_key[row]
            if word == term:
                continue
            if taken >= cfg.expansion_terms:
                break
            taken += 1
            if sim < cfg.expansion_min_similarity or word in seen:
                continue
            seen.add(word)
            out.append(ExpandedTerm(word, term, round(sim, 4), round(cfg.expansion_weight * sim, 4)))
    return out


def test_memoised_expansions_equal_the_per_request_filters(demo_model) -> None:  # type: ignore[no-untyped-def]
    words = list(demo_model.vectors.index_to_key[:60])
    queries = [words[:8], words[4:12], words[:8], list(reversed(words[:12])), [*words[20:30], "unbekanntwort"]]
    expanded = 0
    for terms in queries + queries:  # the second round answers from the memo only
        got = expand_terms(demo_model, terms)
        assert got == _expand_reference(demo_model, terms)
        assert len({e.term for e in got}) == len(got)
        assert not {e.term for e in got} & set(terms)
        expanded += len(got)
    assert expanded > 0


def test_embedding_candidates_bound_the_embedding_side(demo_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from legalsearch import ranking
    from legalsearch.docvectors import text_vector
    from legalsearch.index import search_index
    from legalsearch.ranking import candidates

    query = "Der Vermieter kündigt die Wohnung wegen Eigenbedarfs"
    qvec = text_vector(
        {kw.term: kw.weight for kw in ranking.analyze_text(demo_model, query).keywords}, demo_model.vectors
    )
    best = search_index(demo_model.index, qvec[None, :], 40).rows_for(0).tolist()
    asked: list[int] = []

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(args[2])
        return search_index(*args, **kwargs)

    monkeypatch.setattr(candidates, "search_index", recording)
    base = demo_model.config
    for wanted, k in ((3, 10), (12, 5), (40, 40)):
        # a copy of the shared model with another setting: the session's demo model stays as it is
        model = replace(demo_model, config=replace(base, search=replace(base.search, embedding_candidates=wanted)))
        rows = ranking.rank(model, query, k=k, mode="embedding").rows.tolist()
        # at least k candidates are fetched, and the embedding mode ranks exactly those, best first
        assert asked[-1] == min(max(wanted, k), max(base.search.candidates, k))
        assert rows == best[:k]
        ranking.rank(model, query, k=k, mode="hybrid")
        assert asked[-1] == min(max(wanted, k), max(base.search.candidates, k))
    assert demo_model.config is base


QUESTIONS = [
    "Darf mein Vermieter wegen Eigenbedarf kündigen?",
    "Kündigung des Arbeitsverhältnisses ohne Abmahnung",
    "Der Käufer verlangt Nacherfüllung, weil die Sache mangelhaft ist",
]


def test_recommend_by_text_is_the_search_ranking(demo_model) -> None:  # type: ignore[no-untyped-def]
    from legalsearch.ranking import recommend, search

    for question in QUESTIONS:
        for filters in (None, {"type": "statute"}, {"type": "decision"}):
            found = search(demo_model, question, k=12, filters=filters, facets=["law", "type"])
            got = recommend(demo_model, text=question, k=12, filters=filters, collapse=False, facets=["law", "type"])
            assert [r.doc_id for r in got.results] == [h.doc_id for h in found.results]
            assert got.results, question
            for r, h in zip(got.results, found.results, strict=True):
                assert r.score == pytest.approx(h.score, abs=1e-6)
                assert r.keywords == h.keywords and r.snippet == h.snippet
                # each signal's part of the fused score, summing to it
                assert set(r.signals) == {"lexical", "word2vec"}
                assert sum(r.signals.values()) == pytest.approx(r.score, abs=1e-5)
            assert got.facets == found.facets


def test_recommend_by_keywords_is_the_search_of_the_keywords(demo_model) -> None:  # type: ignore[no-untyped-def]
    from legalsearch.ranking import recommend, search

    seed = demo_model.index.ids[0]
    terms = [kw.term for kw in demo_model.keywords(seed, 4)]
    got = recommend(demo_model, keywords=terms, k=8, collapse=False)
    found = search(demo_model, " ".join(t.replace("_", " ") for t in terms), k=8)
    assert [r.doc_id for r in got.results] == [h.doc_id for h in found.results]
    assert got.results and got.keywords


def test_recommend_by_text_keeps_exclude_pages_collapse_and_names(demo_model) -> None:  # type: ignore[no-untyped-def]
    from legalsearch.errors import EmptyQueryError
    from legalsearch.ranking import recommend, search

    question = QUESTIONS[0]
    ranked = [h.doc_id for h in search(demo_model, question, k=30).results]
    full = [r.doc_id for r in recommend(demo_model, text=question, k=10, collapse=False).results]
    excluded = recommend(demo_model, text=question, k=8, exclude=full[:2], collapse=False, facets=["type"])
    assert [r.doc_id for r in excluded.results] == [d for d in ranked if d not in full[:2]][:8]
    page = recommend(demo_model, text=question, k=4, offset=4, collapse=False)
    assert [r.doc_id for r in page.results] == full[4:8]
    collapsed = [r.doc_id for r in recommend(demo_model, text=question, k=10).results]
    assert set(collapsed) <= set(ranked) and len(set(collapsed)) == len(collapsed)
    # facets count what the query matches, less the excluded ids
    whole = recommend(demo_model, text=question, k=8, collapse=False, facets=["type"]).facets
    assert whole is not None and excluded.facets is not None
    assert sum(c for _, c in whole["type"]) - sum(c for _, c in excluded.facets["type"]) == 2
    named = recommend(demo_model, text="Was regelt § 14 DMietG bei Eigenbedarf?", k=3)
    assert named.results[0].doc_id == "DMietG § 14"
    assert named.results[0].reasons == ("named in the request: § 14 DMietG",)
    assert all(not r.reasons for r in named.results[1:])
    with pytest.raises(EmptyQueryError):
        recommend(demo_model, text="Qwzxyv Blorptanix")


def test_warm_up_fills_the_keyword_parts_the_requests_would(demo_model) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from legalsearch.ranking import warm_up
    from legalsearch.ranking.explain import _marked_keywords

    assert demo_model.snippets is not None
    cold = replace(demo_model)  # a copy starts with its own, empty caches
    assert cold.ranking_caches is not demo_model.ranking_caches and not cold.ranking_caches.keyword_parts
    ids = range(len(cold.keyword_model.vocabulary))
    lazy = _marked_keywords(cold, ids)
    warm = replace(demo_model)
    warm_up(warm)
    assert warm.ranking_caches.keyword_parts == cold.ranking_caches.keyword_parts
    assert _marked_keywords(warm, ids).ids == lazy.ids
