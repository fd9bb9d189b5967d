"""Lexical profiles: per document type BM25 parameters, comparable scores, saved with the index, tuned on feedback."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from reference import lucene_bm25

from legalsearch.config import LexicalConfig
from legalsearch.lexical import (
    LexicalProfile,
    TuneQuestion,
    _tf_matrix,
    bm25_values,
    build_lexical_index,
    default_profiles,
    load_lexical_index,
    profiles_of,
    save_lexical_index,
    score_matrix,
    tune_profiles,
)

DOCS = [
    ["miete", "kündigung", "miete"],
    ["kündigung", "frist"],
    ["kaufvertrag", "mangel", "frist", "frist", "kündigung", "miete", "urteil", "gründe", "tatbestand", "tenor"],
    ["miete", "mangel", "urteil", "gründe", "tatbestand", "tenor", "kosten", "streitwert"],
]
TYPES = ["statute", "statute", "decision", "decision"]


def _bm25(term: str, doc: list[str], k1: float, b: float) -> float:
    return lucene_bm25(term, doc, DOCS, k1, b)


def _index(config: LexicalConfig | None = None, weighting: str = "sqrt"):  # type: ignore[no-untyped-def]
    cfg = config or LexicalConfig()
    return build_lexical_index(DOCS, cfg, default_profiles(TYPES, cfg, weighting), TYPES, weighting)


def test_defaults_statutes_keep_their_parameters_others_get_plain_bm25() -> None:
    profiles = {p.type: p for p in default_profiles([*TYPES, "annex"], LexicalConfig(), "sqrt")}
    assert profiles["statute"].key == (2.0, 0.9, "sqrt") and profiles["annex"].key == (2.0, 0.9, "sqrt")
    assert profiles["decision"].key == (1.5, 0.75, "count") and profiles["decision"].source == "plain defaults"
    assert profiles["decision"].documents == 2
    assert default_profiles(TYPES, replace(LexicalConfig(), profiles=False), "sqrt") == []


def test_each_type_is_scored_with_its_profile_over_shared_idf() -> None:
    index = _index()
    scores = index.scores({"miete": 1.0, "mangel": 1.0})
    for row in range(4):
        k1, b = (2.0, 0.9) if TYPES[row] == "statute" else (1.5, 0.75)
        want = _bm25("miete", DOCS[row], k1, b) + _bm25("mangel", DOCS[row], k1, b)
        assert scores[row] == pytest.approx(want, rel=1e-5)


def test_a_model_without_profiles_scores_as_before() -> None:
    cfg = LexicalConfig()
    plain = build_lexical_index(DOCS, cfg)
    off = build_lexical_index(DOCS, replace(cfg, profiles=False), [], TYPES)
    query = {"miete": 1.0, "frist": 0.5}
    assert np.array_equal(plain.scores(query), off.scores(query)) and not off.groups


def test_query_weights_of_a_profile_keep_the_callers_total() -> None:
    index = _index()
    ids = {index.vocab["miete"]: math.sqrt(4), index.vocab["mangel"]: 1.0}  # sqrt weighting of 4 and 1
    counts = {index.vocab["miete"]: 4, index.vocab["mangel"]: 1}
    scores = index.scores_of_ids(ids, counts)
    # decisions weigh by count (4, 1), rescaled to the sqrt total 3: 2.4 and 0.6
    want = 2.4 * _bm25("miete", DOCS[3], 1.5, 0.75) + 0.6 * _bm25("mangel", DOCS[3], 1.5, 0.75)
    assert scores[3] == pytest.approx(want, rel=1e-5)
    assert scores[0] == pytest.approx(2.0 * _bm25("miete", DOCS[0], 2.0, 0.9), rel=1e-5)
    assert index.reweights


def test_profiles_are_saved_and_loaded_with_the_index(tmp_path: Path) -> None:
    index = _index()
    save_lexical_index(index, tmp_path)
    loaded = load_lexical_index(tmp_path)
    query = {"miete": 1.0, "urteil": 0.3}
    assert np.array_equal(loaded.scores(query), index.scores(query))
    assert loaded.profiles == index.profiles
    assert [p["type"] for p in profiles_of(tmp_path)] == ["decision", "statute"]


def test_tuning_formula_is_bm25s() -> None:
    import bm25s
    from bm25s.tokenization import Tokenized

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in d] for d in DOCS]
    retriever = bm25s.BM25(k1=1.2, b=0.5, method="lucene")
    retriever.index(Tokenized(ids=ids, vocab=vocab), create_empty_token=False, show_progress=False)
    tf, lengths = _tf_matrix(ids, len(vocab))
    assert np.allclose(bm25_values(tf, lengths, 1.2, 0.5).toarray(), score_matrix(retriever).toarray(), atol=1e-6)


def test_tuning_needs_enough_questions_and_leaves_statutes_alone() -> None:
    index = _index()
    v = index.vocab
    asked = [TuneQuestion({v["miete"]: 1, v["mangel"]: 1}, frozenset({3}))] * 3
    profiles = list(index.profiles)
    assert tune_profiles([[v[t] for t in d] for d in DOCS], index.n_terms, TYPES, profiles, asked, 4) == profiles
    tuned = {p.type: p for p in tune_profiles([[v[t] for t in d] for d in DOCS], index.n_terms, TYPES, profiles,
                                             asked, 3)}
    assert tuned["decision"].questions == 3 and "default_ndcg@10" in tuned["decision"].tuned
    assert tuned["statute"] == {p.type: p for p in profiles}["statute"]
    # already perfect with the defaults: nothing to gain, the defaults stay
    assert tuned["decision"].source == "plain defaults"


def test_profile_records_are_plain_data() -> None:
    p = LexicalProfile("decision", 1.5, 0.75, "count", "plain defaults", 2)
    assert p.key == (1.5, 0.75, "count")
