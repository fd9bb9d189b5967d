"""Precomputed document neighbours: the same answer a search with the seed query gives, files, refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from legalsearch.config import IndexConfig
from legalsearch.errors import ArtifactError
from legalsearch.index import build_index, load_index, search_index, write_index
from legalsearch.neighbours import NeighbourTable, precompute_neighbours, seed_query


def _vectors(n: int, d: int = 24, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[5] = 0.0  # a document without a vector
    return x


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_table_answers_what_the_search_answers(tmp_path: Path, kind: str) -> None:
    x = _vectors(600)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    write_index(build_index(unit, IndexConfig(type=kind, hnsw_ef_search=64)), [f"d{i}" for i in range(600)], tmp_path)
    loaded = load_index(tmp_path, mmap=False)
    table = precompute_neighbours(loaded, x, width=20)
    assert table.width == 20 and table.rows.dtype == np.int32
    for row in (0, 1, 77, 599):
        online = search_index(loaded, seed_query(x, [row])[None, :], 11)
        stored = table.hits(row, 11)
        np.testing.assert_array_equal(stored.rows, online.rows)
        np.testing.assert_array_equal(stored.scores, online.scores)
        assert stored.rows[0, 0] == row  # a document is its own nearest neighbour
    assert (table.rows[5] == -1).all() and np.isneginf(table.scores[5]).all()


def test_seed_query_matches_mean_minus_half_negative() -> None:
    x = _vectors(10)
    q = seed_query(x, [1, 2], [3])
    expected = x[[1, 2]].mean(axis=0) - 0.5 * x[3]
    np.testing.assert_allclose(q, expected / np.linalg.norm(expected), rtol=1e-6)
    assert not seed_query(x, [5]).any()


def test_save_load_and_refusals(tmp_path: Path) -> None:
    x = _vectors(50)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    write_index(build_index(unit, IndexConfig(type="flat")), [f"d{i}" for i in range(50)], tmp_path)
    table = precompute_neighbours(load_index(tmp_path), x, width=80)
    assert table.width == 50  # never wider than the collection
    table.save(tmp_path)
    loaded = NeighbourTable.load(tmp_path, 50)
    assert loaded is not None
    np.testing.assert_array_equal(loaded.rows, table.rows)
    with pytest.raises(ArtifactError, match="expected \\(49, k\\)"):
        NeighbourTable.load(tmp_path, 49)
    assert NeighbourTable.load(tmp_path / "nowhere", 50) is None
