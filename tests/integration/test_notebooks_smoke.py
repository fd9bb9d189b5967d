"""The analysis helpers the notebooks use, on the demo model (the notebooks themselves run in `make test-notebooks`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from legalsearch import analysis
from legalsearch.errors import InvalidRequestError


def test_corpus_statistics_count_every_document(demo_model) -> None:  # type: ignore[no-untyped-def]
    by_law = analysis.corpus_statistics(demo_model, by="law")
    by_type = analysis.corpus_statistics(demo_model, by="type")
    assert sum(s.documents for s in by_law) == len(demo_model.documents)
    assert sum(s.documents for s in by_type) == len(demo_model.documents)
    assert {"DMietG", "DArbG", "DVertrG"} <= {s.group for s in by_law}
    assert [s.documents for s in by_law] == sorted((s.documents for s in by_law), reverse=True)
    with pytest.raises(InvalidRequestError):
        analysis.corpus_statistics(demo_model, by="no-such-field")


def test_law_keywords_are_the_sections_mean_weights(demo_model) -> None:  # type: ignore[no-untyped-def]
    kws = analysis.group_keywords(demo_model, "DMietG", k=5)
    rows = analysis.group_rows(demo_model, "law", "DMietG")
    top = kws[0]
    total = sum(k.weight for r in rows for k in demo_model.keywords(demo_model.index.ids[int(r)]) if k.term == top.term)
    assert top.weight == pytest.approx(total / rows.size)
    assert any(k.term.startswith("miete") for k in kws)


def test_vocabulary_orders(demo_model) -> None:  # type: ignore[no-untyped-def]
    common = analysis.vocabulary_terms(demo_model, k=5, order="df")
    rare = analysis.vocabulary_terms(demo_model, k=5, order="idf", min_df=2)
    assert common[0].df == int(demo_model.keyword_model.df.max())
    assert all(v.df >= 2 for v in rare) and rare[0].idf >= common[0].idf


def test_vector_key_and_term_map(demo_model) -> None:  # type: ignore[no-untyped-def]
    assert analysis.vector_key(demo_model, "Kündigung") == "kündigung"
    tmap = analysis.term_map(demo_model, {"a": ["Miete", "Mieter", "Nichtsowortxyz"], "b": ["Arbeitnehmer", "Urlaub"]})
    assert "Nichtsowortxyz" in tmap.missing
    assert {p.group for p in tmap.points} == {"a", "b"} and len(tmap.points) == 4
    again = analysis.term_map(demo_model, {"a": ["Miete", "Mieter"], "b": ["Arbeitnehmer", "Urlaub"]})
    assert [(p.x, p.y) for p in again.points] == [(p.x, p.y) for p in tmap.points]


def test_bm25_hits_exclude_the_seed(demo_model) -> None:  # type: ignore[no-untyped-def]
    ref = analysis.reference_bm25(demo_model)
    seed = "DMietG § 8"
    hits = analysis.bm25_hits(demo_model, ref, analysis.document_query(demo_model, seed), k=3, exclude=[seed])
    assert len(hits) == 3 and seed not in {h.doc_id for h in hits}
    assert analysis.bm25_hits(demo_model, ref, analysis.document_query(demo_model, seed), k=1)[0].doc_id == seed


def test_eval_runs_with_and_without_per_query(tmp_path: Path) -> None:
    assert analysis.load_eval_runs(tmp_path / "absent") == []
    base = {"queries": 2, "model": "m1", "split": "test", "seconds": {"hybrid": 1.0}}
    (tmp_path / "eval-a.json").write_text(json.dumps({**base, "hybrid": {"nDCG@10": 0.5, "R@100": 0.9}}))
    per_query = {"hybrid": {"q1": {"nDCG@10": 0.0}, "q2": {"nDCG@10": 1.0}},
                 "reference-bm25": {"q1": {"nDCG@10": 0.7}, "q2": {"nDCG@10": 0.2}}}
    (tmp_path / "eval-b.json").write_text(json.dumps({**base, "hybrid": {"nDCG@10": 0.5}, "per_query": per_query}))
    (tmp_path / "eval-broken.json").write_text("{not json")
    runs = analysis.load_eval_runs(tmp_path)
    assert [r.name for r in runs] == ["eval-a", "eval-b"]
    assert runs[0].scores == {"hybrid": {"nDCG@10": 0.5, "R@100": 0.9}} and not runs[0].per_query
    worst = analysis.worst_queries(runs[1], "hybrid", n=1)
    assert [(w.query_id, w.value, w.baseline) for w in worst] == [("q1", 0.0, 0.7)]
    with pytest.raises(InvalidRequestError):
        analysis.worst_queries(runs[0], "hybrid")


def test_citation_questions_and_worst_misses(demo_model) -> None:  # type: ignore[no-untyped-def]
    from legalsearch.evaluate import evaluate

    questions = analysis.citation_questions(demo_model)
    decisions = [d for r in range(len(demo_model.documents)) if (d := demo_model.documents.get(r)).type == "decision"]
    assert 0 < len(questions) <= len(decisions)
    by_id = {d.id: d for d in decisions}
    for q in questions:
        doc = by_id[q.id]
        assert q.text == doc.title and q.relevant
        for section in q.relevant:
            law, number = section.split(" § ")
            assert f"§ {number}" in doc.text and law in doc.text and section in demo_model.index.rows
    first = by_id["DEMO-BGH-VIII-ZR-12-21"]  # "nach § 13 Abs. 2 Nr. 2 DMietG ... (§ 14 Abs. 1 DMietG)"
    assert "§ 13 Abs. 2 Nr. 2 DMietG" in first.text
    assert next(q for q in questions if q.id == first.id).relevant == ("DMietG § 13", "DMietG § 14")
    report = evaluate(demo_model, questions, modes=["reference-bm25", "hybrid"], filters={"type": "statute"},
                      split="all", progress=False)
    misses = analysis.worst_misses(demo_model, report, questions, "reference-bm25", n=4, shown=3)
    values = report.mode("reference-bm25").per_query
    assert [m.value for m in misses] == sorted(v["nDCG@10"] for v in values.values())[:4]
    for m in misses:
        ranked = report.mode("reference-bm25").run[m.query_id]
        assert [r.doc_id for r in m.returned] == [d for d, _ in ranked[:3]]
        assert all(r.relevant == (r.doc_id in m.relevant_ids()) for r in m.returned)
        assert m.best_other == report.mode("hybrid").per_query[m.query_id]["nDCG@10"]
        hits = [i for i, (d, _) in enumerate(ranked, 1) if d in m.relevant_ids()]
        assert m.first_relevant_rank == (hits[0] if hits else None)
        assert all(title != "(not in the model)" for _, title in m.relevant)
    with pytest.raises(InvalidRequestError):
        analysis.worst_misses(demo_model, report, questions, "lexical")
