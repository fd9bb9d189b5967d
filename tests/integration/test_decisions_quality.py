"""Questions about long court decisions: the lexical profiles keep every collection at or above plain BM25.

Trains the demo corpus plus ``corpora/decisions`` (26 long fictional decisions with Tenor, Tatbestand and
Entscheidungsgründe) in a temporary folder and measures the 52 questions of ``corpora/decisions-questions.jsonl``
against a plain BM25 reference built in this test: bm25s, k1 1.5, b 0.75, over the very tokens the model indexed
(``tokencache.lexical_tokens``), each query token counted as often as it occurs. The decisions' profile (plain
defaults) must keep the lexical and the hybrid ranking at or above that reference (nDCG@10, all documents and
type=decision), while the demo's questions (its feedback file's) ranked among the statutes do not drop against a
model trained with the profiles off. Figures: docs/evaluation.md ("Lexical profiles").
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import bm25s
import numpy as np
import pytest
from bm25s.tokenization import Tokenized

from legalsearch import tokencache
from legalsearch.config import TrainConfig, load_config
from legalsearch.engine import Model
from legalsearch.evaluate import Query, evaluate, load_queries, select_split
from legalsearch.lexical import score_matrix
from legalsearch.pipeline import train
from legalsearch.ranking import analyze_text
from legalsearch.tokencache import MANIFEST_KEY

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CORPORA = (ROOT / "corpora" / "demo", ROOT / "corpora" / "decisions")
EXTRA = ROOT / "corpora" / "demo" / "extra"
QUESTIONS = ROOT / "corpora" / "decisions-questions.jsonl"
DEMO_FEEDBACK = ROOT / "corpora" / "demo-feedback.jsonl"
DEPTH = 10
#: measurement noise allowed below the reference (nDCG@10 is a mean over 52 questions: one rank step of one
#: question moves it by ~0.005)
TOLERANCE = 0.01


def _train(tmp: Path, config: TrainConfig, feedback: tuple[Path, ...] = (), split: str = "all") -> Path:
    models = tmp / "models"
    train(list(CORPORA), config, models, extra_text=[EXTRA], cache_dir=tmp.parent / "cache", progress=False,
          feedback=feedback, feedback_split=split)  # type: ignore[arg-type]
    return (models / "current").resolve()


def _config(profiles: bool = True) -> TrainConfig:
    cfg = load_config(ROOT / "configs" / "demo.toml")
    return replace(cfg, lexical=replace(cfg.lexical, profiles=profiles))


def _ndcg(ranked: list[str], relevant: tuple[str, ...]) -> float:
    gains = sum(1.0 / np.log2(i + 2) for i, d in enumerate(ranked[:DEPTH]) if d in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(relevant), DEPTH)))
    return float(gains / ideal)


def plain_bm25(model: Model, cache: Path, queries: list[Query], only_type: str | None = None) -> float:
    """Mean nDCG@10 of plain BM25 (bm25s, k1 1.5, b 0.75) over the model's own lexical tokens."""
    lex = model.config.lexical
    entry = cache / "tokens" / model.manifest[MANIFEST_KEY]
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in tokens]
           for tokens in tokencache.lexical_tokens(entry, lex.title_weight, lex.heading_path)]
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index(Tokenized(ids=ids, vocab=vocab), create_empty_token=False, show_progress=False)
    matrix = score_matrix(retriever)
    doc_ids = [model.documents.get(r).id for r in range(len(model.documents))]
    allowed = (np.array([model.documents.get(r).type == only_type for r in range(len(doc_ids))])
               if only_type else np.ones(len(doc_ids), dtype=bool))
    total = 0.0
    for q in queries:
        terms = [vocab[t] for t in analyze_text(model, q.text).tokens if t in vocab]
        scores = np.asarray(matrix[:, terms].sum(axis=1)).ravel() if terms else np.zeros(len(doc_ids))
        scores = np.where(allowed & (scores > 0), scores, -np.inf)
        order = [i for i in np.lexsort((np.arange(len(doc_ids)), -scores)) if np.isfinite(scores[i])]
        total += _ndcg([doc_ids[i] for i in order], q.relevant)
    return total / len(queries)


def _demo_questions() -> list[Query]:
    """The labelled questions of the demo feedback file (its click records left out)."""
    out = []
    for line in DEMO_FEEDBACK.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line) if line.strip() else {}
        if rec.get("relevant"):
            out.append(Query(str(rec["id"]), str(rec["query"]), tuple(rec["relevant"])))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("decisions")
    return {"profiles": _train(base / "on", _config(True)), "off": _train(base / "off", _config(False)),
            "cache": base / "cache"}


def _scores(model: Model, queries: list[Query], modes: tuple[str, ...], filters: dict[str, str] | None = None) -> (
    dict[str, float]
):
    report = evaluate(model, queries, modes=modes, filters=filters, split="all", progress=False)
    return {m.mode: m.scores["nDCG@10"] for m in report.modes}


def test_decisions_are_not_below_plain_bm25(models: dict[str, Path]) -> None:
    model = Model.load(models["profiles"])
    queries = load_queries(QUESTIONS)
    profiles = {p["type"]: p for p in model.manifest["lexical_profiles"]}
    assert profiles["decision"]["k1"] == 1.5 and profiles["decision"]["source"] == "plain defaults"
    assert profiles["statute"]["k1"] == model.config.lexical.k1 and profiles["statute"]["source"] == "statute defaults"
    for filters in (None, {"type": "decision"}):
        reference = plain_bm25(model, models["cache"], queries, (filters or {}).get("type"))
        ours = _scores(model, queries, ("lexical", "hybrid"), filters)
        figures = json.dumps({"filters": filters, "reference": round(reference, 4), **ours})
        assert ours["lexical"] >= reference - TOLERANCE, figures
        assert ours["hybrid"] >= reference - TOLERANCE, figures


def test_statute_questions_do_not_drop(models: dict[str, Path]) -> None:
    """The demo's own questions ranked among the statutes score as well with the profiles as without them.

    (Among all documents they drop a little, by design: the long decisions, no longer held down by b 0.9, now
    outrank some of the demo's short decision summaries those questions are labelled with; docs/evaluation.md.)"""
    queries = _demo_questions()
    on = _scores(Model.load(models["profiles"]), queries, ("lexical", "hybrid"), {"type": "statute"})
    off = _scores(Model.load(models["off"]), queries, ("lexical", "hybrid"), {"type": "statute"})
    assert on["lexical"] >= off["lexical"] - TOLERANCE, (on, off)
    assert on["hybrid"] >= off["hybrid"] - TOLERANCE, (on, off)


def test_profiles_learn_from_feedback_about_decisions(tmp_path: Path) -> None:
    """With feedback questions about decisions (the tune half), the decision profile is tuned on them; the test
    half is measured and stays at or above plain BM25."""
    model_path = _train(tmp_path / "fb", replace(_config(True), lexical=replace(_config(True).lexical,
                                                                                 profile_min_questions=10)),
                        (QUESTIONS,), "tune")
    model = Model.load(model_path)
    decision = {p["type"]: p for p in model.manifest["lexical_profiles"]}["decision"]
    assert decision["questions"] >= 10 and "default_ndcg@10" in decision["tuned"], decision
    assert decision["tuned"]["ndcg@10"] >= decision["tuned"]["default_ndcg@10"]
    test = select_split(load_queries(QUESTIONS), "test")
    reference = plain_bm25(model, tmp_path / "cache", test)
    ours = _scores(model, test, ("lexical",))
    assert ours["lexical"] >= reference - TOLERANCE, (ours, reference, decision)
