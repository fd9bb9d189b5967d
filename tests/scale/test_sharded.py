"""The sharded build and search without Ray (in-process executor): BM25 shards with the collection's statistics,
the layout and its verification, a failed shard publishing nothing, and /search answers over K = 2 shards equal
to the single-node model's on the dumped requests (exact index)."""

from __future__ import annotations

import json
import math
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


def test_the_collection_statistics_are_the_single_nodes(sharded_models: Path, demo_model: Any) -> None:
    """K = 2 gives the single-node build's keyword vocabulary and idf, lexical vocabulary, document frequencies
    and N (the front's), and every shard scores with them."""
    from legalsearch.scale import search as sharded

    loaded = sharded.load_shards(sharded_models)
    front = loaded.front
    assert front.keyword_model.vocabulary == demo_model.keyword_model.vocabulary
    np.testing.assert_array_equal(front.keyword_model.idf, demo_model.keyword_model.idf)
    assert dict(front.lexical.vocab) == dict(demo_model.lexical.vocab)
    np.testing.assert_array_equal(front.lexical._df, demo_model.lexical._df)
    assert front.lexical.n_docs == demo_model.lexical.n_docs == len(front.documents)
    assert list(front.index.ids) == list(demo_model.index.ids)
    full = score_matrix(demo_model.lexical.retriever).tocsr()
    for shard in loaded.shards:
        lo, n = shard.offset, len(shard.model.documents)
        assert (score_matrix(shard.model.lexical.retriever).tocsr() != full[lo:lo + n]).nnz == 0


def _close(a: Any, b: Any) -> bool:
    """Equal up to the last printed digits of scores (float sums in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=2e-4)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def replay(client: Any, version: str | None) -> list[Any]:
    """The dump's requests sent to ``client``: each answer as recorded (``bench.dump.send``)."""
    from bench.dump import read_dump, send

    _, recorded = read_dump(DUMP)
    return [(call, send(client, call, version)) for call, _ in recorded]


def replay_both(single: Path, sharded_dir: Path) -> tuple[list[Any], list[Any]]:
    """The dump replayed through the single-node app of ``single`` and the sharded app of ``sharded_dir``."""
    from fastapi.testclient import TestClient

    from bench.dump import in_process_client, served_version
    from legalsearch.config import ServiceSettings
    from legalsearch.scale import search as sharded
    from legalsearch.scale.app import create_sharded_app

    with in_process_client(single) as client:
        one = replay(client, served_version(client))
    loaded = sharded.load_shards(sharded_dir)
    app = create_sharded_app(loaded.front, loaded.shards, ServiceSettings(models_dir=sharded_dir))
    with TestClient(app) as client:
        many = replay(client, loaded.front.version)
    return one, many


def different(one: list[Any], many: list[Any]) -> list[str]:
    """The requests whose answers differ (status, or JSON beyond score rounding)."""
    from bench.dump import answer_bytes

    out = []
    for (call, a), (_, b) in zip(one, many, strict=True):
        same = a.status == b.status
        if same and a.body is not None and b.body is not None:
            try:
                same = _close(json.loads(answer_bytes(a)), json.loads(answer_bytes(b)))
            except ValueError:
                same = a.body == b.body
        if not same:
            out.append(f"{call.kind} {call.method} {call.path[:90]} {(call.body or '')[:90]}: {a.status} {b.status}")
    return out


def test_the_dumped_requests_are_answered_as_one_node(sharded_models: Path, demo_models_dir: Path) -> None:
    """/search, /recommend, /suggest and the failing requests of the dump, through the single-node app and the
    sharded app over K = 2 in-process shards (exact index): the same answers."""
    one, many = replay_both(demo_models_dir, sharded_models)
    kinds = {call.kind for call, _ in one}
    assert {"search_plain", "search_filtered", "search_facets", "recommend_id", "recommend_text"} <= kinds
    wrong = different(one, many)
    assert not wrong, f"{len(wrong)} of {len(one)} answers differ:\n" + "\n".join(wrong[:15])
