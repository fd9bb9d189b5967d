"""The sharded build and search without Ray (in-process executor): BM25 shards with the collection's statistics,
the layout and its verification, a failed shard publishing nothing, and /search answers over K = 2 shards equal
to the single-node model's on the dumped requests (exact index)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legalsearch.config import LexicalConfig, load_config
from legalsearch.errors import ArtifactError
from legalsearch.lexical import build_lexical_index, score_matrix
from legalsearch.model import MANIFEST_NAME, current_version, sha256_file, verify_model
from legalsearch.scale.bm25 import build_shard_lexical, count_shard, merge_counts
from legalsearch.scale.build import shard_bounds, train_sharded

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "corpora" / "demo"
DUMP = ROOT / "tests" / "fixtures" / "dump" / "demo.jsonl.gz"


@pytest.mark.parametrize("method", ["lucene", "bm25+"])
def test_bm25_shards_hold_the_collections_scores(method: str) -> None:
    rng = random.Random(3)
    words = [f"w{i}" for i in range(60)]
    docs = [[rng.choice(words[: rng.randint(5, 60)]) for _ in range(rng.randint(1, 30))] for _ in range(50)]
    config = LexicalConfig(method=method)  # type: ignore[arg-type]
    whole = build_lexical_index(docs, config)
    bounds = shard_bounds(len(docs), 3)
    stats = merge_counts([count_shard(docs[lo:hi]) for lo, hi in bounds])
    assert stats.vocab == dict(whole.vocab)
    full = score_matrix(whole.retriever).tocsr()
    for lo, hi in bounds:
        shard = build_shard_lexical(docs[lo:hi], stats, config)
        assert (score_matrix(shard.retriever).tocsr() != full[lo:hi]).nnz == 0
        terms = {whole.vocab["w1"]: 1.0, whole.vocab["w7"]: 0.5}
        np.testing.assert_array_equal(shard.scores_of_ids(terms), whole.scores_of_ids(terms)[lo:hi])


def test_shard_bounds_are_contiguous_and_even() -> None:
    assert shard_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    with pytest.raises(Exception, match="exceeds"):
        shard_bounds(2, 3)


@pytest.fixture(scope="module")
def sharded_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("sharded-models")
    train_sharded([DEMO], load_config(ROOT / "configs" / "demo.toml"), models, 2, extra_text=[DEMO / "extra"],
                  cache_dir=tmp_path_factory.mktemp("sharded-cache"))
    return models


def test_layout_is_verified_and_lists_each_shard_manifest(sharded_models: Path) -> None:
    version = (sharded_models / "current").resolve()
    top = verify_model(version)
    assert top["layout"] == "sharded-1"
    assert [s["path"] for s in top["shards"]] == ["shards/0", "shards/1"]
    for entry in top["shards"]:
        shard = version / entry["path"]
        assert sha256_file(shard / MANIFEST_NAME) == entry["manifest_sha256"]
        assert f"{entry['path']}/{MANIFEST_NAME}" in top["files"]
        assert verify_model(shard)["shard"]["rows"] == entry["rows"]
    assert top["counts"]["documents"] == top["shards"][-1]["rows"][1]
    verify_model(version / "global")


def test_a_failed_shard_publishes_nothing(sharded_models: Path, tmp_path: Path) -> None:
    before = current_version(sharded_models)
    listing = sorted(p.name for p in sharded_models.iterdir())
    with pytest.raises(ArtifactError, match="injected"):
        train_sharded([DEMO], load_config(ROOT / "configs" / "demo.toml"), sharded_models, 2,
                      extra_text=[DEMO / "extra"], cache_dir=tmp_path / "cache", fail_shard=1)
    assert current_version(sharded_models) == before
    assert sorted(p.name for p in sharded_models.iterdir()) == listing


def test_search_over_two_shards_equals_one_node(sharded_models: Path, demo_model: Any) -> None:
    from legalsearch import ranking
    from legalsearch.errors import LegalSearchError
    from legalsearch.scale import search as sharded

    loaded = sharded.load_shards(sharded_models)
    from dumped import dumped_searches

    requests = dumped_searches()
    assert len(requests) >= 50
    same, named = 0, 0
    for call in requests:
        try:
            one = ranking.search(demo_model, **call)
        except LegalSearchError as exc:
            with pytest.raises(type(exc)):
                loaded.search(**call)
            same += 1
            continue
        many = loaded.search(**call)
        assert one.expanded_terms == many.expanded_terms
        assert one.query_terms == many.query_terms
        if [h.doc_id for h in one.results] != [h.doc_id for h in many.results]:
            # one node ranks the sections a query names first; shards do not yet (docs/scale.md)
            named += any(h.cited_in_query for h in one.results)
            continue
        same += 1
        # the same candidates, scores and fusion: only the document-vector products may round differently
        np.testing.assert_allclose([h.score for h in one.results], [h.score for h in many.results], atol=1e-5)
        assert [h.lexical_score for h in one.results] == [h.lexical_score for h in many.results]
        assert [h.snippet for h in one.results] == [h.snippet for h in many.results]
        assert [h.matched_terms for h in one.results] == [h.matched_terms for h in many.results]
        assert [h.keywords for h in one.results] == [h.keywords for h in many.results]
    print(f"{same} of {len(requests)} answers equal; the others rank a section the query names first: {named}")
    assert same + named == len(requests)
