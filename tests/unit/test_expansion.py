from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from legalsearch import expansion
from legalsearch.errors import ArtifactError
from legalsearch.expansion import (
    EXPANSION_MIN_DF,
    ExpansionTable,
    build_expansions,
    expansion_candidates,
    nearest_candidates,
    save_expansions,
)
from legalsearch.keywords import KeywordModel

WORDS = [f"w{i:03d}" for i in range(300)]


@pytest.fixture()
def kv() -> KeyedVectors:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(len(WORDS), 12)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # exact ties: w010 and w011 are the same vector, so order must fall back to the word row
    vectors[11] = vectors[10]
    out = KeyedVectors(vector_size=12)
    out.add_vectors(WORDS, vectors)
    return out


@pytest.fixture()
def keyword_model() -> KeywordModel:
    # every third word is no keyword; every fifth keyword is too rare to expand with
    vocab = [w for i, w in enumerate(WORDS) if i % 3 != 0] + ["not_embedded"]
    df = np.asarray([EXPANSION_MIN_DF - 1 if i % 5 == 0 else EXPANSION_MIN_DF + i for i in range(len(vocab))])
    return KeywordModel.from_arrays(vocab, df, np.ones(len(vocab), dtype=np.float32), 1000, True)


def brute_force(kv: KeyedVectors, candidates: set[int], row: int, width: int) -> list[tuple[int, float]]:
    sims = [(c, float(kv.vectors[row] @ kv.vectors[c])) for c in candidates]
    return sorted(sims, key=lambda cs: (-cs[1], cs[0]))[:width]


def test_candidates_are_embedded_keywords_in_enough_documents(kv: KeyedVectors, keyword_model: KeywordModel) -> None:
    rows = expansion_candidates(kv, keyword_model)
    assert rows.tolist() == sorted(rows.tolist())
    df = dict(zip(keyword_model.vocabulary, keyword_model.df.tolist(), strict=True))
    expected = {kv.key_to_index[t] for t, n in df.items() if n >= EXPANSION_MIN_DF and t in kv.key_to_index}
    assert set(rows.tolist()) == expected
    assert 0 < len(expected) < len(WORDS)


def test_table_matches_brute_force_and_breaks_ties_by_row(kv: KeyedVectors, keyword_model: KeywordModel) -> None:
    rows, sims = build_expansions(kv, keyword_model, n_words=120, width=4)
    assert rows.shape == sims.shape == (120, 4)
    candidates = set(expansion_candidates(kv, keyword_model).tolist())
    for word in range(120):
        expected = brute_force(kv, candidates, word, 4)
        assert rows[word].tolist() == [r for r, _ in expected]
        np.testing.assert_allclose(sims[word], [s for _, s in expected], rtol=1e-5, atol=1e-6)
    # w010 == w011 (both candidates): equal similarity 1.0 to w010 itself, the lower row first
    assert {10, 11} <= candidates
    assert rows[10, :2].tolist() == [10, 11] and rows[11, :2].tolist() == [10, 11]


@pytest.mark.parametrize("sample_columns", [1, 7, 16])
def test_sampled_threshold_keeps_the_exact_top_list(
    kv: KeyedVectors, keyword_model: KeywordModel, monkeypatch: pytest.MonkeyPatch, sample_columns: int
) -> None:
    # a sample of a few columns out of ~130 candidates: the threshold comes from a strided subset of each line
    monkeypatch.setattr(expansion, "SAMPLE_COLUMNS", sample_columns)
    rows, _ = build_expansions(kv, keyword_model, n_words=60, width=6)
    candidates = set(expansion_candidates(kv, keyword_model).tolist())
    for word in range(60):
        assert rows[word].tolist() == [r for r, _ in brute_force(kv, candidates, word, 6)]


def test_table_and_on_the_fly_give_the_same_neighbours(
    kv: KeyedVectors, keyword_model: KeywordModel, tmp_path: Path
) -> None:
    rows, sims = build_expansions(kv, keyword_model, n_words=100, width=6)
    save_expansions(rows, sims, tmp_path)
    with_table = ExpansionTable.load(tmp_path, kv, keyword_model, width=6)
    without = ExpansionTable(kv, keyword_model, width=6)
    assert with_table.precomputed == 100 and without.precomputed == 0
    asked = [0, 5, 99, 100, 150, 299, 5]  # inside and beyond the table, one repeated (memoised)
    for a, b in zip(with_table.neighbours(asked), without.neighbours(asked), strict=True):
        assert a.rows.tolist() == b.rows.tolist()
        np.testing.assert_allclose(a.similarities, b.similarities, rtol=1e-5, atol=1e-6)


def test_a_wider_table_serves_a_narrower_request(
    kv: KeyedVectors, keyword_model: KeywordModel, tmp_path: Path
) -> None:
    save_expansions(*build_expansions(kv, keyword_model, n_words=50, width=8), tmp_path)
    narrow = ExpansionTable.load(tmp_path, kv, keyword_model, width=3)
    expected = nearest_candidates(
        kv.vectors[:50], *ExpansionTable(kv, keyword_model, 3).candidates(), width=3
    )[0]
    assert [n.rows.tolist() for n in narrow.neighbours(list(range(50)))] == expected.tolist()
    # a narrower table than asked for is not used: every word is computed
    assert ExpansionTable.load(tmp_path, kv, keyword_model, width=9).precomputed == 0


def test_fewer_candidates_than_width_are_padded(kv: KeyedVectors) -> None:
    tiny = KeywordModel.from_arrays(["w001", "w002"], np.asarray([9, 9]), np.ones(2, np.float32), 10, True)
    rows, _ = build_expansions(kv, tiny, n_words=3, width=4)
    assert rows[:, 2:].tolist() == [[-1, -1]] * 3
    assert set(rows[:, :2].ravel().tolist()) == {1, 2}


def test_damaged_tables_are_refused(kv: KeyedVectors, keyword_model: KeywordModel, tmp_path: Path) -> None:
    rows, sims = build_expansions(kv, keyword_model, n_words=20, width=3)
    save_expansions(rows, sims[:10], tmp_path)
    with pytest.raises(ArtifactError, match="does not match"):
        ExpansionTable.load(tmp_path, kv, keyword_model, width=3)
    rows[3, 1] = len(WORDS) + 5
    save_expansions(rows, sims, tmp_path)
    with pytest.raises(ArtifactError, match="beyond"):
        ExpansionTable.load(tmp_path, kv, keyword_model, width=3)
    (tmp_path / "expansion_rows.npy").write_bytes(b"not numpy")
    with pytest.raises(ArtifactError, match="unreadable"):
        ExpansionTable.load(tmp_path, kv, keyword_model, width=3)
