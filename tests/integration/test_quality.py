"""Retrieval-quality regression: a reduced model must keep its measured margin over the reference BM25.

Trains on the BGB and three related laws from the shared archive (small vectors, few epochs, one worker),
evaluates a fixed slice of the GerLayQA questions (test half, BGB collection) and compares the hybrid
search with the fixed reference BM25 of the same run. The figures asserted below were measured with
exactly this setup (see docs/evaluation.md); a silent drop in quality fails here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from plugin_model import extract_laws

from legalsearch.config import TrainConfig, Word2VecConfig
from legalsearch.engine import Model
from legalsearch.evaluate import evaluate, load_queries, select_split
from legalsearch.pipeline import train

pytestmark = [pytest.mark.shared, pytest.mark.slow]

LAWS = ("gesetze/b/bgb/index.md", "gesetze/b/bgbeg/index.md", "gesetze/w/woeigg/index.md",
        "gesetze/h/hgb/index.md")
#: the first N questions of the test half
QUESTIONS = 300
#: measured on this setup (2026-11-28): reference nDCG@10 0.0812, R@100 0.3327; hybrid 0.1093, 0.4128;
#: embedding alone 0.0202. Ratios to reference-bm25. The tolerance absorbs drift across platforms and runs: two
#: runs on the same machine gave hybrid R@100 0.4128 and 0.4180 (training does not repeat exactly; cause open)
MIN_NDCG_RATIO = 1.34
MIN_R100_RATIO = 1.24
#: the embedding side alone, nDCG@10 / reference: near 0 when the word vectors are degenerate
MIN_EMBEDDING_RATIO = 0.2
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def quality_model(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reduced model: BGB, EGBGB, WEG, HGB; 64-dimensional CBOW vectors, 20 epochs, one worker, fixed seed."""
    laws = extract_laws(shared_dir / "corpora" / "gesetze-markdown.tar.gz", LAWS, tmp_path_factory.mktemp("laws"))
    # CBOW with many epochs: with the default 5 skip-gram epochs, 0.4M words leave the vectors degenerate
    w2v = replace(Word2VecConfig(), vector_size=64, sg=False, epochs=20, sample=1e-3, workers=1, seed=1)
    cfg = replace(TrainConfig(), word2vec=w2v)
    models = tmp_path_factory.mktemp("models")
    train([laws], cfg, models, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)
    return (models / "current").resolve()


def test_hybrid_keeps_its_margin_over_reference_bm25(shared_dir: Path, quality_model: Path) -> None:
    queries = select_split(load_queries(shared_dir / "eval" / "gerlayqa-dev.jsonl"), "test")[:QUESTIONS]
    report = evaluate(
        Model.load(quality_model), queries, modes=("reference-bm25", "embedding", "hybrid"), filters={"law": "BGB"},
        split="all", progress=False,
    )
    scores = {m.mode: m.scores for m in report.modes}
    ref, hybrid = scores["reference-bm25"], scores["hybrid"]
    assert report.unknown_relevant <= 2, report.to_dict()
    assert ref["nDCG@10"] > 0.03, "the reference itself dropped: the collection or the questions changed"
    assert hybrid["nDCG@10"] >= (MIN_NDCG_RATIO - TOLERANCE) * ref["nDCG@10"], report.table()
    assert hybrid["R@100"] >= (MIN_R100_RATIO - TOLERANCE) * ref["R@100"], report.table()
    assert scores["embedding"]["nDCG@10"] >= (MIN_EMBEDDING_RATIO - TOLERANCE) * ref["nDCG@10"], report.table()
