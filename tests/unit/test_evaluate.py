"""Metric plumbing of the evaluation harness: hand-made qrels and runs with known scores, splits, filters."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from legalsearch.errors import InvalidRequestError
from legalsearch.evaluate import (
    MEASURES,
    Query,
    evaluate,
    load_queries,
    measure,
    paired_test,
    parse_filters,
    per_query_measures,
    qrels_path,
    run_file_paths,
    select_split,
    split_of,
    write_run_files,
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


def test_per_query_measures_average_to_the_means() -> None:
    qrels = {"q1": ["a", "b"], "q2": ["c"], "q3": ["d"]}
    run = {"q1": ["a", "x", "b"], "q2": ["x", "y", "c"]}
    per_query = per_query_measures(qrels, run)
    assert set(per_query) == {"q1", "q2", "q3"}
    assert per_query["q3"] == dict.fromkeys(MEASURES, 0.0)
    assert per_query["q2"]["MRR@10"] == pytest.approx(1 / 3) and per_query["q1"]["R@10"] == 1.0
    means = measure(qrels, run)
    for name in MEASURES:
        assert means[name] == pytest.approx(sum(v[name] for v in per_query.values()) / 3)


def test_paired_test_known_values() -> None:
    a = [0.5, 0.6, 0.7, 0.9, 1.0]
    b = [0.4, 0.4, 0.4, 0.5, 0.5]
    test = paired_test("new", "old", a, b)
    diff = [x - y for x, y in zip(a, b, strict=True)]
    mean = sum(diff) / 5
    sd = math.sqrt(sum((d - mean) ** 2 for d in diff) / 4)
    t = mean / (sd / math.sqrt(5))
    assert test.mean_difference == pytest.approx(mean) and test.t_statistic == pytest.approx(t)
    # Student's t with 4 degrees of freedom in closed form: P(|T| > t) = 1 - x (3 - x^2) / 2, x = t / sqrt(t^2 + 4)
    x = t / math.sqrt(t * t + 4)
    assert test.t_p == pytest.approx(1 - x * (3 - x * x) / 2, rel=1e-9)
    # all five differences positive: the exact signed-rank p-value is 2 / 2**5
    assert test.wilcoxon_p == pytest.approx(2 / 32)
    assert (test.wins, test.losses, test.ties, test.queries) == (5, 0, 0, 5)
    mixed = paired_test("x", "y", [0.2, 0.0, 0.5, 0.3], [0.1, 0.3, 0.5, 0.2])
    assert (mixed.wins, mixed.losses, mixed.ties) == (2, 1, 1) and mixed.wilcoxon_p is not None
    assert mixed.wilcoxon_p > 0.5 and mixed.t_p is not None and mixed.t_p > 0.5
    same = paired_test("x", "y", [0.1, 0.2], [0.1, 0.2])
    assert same.t_p is None and same.wilcoxon_p is None and same.ties == 2
    with pytest.raises(InvalidRequestError):
        paired_test("x", "y", [0.1], [0.1, 0.2])


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


def test_run_files_reproduce_the_report(demo_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import ir_measures

    docs = [demo_model.documents.get(r) for r in range(len(demo_model.documents))]
    decisions = [d for d in docs if d.type == "decision" and d.title][:8]
    sections = [d.id for d in docs if d.type != "decision"]
    # each decision's title asks for the decision itself and two statute sections it is unlikely to rank first
    queries = [Query(f"q {i}", d.title, (d.id, sections[i], sections[-1 - i])) for i, d in enumerate(decisions)]
    report = evaluate(demo_model, queries, modes=["reference-bm25", "hybrid"], split="all", progress=False)
    written = write_run_files(report, tmp_path / "runs" / "demo.run")
    assert written[0] == qrels_path(tmp_path / "runs" / "demo.run") == tmp_path / "runs" / "demo.qrels"
    assert len(written) == 5
    qrels = list(ir_measures.read_trec_qrels(str(written[0])))
    assert len(qrels) == 3 * len(queries) and {q.query_id for q in qrels} == {f"q_{i}" for i in range(len(queries))}
    for mode in ("reference-bm25", "hybrid"):
        run_path, tsv_path = run_file_paths(tmp_path / "runs" / "demo.run", mode)
        assert run_path.name == f"demo.{mode}.run" and tsv_path.name == f"demo.{mode}.tsv"
        lines = [line.split() for line in run_path.read_text(encoding="utf-8").splitlines()]
        assert all(len(f) == 6 and f[1] == "Q0" and f[5] == f"legalsearch-{mode}" for f in lines)
        by_query: dict[str, list[tuple[int, str]]] = {}
        for qid, _, doc, rank, _score, _ in lines:
            by_query.setdefault(qid, []).append((int(rank), doc))
        ranked = {q: [d for _, d in sorted(v)] for q, v in by_query.items()}
        assert all(sorted(r for r, _ in v) == list(range(1, len(v) + 1)) for v in by_query.values())
        parsed = list(ir_measures.read_trec_run(str(run_path)))
        assert len(parsed) == len(lines)
        # measured again from the files alone (ids as written there): the same means as the report's
        again = measure({q.query_id: [] for q in qrels} | _qrels_of(qrels), ranked)
        scores = report.mode(mode).scores
        for name in MEASURES:
            assert again[name] == pytest.approx(scores[name], abs=1e-9), (mode, name)
        rows = [r.split("\t") for r in tsv_path.read_text(encoding="utf-8").splitlines()]
        assert rows[0] == ["query_id", *MEASURES, "retrieved"] and len(rows) == len(queries) + 1
        per_query = report.mode(mode).per_query
        for row in rows[1:]:
            original = row[0].replace("_", " ")
            assert float(row[1]) == pytest.approx(per_query[original]["nDCG@10"], abs=1e-6)
            assert int(row[-1]) == len(ranked.get(row[0], []))
    (test,) = report.significance
    assert (test.a, test.b, test.queries) == ("hybrid", "reference-bm25", len(queries))
    assert report.to_dict()["significance"][0]["a"] == "hybrid"
    assert "hybrid vs reference-bm25: nDCG@10" in report.table()


def _qrels_of(qrels: list) -> dict[str, list[str]]:  # type: ignore[type-arg]
    out: dict[str, list[str]] = {}
    for q in qrels:
        out.setdefault(q.query_id, []).append(q.doc_id)
    return out


def test_query_term_weights_damp_repeated_words() -> None:
    from legalsearch.ranking import query_term_weights

    tokens = ["miete", "miete", "miete", "miete", "kündigung"]
    assert query_term_weights(tokens, "count") == {"miete": 4.0, "kündigung": 1.0}
    assert query_term_weights(tokens, "once") == {"miete": 1.0, "kündigung": 1.0}
    assert query_term_weights(tokens, "sqrt") == {"miete": 2.0, "kündigung": 1.0}
    with pytest.raises(InvalidRequestError):
        query_term_weights(tokens, "log")
