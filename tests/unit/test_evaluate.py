"""Metric plumbing of the evaluation harness: hand-made qrels and runs with known scores, splits, filters."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from legalsearch.errors import InvalidRequestError
from legalsearch.evaluate import (
    Query,
    evaluate,
    load_queries,
    measure,
    parse_filters,
    select_split,
    split_of,
)


def test_measure_known_values() -> None:
    qrels = {"q1": ["a", "b"], "q2": ["c"], "q3": ["d"]}
    run = {"q1": ["a", "x", "b"], "q2": ["x", "y", "c"]}  # q3 retrieves nothing: it counts as 0
    scores = measure(qrels, run)
    ndcg_q1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg_q2 = 1 / math.log2(4)
    assert scores["nDCG@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 3, abs=1e-6)
    assert scores["MRR@10"] == pytest.approx((1 + 1 / 3) / 3, abs=1e-6)
    assert scores["R@10"] == pytest.approx(2 / 3, abs=1e-6)
    assert scores["R@100"] == pytest.approx(2 / 3, abs=1e-6)


def test_measure_keeps_the_run_order_not_the_id_order() -> None:
    # ir-measures would break equal scores by doc id; the harness's own order must win
    assert measure({"q": ["a"]}, {"q": ["z", "a"]})["MRR@10"] == pytest.approx(0.5)
    assert measure({"q": ["a"]}, {"q": ["a", "z"]})["MRR@10"] == pytest.approx(1.0)


def test_measure_cutoffs() -> None:
    run = {"q": [f"x{i}" for i in range(20)] + ["a"]}
    scores = measure({"q": ["a"]}, run)
    assert scores["R@10"] == 0.0 and scores["nDCG@10"] == 0.0 and scores["MRR@10"] == 0.0
    assert scores["R@100"] == 1.0


def test_measure_refuses_no_query() -> None:
    with pytest.raises(InvalidRequestError):
        measure({}, {})


def test_split_is_stable_and_balanced() -> None:
    ids = [f"gerlayqa-dev-{i:04d}" for i in range(1, 1001)]
    halves = [split_of(i) for i in ids]
    assert halves == [split_of(i) for i in ids]
    assert 400 < halves.count("test") < 600
    queries = [Query(i, "frage", ("BGB § 1",)) for i in ids]
    tune, test = select_split(queries, "tune"), select_split(queries, "test")
    assert {q.id for q in tune}.isdisjoint(q.id for q in test)
    assert len(tune) + len(test) == len(select_split(queries, "all")) == 1000
    with pytest.raises(InvalidRequestError):
        select_split(queries, "dev")  # type: ignore[arg-type]


def test_parse_filters() -> None:
    assert parse_filters(["law=BGB"]) == {"law": "BGB"}
    assert parse_filters(["law=BGB", "law=HGB", "type = section"]) == {"law": ["BGB", "HGB"], "type": "section"}
    with pytest.raises(InvalidRequestError):
        parse_filters(["lawBGB"])


def test_load_queries(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps({"id": "1", "query": "Kündigung", "relevant": ["BGB § 573"]}) + "\n\n", encoding="utf-8"
    )
    assert load_queries(path) == [Query("1", "Kündigung", ("BGB § 573",))]
    path.write_text('{"id": "1", "query": "x"}\n', encoding="utf-8")
    with pytest.raises(InvalidRequestError, match=r"q\.jsonl:1"):
        load_queries(path)


def test_evaluate_on_the_demo_model(demo_model) -> None:  # type: ignore[no-untyped-def]
    # a document's own title as the question: every mode should find it, and a filter that excludes it must not
    docs = [demo_model.documents.get(r) for r in range(len(demo_model.documents))]
    decisions = [d for d in docs if d.type == "decision" and d.title][:6]
    assert decisions, "the demo corpus should hold decisions"
    queries = [Query(f"q{i}", d.title, (d.id,)) for i, d in enumerate(decisions)]
    report = evaluate(demo_model, queries, split="all", progress=False)
    assert [m.mode for m in report.modes] == ["reference-bm25", "lexical", "embedding", "hybrid"]
    assert report.queries == len(queries) and report.unknown_relevant == 0
    for m in report.modes:
        assert m.scores["R@100"] > 0.5, m
    assert report.to_dict()["hybrid"]["nDCG@10"] == pytest.approx(report.modes[3].scores["nDCG@10"], abs=1e-4)
    others = sorted({d.type for d in docs} - {"decision"})
    assert others, "the demo corpus should hold more than decisions"
    filtered = evaluate(demo_model, queries, filters={"type": others}, split="all", progress=False)
    for m in filtered.modes:
        assert m.scores["R@100"] == 0.0, m


def test_query_term_weights_damp_repeated_words() -> None:
    from legalsearch.ranking import query_term_weights

    tokens = ["miete", "miete", "miete", "miete", "kündigung"]
    assert query_term_weights(tokens, "count") == {"miete": 4.0, "kündigung": 1.0}
    assert query_term_weights(tokens, "once") == {"miete": 1.0, "kündigung": 1.0}
    assert query_term_weights(tokens, "sqrt") == {"miete": 2.0, "kündigung": 1.0}
    with pytest.raises(InvalidRequestError):
        query_term_weights(tokens, "log")
