"""FAISS index: types, exact neighbours, files, filters, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from legalsearch import index as index_module
from legalsearch.config import IndexConfig
from legalsearch.errors import ArtifactError, InvalidRequestError
from legalsearch.index import (
    add_to_ivfpq,
    build_index,
    choose_index_type,
    faiss,
    load_index,
    search_index,
    train_ivfpq,
    write_index,
)

D = 32


def _unit(rng: np.random.Generator, n: int, d: int = D) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _exact(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def _save_load(tmp_path: Path, index: object, n: int, mmap: bool = True):  # type: ignore[no-untyped-def]
    ids = [f"BGB § {i}" for i in range(n)]
    write_index(index, ids, tmp_path)
    return load_index(tmp_path, mmap=mmap)


def test_choose_index_type() -> None:
    cfg = IndexConfig(exact_max_docs=100)
    assert choose_index_type(100, cfg) == "flat"
    assert choose_index_type(101, cfg) == "hnsw"
    assert choose_index_type(10, IndexConfig(type="ivfpq")) == "ivfpq"
    assert choose_index_type(10**7, IndexConfig(type="flat")) == "flat"


def test_flat_finds_exact_neighbours_and_ids_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng, 500)
    loaded = _save_load(tmp_path, build_index(x, IndexConfig(type="flat")), 500)
    assert loaded.kind == "flat"
    assert loaded.ids[7] == "BGB § 7" and loaded.rows["BGB § 499"] == 499
    hits = search_index(loaded, x[:20], 5)
    assert hits.rows.shape == (20, 5) and hits.rows.dtype == np.int64
    assert list(hits.rows[:, 0]) == list(range(20))  # every vector is its own nearest neighbour
    np.testing.assert_array_equal(hits.rows, _exact(x, x[:20], 5))
    np.testing.assert_allclose(hits.scores[:, 0], 1.0, atol=1e-5)


def test_ids_with_odd_characters_round_trip(tmp_path: Path) -> None:
    x = _unit(np.random.default_rng(1), 3)
    ids = ["GG Art 1", "BGB § 573c", "Ausländerbeschäftigungsverordnung § 2 (Anlage)"]
    write_index(build_index(x, IndexConfig(type="flat")), ids, tmp_path)
    assert load_index(tmp_path).ids == tuple(ids)


@pytest.mark.parametrize("mmap", [True, False])
def test_hnsw_recall_and_mmap_load(tmp_path: Path, mmap: bool) -> None:
    rng = np.random.default_rng(2)
    x = _unit(rng, 2000)
    q = _unit(rng, 50)
    cfg = IndexConfig(type="hnsw", hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=64)
    loaded = _save_load(tmp_path, build_index(x, cfg), 2000, mmap=mmap)
    assert loaded.kind == "hnsw"
    assert loaded.index.hnsw.efSearch == 64  # the query-time depth travels with the file
    hits = search_index(loaded, q, 10)
    assert _recall(hits.rows, _exact(x, q, 10)) >= 0.9


def test_ivfpq_recall_on_clustered_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    centres = _unit(rng, 40)
    x = centres[rng.integers(0, 40, 3000)] + 0.15 * rng.standard_normal((3000, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cfg = IndexConfig(type="ivfpq", ivf_nlist=32, ivf_nprobe=8, pq_m=8)
    loaded = _save_load(tmp_path, build_index(x, cfg), 3000)
    assert loaded.kind == "ivfpq"
    q = x[:50]
    hits = search_index(loaded, q, 10)
    # PQ is lossy; nearest neighbours within a tight cluster must still mostly be found
    assert _recall(hits.rows, _exact(x, q, 10)) >= 0.5
    assert np.mean(hits.rows[:, 0] == np.arange(50)) >= 0.8


def test_ivfpq_small_collection_builds(tmp_path: Path) -> None:
    x = _unit(np.random.default_rng(4), 60)
    loaded = _save_load(tmp_path, build_index(x, IndexConfig(type="ivfpq")), 60)
    assert search_index(loaded, x[:3], 5).rows_for(0).size == 5


def test_ntotal_mismatch_refused(tmp_path: Path) -> None:
    x = _unit(np.random.default_rng(5), 10)
    index = build_index(x, IndexConfig(type="flat"))
    with pytest.raises(ArtifactError, match="10 rows but 9 ids"):
        write_index(index, [str(i) for i in range(9)], tmp_path)
    write_index(index, [str(i) for i in range(10)], tmp_path)
    (tmp_path / "ids.txt").write_text("".join(f"{i}\n" for i in range(11)), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"10 rows but .* lists 11 ids"):
        load_index(tmp_path)


def test_bad_ids_and_damaged_files_refused(tmp_path: Path) -> None:
    x = _unit(np.random.default_rng(6), 2)
    index = build_index(x, IndexConfig(type="flat"))
    with pytest.raises(ArtifactError, match="line break"):
        write_index(index, ["a\nb", "c"], tmp_path)
    with pytest.raises(ArtifactError, match="not unique"):
        write_index(index, ["a", "a"], tmp_path)
    write_index(index, ["a", "b"], tmp_path)
    (tmp_path / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="cannot read"):
        load_index(tmp_path)
    with pytest.raises(ArtifactError, match=r"ids\.txt"):
        load_index(tmp_path / "absent")


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_allowed_rows_filter_is_respected(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(7)
    x = _unit(rng, 1000)
    cfg = IndexConfig(type=kind, hnsw_m=16, ivf_nlist=16, ivf_nprobe=16, pq_m=8)  # type: ignore[arg-type]
    loaded = _save_load(tmp_path, build_index(x, cfg), 1000)
    allowed = np.arange(1, 1000, 3, dtype=np.int64)
    hits = search_index(loaded, x[:5], 10, allowed_rows=allowed)
    assert np.isin(hits.rows_for(0), allowed).all()
    assert all(np.isin(hits.rows_for(q), allowed).all() for q in range(5))
    assert hits.rows_for(1)[0] == 1  # row 1 is allowed and is its own best match
    if kind != "ivfpq":
        np.testing.assert_array_equal(hits.rows, allowed[_exact(x[allowed], x[:5], 10)])
    # a filter smaller than k pads with -1 / -inf instead of inventing hits
    few = search_index(loaded, x[:1], 10, allowed_rows=np.array([4, 9], dtype=np.int64))
    assert sorted(few.rows_for(0)) == [4, 9]
    assert list(few.rows[0, 2:]) == [-1] * 8 and np.isneginf(few.scores[0, 2:]).all()
    empty = search_index(loaded, x[:1], 3, allowed_rows=np.array([], dtype=np.int64))
    assert empty.rows_for(0).size == 0
    with pytest.raises(InvalidRequestError, match="allowed_rows"):
        search_index(loaded, x[:1], 3, allowed_rows=np.array([1000]))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_unordered_hits_are_the_same_rows(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(5)
    x = _unit(rng, 500)
    loaded = _save_load(tmp_path, build_index(x, IndexConfig(type=kind, hnsw_m=16)), 500)  # type: ignore[arg-type]
    for allowed in (None, np.arange(0, 500, 2, dtype=np.int64)):
        ordered = search_index(loaded, x[:4], 30, allowed_rows=allowed)
        loose = search_index(loaded, x[:4], 30, allowed_rows=allowed, ordered=False)
        for q in range(4):
            assert sorted(loose.rows_for(q).tolist()) == sorted(ordered.rows_for(q).tolist())


def test_zero_vectors_are_allowed_and_rank_last(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x = _unit(rng, 20)
    x[[3, 11]] = 0.0
    loaded = _save_load(tmp_path, build_index(x, IndexConfig(type="flat")), 20)
    hits = search_index(loaded, x[:1], 20)
    assert hits.rows[0, 0] == 0
    assert not loaded.index.reconstruct(3).any()
    assert {3, 11} <= set(hits.rows[0][hits.scores[0] == 0.0])


def test_unnormalised_input_is_normalised() -> None:
    x = _unit(np.random.default_rng(9), 5) * 7.0
    index = build_index(x, IndexConfig(type="flat"))
    np.testing.assert_allclose(np.linalg.norm(index.reconstruct_n(0, 5), axis=1), 1.0, atol=1e-5)


def test_ties_broken_by_row_and_search_repeats(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    base = _unit(rng, 1)
    x = np.vstack([_unit(rng, 5), np.repeat(base, 6, axis=0), _unit(rng, 5)])  # rows 5..10 identical
    loaded = _save_load(tmp_path, build_index(x, IndexConfig(type="flat")), len(x))
    hits = search_index(loaded, base, 4)
    assert list(hits.rows[0]) == [5, 6, 7, 8]
    again = search_index(loaded, base, 4)
    np.testing.assert_array_equal(hits.rows, again.rows)


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_build_is_deterministic(tmp_path: Path, kind: str) -> None:
    x = _unit(np.random.default_rng(11), 1500)
    cfg = IndexConfig(type=kind, hnsw_m=16, ivf_nlist=16, pq_m=8)  # type: ignore[arg-type]
    write_index(build_index(x, cfg), [str(i) for i in range(1500)], tmp_path / "a")
    write_index(build_index(x, cfg), [str(i) for i in range(1500)], tmp_path / "b")
    assert (tmp_path / "a" / "index.faiss").read_bytes() == (tmp_path / "b" / "index.faiss").read_bytes()


def test_invalid_queries_refused(tmp_path: Path) -> None:
    x = _unit(np.random.default_rng(12), 10)
    loaded = _save_load(tmp_path, build_index(x, IndexConfig(type="flat")), 10)
    with pytest.raises(InvalidRequestError, match="shape"):
        search_index(loaded, np.zeros((1, D + 1), dtype=np.float32), 3)
    with pytest.raises(InvalidRequestError, match="k must be"):
        search_index(loaded, x[:1], 0)
    # k larger than the collection: every row once, then padding
    hits = search_index(loaded, x[0], 15)
    assert sorted(hits.rows_for(0)) == list(range(10)) and hits.rows.shape == (1, 15)
    with pytest.raises(InvalidRequestError, match="NaN"):
        build_index(np.full((2, 3), np.nan, dtype=np.float32), IndexConfig())


def test_hnsw_selector_path_respects_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import legalsearch.index as index_module

    # force the FAISS selector instead of the exact scan used for small filters
    monkeypatch.setattr(index_module, "_EXACT_FILTER_MAX", 0)
    rng = np.random.default_rng(13)
    x = _unit(rng, 1000)
    loaded = _save_load(tmp_path, build_index(x, IndexConfig(type="hnsw", hnsw_m=16)), 1000)
    allowed = np.arange(0, 1000, 2, dtype=np.int64)
    hits = search_index(loaded, x[:20], 10, allowed_rows=allowed)
    assert all(np.isin(hits.rows_for(q), allowed).all() for q in range(20))
    assert _recall(hits.rows, allowed[_exact(x[allowed], x[:20], 10)]) >= 0.9


def test_sorted_hits_orders_ties_by_row_and_pads_at_the_end() -> None:
    from legalsearch.index import _sorted_hits

    scores = np.array([[0.5, 0.9, 0.5, 7.0], [0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    rows = np.array([[8, 3, 2, -1], [5, 6, 7, 9]], dtype=np.int64)
    hits = _sorted_hits(scores, rows, 6)
    assert hits.rows.tolist() == [[3, 2, 8, -1, -1, -1], [9, 7, 6, 5, -1, -1]]
    assert hits.scores[0].tolist()[:3] == pytest.approx([0.9, 0.5, 0.5])
    assert np.isneginf(hits.scores[0, 3:]).all() and np.isneginf(hits.scores[1, 4:]).all()
    assert hits.rows.dtype == np.int64 and hits.scores.dtype == np.float32
    cut = _sorted_hits(scores, rows, 2)
    assert cut.rows.tolist() == [[3, 2], [9, 7]] and cut.scores.shape == (2, 2)


def test_ivfpq_trained_once_and_added_per_range_searches_as_one_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sharded build's IVF-PQ: trained on the collection's seeded sample (here 300 of 900 rows), each row range
    added to a copy; every range's codes are the single index's, so the union of the ranges' hits is its hits."""
    monkeypatch.setattr(index_module, "_TRAIN_MAX", 300)
    rng = np.random.default_rng(5)
    centres = _unit(rng, 12)
    x = centres[rng.integers(0, 12, 900)] + 0.3 * rng.standard_normal((900, D)).astype(np.float32)
    cfg = IndexConfig(type="ivfpq", ivf_nlist=16, ivf_nprobe=4, pq_m=8)
    single = build_index(x, cfg)
    trained = train_ivfpq(np.asarray(x), cfg)
    assert trained.ntotal == 0 and trained.nprobe == 4
    np.testing.assert_array_equal(trained.quantizer.reconstruct_n(0, 16), single.quantizer.reconstruct_n(0, 16))
    parts = [(0, 450), (450, 900)]
    shards = [add_to_ivfpq(trained, x[lo:hi]) for lo, hi in parts]
    assert trained.ntotal == 0  # each shard got a copy
    with pytest.raises(InvalidRequestError, match="already holds"):
        add_to_ivfpq(shards[0], x[:2])
    for lst in range(16):  # the same codes in the same lists, row numbers shifted by the range's start
        size = single.invlists.list_size(lst)
        whole = faiss.rev_swig_ptr(single.invlists.get_codes(lst), size * single.code_size).tobytes()
        ids = faiss.rev_swig_ptr(single.invlists.get_ids(lst), size).copy()
        got_codes, got_ids = b"", []
        for (lo, _), shard in zip(parts, shards, strict=True):
            size = shard.invlists.list_size(lst)
            got_codes += faiss.rev_swig_ptr(shard.invlists.get_codes(lst), size * single.code_size).tobytes()
            got_ids += (faiss.rev_swig_ptr(shard.invlists.get_ids(lst), size) + lo).tolist()
        assert got_codes == whole and got_ids == ids.tolist()
    q = _unit(rng, 20)
    loaded = [index_module.LoadedIndex(s, (), {}, "ivfpq") for s in (single, *shards)]
    one = search_index(loaded[0], q, 10)
    for i in range(len(q)):
        found = []
        for (lo, _), part in zip(parts, loaded[1:], strict=True):
            hits = search_index(part, q[i], 10)
            found += [(float(score), int(row) + lo) for score, row in zip(hits.scores_for(), hits.rows_for(),
                                                                           strict=True)]
        merged = sorted(found, key=lambda t: (-t[0], t[1]))[:10]
        assert [r for _, r in merged] == one.rows_for(i).tolist()
