"""Integration: train on the bundled demo corpus and check the model folder end to end."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from plugin_model import memory_mapped

from legalsearch import pipeline
from legalsearch.config import load_config
from legalsearch.engine import Model
from legalsearch.errors import ArtifactError, CorpusError
from legalsearch.model import current_version, list_models, verify_model
from legalsearch.pipeline import train
from legalsearch.ranking import recommend, search

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "corpora" / "demo"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"


def test_model_folder_is_complete_and_verified(demo_model_path: Path) -> None:
    manifest = verify_model(demo_model_path)
    for key in ("schema_version", "package_version", "git_sha", "config", "corpus_hash", "counts", "files",
                "timings"):
        assert key in manifest, key
    for name in ("ids.txt", "index.faiss", "vectors.npy", "vectors_keys.txt", "docvectors.npy", "vocabulary.tsv",
                 "phrases.tsv",
                 "documents.jsonl", "expansion_rows.npy", "snippets_terms.npy"):
        assert name in manifest["files"], name
    for rel, info in manifest["files"].items():
        data = (demo_model_path / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], rel
    ids = (demo_model_path / "ids.txt").read_text(encoding="utf-8").splitlines()
    assert len(ids) == manifest["counts"]["documents"] >= 70
    assert len(set(ids)) == len(ids)
    assert {"preprocess", "word2vec", "index"} <= set(manifest["timings"])


def test_demo_model_answers(demo_model: Model) -> None:
    statute = next(i for i in demo_model.index.ids if "§" in i)
    result = recommend(demo_model, positive=[statute], k=5)
    assert result.results and statute not in {r.doc_id for r in result.results}
    assert result.model == demo_model.version
    hits = search(demo_model, "Kündigung des Mietvertrags durch den Vermieter wegen Eigenbedarf", k=5)
    assert hits.results
    kws = demo_model.keywords(statute, 5)
    assert kws and all(k.weight > 0 for k in kws)


def test_vectors_and_index_are_memory_mapped(demo_model: Model) -> None:
    assert memory_mapped(demo_model.docvectors)
    assert memory_mapped(demo_model.vectors.vectors)


def test_training_is_deterministic_with_one_worker(demo_models_dir: Path, tmp_path: Path) -> None:
    again = train([DEMO], load_config(DEMO_CONFIG), tmp_path / "models", extra_text=[DEMO / "extra"],
                  cache_dir=tmp_path / "cache", progress=False)
    first = verify_model((demo_models_dir / "current").resolve())
    assert again.manifest["corpus_hash"] == first["corpus_hash"]
    for name in ("ids.txt", "vocabulary.tsv", "phrases.tsv", "docvectors.npy", "keywords_weights.npy",
                 "vectors.npy", "vectors_keys.txt", "documents.jsonl"):
        assert again.manifest["files"][name]["sha256"] == first["files"][name]["sha256"], name


def test_retraining_reuses_the_token_cache(tmp_path: Path) -> None:
    cfg = load_config(DEMO_CONFIG)
    first = train([DEMO], cfg, tmp_path / "m", extra_text=[DEMO / "extra"], cache_dir=tmp_path / "c",
                  progress=False)
    second = train([DEMO], cfg, tmp_path / "m", extra_text=[DEMO / "extra"], cache_dir=tmp_path / "c",
                   progress=False)
    t1 = first.manifest["timings"]["preprocess"]["seconds"]
    t2 = second.manifest["timings"]["preprocess"]["seconds"]
    assert t2 < t1  # cached: no preprocessing the second time
    assert len(list_models(tmp_path / "m")) == 2
    assert current_version(tmp_path / "m") == second.version


def test_failed_training_leaves_the_previous_model_current(demo_models_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(demo_models_dir, models, symlinks=True)
    before = current_version(models)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(CorpusError):
        train([bad], load_config(DEMO_CONFIG), models, cache_dir=tmp_path / "cache", progress=False)
    assert current_version(models) == before
    assert not [p for p in models.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_damaged_model_is_refused(demo_model_path: Path, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(demo_model_path, copy)
    target = copy / "docvectors.npy"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-8])
    elif damage == "delete":
        target.unlink()
    else:
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["counts"]["documents"] += 1
        (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as err:
        Model.load(copy)
    assert "docvectors.npy" in str(err.value) or "documents" in str(err.value)


def test_model_with_a_non_finite_keyword_weight_is_refused(demo_model_path: Path, tmp_path: Path) -> None:
    # answers write explanation weights as stored: a NaN must stop the model at load, not reach a client
    copy = tmp_path / "model"
    shutil.copytree(demo_model_path, copy)
    weights = np.load(copy / "keywords_weights.npy")
    weights[len(weights) // 2] = np.nan
    np.save(copy / "keywords_weights.npy", weights)
    with pytest.raises(ArtifactError, match="not all finite"):
        Model.load(copy, verify=False)  # the hashes would refuse it first; this is the check behind them


def test_intersection_method_keeps_neighbours_all_seed_variants_agree_on(tmp_path: Path) -> None:
    from dataclasses import replace

    from legalsearch.ranking import similar_terms

    cfg = load_config(DEMO_CONFIG)
    cfg = replace(cfg, word2vec=replace(cfg.word2vec, intersection_models=2))
    result = train([DEMO], cfg, tmp_path / "m", extra_text=[DEMO / "extra"], cache_dir=tmp_path / "c",
                   progress=False)
    assert {"thesaurus/seed-1/vectors.npy", "thesaurus/seed-2/vectors_keys.txt"} <= set(result.manifest["files"])
    model = Model.load(result.path)
    assert len(model.thesaurus) == 2
    term = "kündigung"
    plain = similar_terms(model, term, k=50)
    agreed = similar_terms(model, term, k=50, intersection=True)
    assert 0 < len(agreed) <= len(plain)
    from legalsearch.embeddings import similar_terms as raw

    for s in agreed:
        for kv in (model.vectors, *model.thesaurus):
            assert s.term in {t.term for t in raw(kv, term, k=50, allowed=model.keyword_terms)}


def test_intersection_needs_seed_variants(demo_model: Model) -> None:
    from legalsearch.errors import InvalidRequestError
    from legalsearch.ranking import similar_terms

    with pytest.raises(InvalidRequestError, match="intersection_models"):
        similar_terms(demo_model, "kündigung", intersection=True)


def test_a_model_from_before_the_expansion_table_snippet_index_and_neighbour_table_answers_the_same(
    demo_model: Model, demo_model_path: Path, tmp_path: Path
) -> None:
    old = tmp_path / demo_model_path.name
    shutil.copytree(demo_model_path, old)
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    for rel in [r for r in manifest["files"] if r.startswith(("expansion_", "snippets_", "neighbours_"))]:
        (old / rel).unlink()
        del manifest["files"][rel]
    (old / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    legacy = Model.load(old)
    assert legacy.snippets is None and legacy.expansions.precomputed == 0 and legacy.neighbours is None
    assert demo_model.snippets is not None and demo_model.expansions.precomputed > 0
    assert demo_model.neighbours is not None
    query = "Der Vermieter kündigt den Mietvertrag wegen Eigenbedarfs"
    new_hits, old_hits = search(demo_model, query, k=5), search(legacy, query, k=5)
    # the table holds exactly what the per-query computation finds; snippets differ only in how they are made
    assert new_hits.expanded_terms == old_hits.expanded_terms
    assert [h.doc_id for h in new_hits.results] == [h.doc_id for h in old_hits.results]
    assert [h.score for h in new_hits.results] == [h.score for h in old_hits.results]
    assert all("<mark>" in h.snippet for h in new_hits.results if h.matched_terms)
    assert sum(bool(h.matched_terms) for h in new_hits.results) >= 3
    # one-seed recommendations read the neighbour table; without it they search the index: same answers
    for seed in demo_model.index.ids[::7]:
        for options in ({"k": 5}, {"k": 10, "offset": 10}, {"k": 3, "exclude": list(demo_model.index.ids[:4])}):
            a = recommend(demo_model, positive=[seed], **options)  # type: ignore[arg-type]
            b = recommend(legacy, positive=[seed], **options)  # type: ignore[arg-type]
            assert [(r.doc_id, r.score, r.keywords) for r in a.results] == [
                (r.doc_id, r.score, r.keywords) for r in b.results
            ]


def test_one_seed_recommendations_from_the_neighbour_table_equal_a_search(demo_model: Model) -> None:
    import dataclasses

    searching = dataclasses.replace(demo_model, neighbours=None)
    assert demo_model.neighbours is not None and demo_model.neighbours.width == 64
    for seed in demo_model.index.ids:
        a, b = recommend(demo_model, positive=[seed], k=10), recommend(searching, positive=[seed], k=10)
        assert a == b


def test_worker_processes_and_the_side_lane_change_no_model_file(tmp_path: Path) -> None:
    from dataclasses import replace

    cfg = load_config(DEMO_CONFIG)
    runs = {}
    for n_process, batch_size in ((1, 2000), (2, 16)):  # 16 texts per batch: the demo corpus is many batches
        config = replace(cfg, preprocess=replace(cfg.preprocess, n_process=n_process, batch_size=batch_size))
        # with feedback: its stage reads the side stages' files, so it must wait for them
        runs[n_process] = train([DEMO], config, tmp_path / f"m{n_process}", extra_text=[DEMO / "extra"],
                                cache_dir=tmp_path / f"c{n_process}", progress=False,
                                feedback=[ROOT / "corpora" / "demo-feedback.jsonl"])
    one, two = (runs[n].manifest for n in (1, 2))
    assert {k: v["sha256"] for k, v in two["files"].items()} == {k: v["sha256"] for k, v in one["files"].items()}
    assert "feedback/fusion.json" in one["files"]
    # the side stages' figures come back too, in table order
    assert list(two["timings"]) == list(one["timings"]) == [s.name for s in pipeline.STAGES if s.enabled(cfg)]
    assert (tmp_path / "c2" / "tokens" / two["token_cache_key"] / "docs.tokens").read_bytes() == (
        tmp_path / "c1" / "tokens" / one["token_cache_key"] / "docs.tokens").read_bytes()
