"""Training with feedback: the demo model trained with the demo feedback file (``legalsearch train --feedback``),
its artifacts, its /search signals and their ablations, the eval guard and /recommend's co-relevance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from legalsearch.api.app import create_app
from legalsearch.config import ServiceSettings
from legalsearch.engine import Model
from legalsearch.errors import InvalidRequestError
from legalsearch.evaluate import evaluate, load_queries
from legalsearch.feedback import FEEDBACK_DIR, FILES
from legalsearch.model import verify_model
from legalsearch.ranking import FEEDBACK_MODES, rank, search, similar_terms
from legalsearch.recommend_eval import fit_model_fusion
from legalsearch.relatedness import FEEDBACK_FILES

ROOT = Path(__file__).resolve().parents[2]
FEEDBACK = ROOT / "corpora" / "demo-feedback.jsonl"
QUESTIONS = ROOT / "tests" / "fixtures" / "recommend" / "questions.jsonl"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-m", "legalsearch.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The demo model trained by the CLI with the demo feedback file (the demo config: one worker, fixed seed)."""
    models = tmp_path_factory.mktemp("feedback-models")
    done = run("train", "--corpus", "corpora/demo", "--extra-text", "corpora/demo/extra", "--config",
               "configs/demo.toml", "--feedback", str(FEEDBACK), "--models-dir", str(models), "--cache-dir",
               str(tmp_path_factory.mktemp("feedback-cache")), "-q", "--json")
    assert done.returncode == 0, done.stderr
    return (models / "current").resolve(), json.loads(done.stdout)


@pytest.fixture(scope="module")
def feedback_model(trained: tuple[Path, dict[str, object]]) -> Model:
    return Model.load(trained[0])


def test_feedback_is_a_verified_training_input(trained: tuple[Path, dict[str, object]]) -> None:
    path, output = trained
    manifest = verify_model(path)
    info = manifest["feedback"]
    # 37 labelled questions and 7 clicks on 5 queries
    assert info["questions"] == 42 and info["records"] == 44 and info["split"] == "all"
    assert len(info["sha256"]) == 64 and info["skipped"] == {} and "42 questions" in str(output["feedback"])
    assert set(info["fusion"]) == {"hybrid", "hybrid-without-votes", "hybrid-without-prior"}
    for name in FILES.values():
        assert f"{FEEDBACK_DIR}/{name}" in manifest["files"], name
    assert set(FEEDBACK_FILES.values()) <= set(manifest["files"])  # co-relevance for /recommend
    assert "feedback" in manifest["timings"]
    assert manifest["config"]["feedback"]["neighbours"] == 30


def test_the_hybrid_without_feedback_is_the_model_trained_without_it(feedback_model: Model,
                                                                     demo_model: Model) -> None:
    # training repeats exactly with one worker: the feedback stage must change nothing else
    for query in ("Kündigung wegen Eigenbedarf", "Mietminderung bei Schimmel", "Urlaub im Arbeitsvertrag",
                  "§ 14 DMietG Schadensersatz"):
        plain = rank(demo_model, query, 20)
        ablated = rank(feedback_model, query, 20, mode="hybrid-without-feedback")
        assert plain.rows.tolist() == ablated.rows.tolist()
        np.testing.assert_allclose(plain.scores, ablated.scores)


def test_votes_bring_the_answers_of_similar_questions(feedback_model: Model) -> None:
    question = "Der Vermieter sagt, er braucht meine Wohnung für seinen Sohn. Muss ich raus?"
    votes = rank(feedback_model, question, 5, mode="votes")
    assert feedback_model.index.ids[int(votes.rows[0])] in {"DMietG § 14", "DEMO-BGH-VIII-ZR-12-21"}
    hits = search(feedback_model, question, k=5)
    assert "DMietG § 14" in [h.doc_id for h in hits.results]
    filtered = rank(feedback_model, question, 10, filters={"type": "decision"})
    assert all(feedback_model.documents.record(int(r))["type"] == "decision" for r in filtered.rows)


def test_the_demo_feedback_associates_lay_words_with_legal_terms(trained: tuple[Path, dict[str, object]],
                                                                   feedback_model: Model, demo_model: Model) -> None:
    # the Eigenbedarf questions (demo-fb-01 to -03, the clicks on "vermieter braucht wohnung für sohn") say
    # "Wohnung" and "Vermieter" and are answered by DMietG § 14, whose keywords say "eigenbedarf"; the rent
    # questions say "zahlen" where the statute says "Entrichtung"
    associations = feedback_model.feedback.associations if feedback_model.feedback is not None else None
    assert associations is not None
    assert "eigenbedarf" in [a.term for a in associations.of("wohnung")]
    assert associations.of("zahl")[0].term == "entrichtung"
    assert demo_model.feedback is None  # a model trained without feedback has no associations

    # /terms/{t}/similar (and similar-terms): the associated keywords first, scored by their NPMI
    first = similar_terms(feedback_model, "zahlen", k=5)[0]
    assert (first.term, first.score) == ("entrichtung", associations.of("zahl")[0].npmi)
    assert "entrichtung" not in [s.term for s in similar_terms(demo_model, "zahlen", k=5)]
    with TestClient(create_app(ServiceSettings(models_dir=trained[0].parent, watch_interval_s=0))) as client:
        r = client.get("/terms/Wohnung/similar", params={"k": 5})
    assert r.status_code == 200, r.text
    wohnung = {a.term: a.npmi for a in associations.of("wohnung")}
    assert {s["term"]: s["score"] for s in r.json()["similar"]} == wohnung

    # query expansion: the associated keyword with weight association_weight x NPMI; none without feedback
    question = "Der Vermieter will meine Wohnung"
    expanded = {e.term: e for e in search(feedback_model, question, k=3).expanded_terms}
    eigenbedarf = expanded["eigenbedarf"]
    assert eigenbedarf.source in {"vermieter", "wohnung"}
    weight = feedback_model.config.feedback.association_weight
    assert eigenbedarf.weight == pytest.approx(weight * eigenbedarf.similarity, abs=1e-4)
    assert "eigenbedarf" not in {e.term for e in search(demo_model, question, k=3).expanded_terms}


def test_eval_measures_each_signal_and_refuses_questions_it_trained_on(feedback_model: Model,
                                                                       tmp_path: Path) -> None:
    report = evaluate(feedback_model, load_queries(QUESTIONS), split="all", progress=False)
    assert {m.mode for m in report.modes} >= set(FEEDBACK_MODES)
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(line + "\n" for line in FEEDBACK.read_text(encoding="utf-8").splitlines()
                                if '"id"' in line), encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="trained this model's feedback"):
        evaluate(feedback_model, load_queries(labelled), modes=["hybrid"], split="all", progress=False)


def test_fit_recommend_fuses_the_co_relevance_of_training(trained: tuple[Path, dict[str, object]],
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(trained[0], folder)
    model = Model.load(folder)
    assert model.corelevance is not None
    with pytest.raises(InvalidRequestError, match="training feedback"):
        fit_model_fusion(model, load_queries(QUESTIONS), {"type": "statute"}, feedback=True, width=8,
                         progress=False)
    fusion, _ = fit_model_fusion(model, load_queries(QUESTIONS), {"type": "statute"}, feedback=False, width=8,
                                 progress=False)
    assert "feedback" in fusion.signals
    again = Model.load(folder)  # verifies every file, the co-relevance of training included
    assert again.corelevance is not None and again.fusion is not None


def test_bad_feedback_stops_the_run_early_with_one_line(tmp_path: Path) -> None:
    missing = run("train", "--feedback", str(tmp_path / "absent.jsonl"), "--models-dir", str(tmp_path / "m"), "-q")
    last = missing.stderr.strip().splitlines()[-1]
    assert missing.returncode == 3 and last.startswith("error: ") and "absent.jsonl" in last
    split = run("train", "--feedback", str(FEEDBACK), "--feedback-split", "half", "--models-dir",
                str(tmp_path / "m"), "-q")
    assert split.returncode == 2 and "feedback-split" in split.stderr
