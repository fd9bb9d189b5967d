"""BM25 over our own tokens, and the reference BM25."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from plugin_model import memory_mapped
from reference import lucene_bm25

from legalsearch.config import LexicalConfig
from legalsearch.errors import ArtifactError, InvalidRequestError
from legalsearch.lexical import (
    ReferenceBM25,
    build_lexical_index,
    load_lexical_index,
    save_lexical_index,
)

DOCS = [
    ["miete", "kündigung", "miete"],
    ["kündigung", "frist"],
    ["kaufvertrag", "mangel", "frist", "frist", "Kündigung"],
]


def test_scores_match_hand_computed_bm25() -> None:
    cfg = LexicalConfig(k1=1.2, b=0.75)
    index = build_lexical_index(iter(DOCS), cfg)
    assert index.n_docs == 3
    for term in ["miete", "kündigung", "frist", "mangel"]:
        expected = [lucene_bm25(term, d, DOCS, 1.2, 0.75) for d in DOCS]
        got = index.scores({term: 1.0})
        assert got.dtype == np.float32 and got.shape == (3,)
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=term)
    # spot value, so that the hand formula itself is pinned: "miete" in doc 0, df=1, tf=2, dl=3, avgdl=10/3
    assert index.scores({"miete": 1.0})[0] == pytest.approx(
        math.log(1 + 2.5 / 1.5) * 2 / (2 + 1.2 * (0.25 + 0.75 * 3 / (10 / 3))), rel=1e-6
    )


def test_tokens_are_not_retokenised() -> None:
    index = build_lexical_index(DOCS, LexicalConfig())
    # "Kündigung" (capitalised) is its own term: bm25s must not have lowercased or stemmed anything
    assert index.document_frequency("kündigung") == 2
    assert index.document_frequency("Kündigung") == 1
    assert index.has_term("frist") and not index.has_term("fris")
    assert index.document_frequency("unbekannt") == 0


def test_weighted_terms_and_unknown_terms() -> None:
    index = build_lexical_index(DOCS, LexicalConfig())
    miete, frist = index.scores({"miete": 1.0}), index.scores({"frist": 1.0})
    combined = index.scores({"miete": 1.0, "frist": 0.3, "nirgends": 5.0})
    np.testing.assert_allclose(combined, miete + 0.3 * frist, rtol=1e-6)
    assert not index.scores({"nirgends": 1.0}).any()
    assert not index.scores({}).any()


def test_top_k_orders_filters_and_breaks_ties_by_row() -> None:
    docs = [["a"], ["b"], ["a"], ["a"], ["c", "a"]]
    index = build_lexical_index(docs, LexicalConfig())
    hits = index.top_k({"a": 1.0}, 2)
    assert list(hits.rows[0]) == [0, 2]  # rows 0, 2, 3 tie; the lower rows win
    all_hits = index.top_k({"a": 1.0}, 10)
    assert list(all_hits.rows_for(0)) == [0, 2, 3, 4]  # row 4 is longer, so it scores lower
    assert list(all_hits.rows[0, 4:]) == [-1] * 6  # row 1 matches nothing: not a hit
    filtered = index.top_k({"a": 1.0}, 2, allowed_rows=np.array([1, 3, 4], dtype=np.int64))
    assert list(filtered.rows_for(0)) == [3, 4]
    with pytest.raises(InvalidRequestError):
        index.top_k({"a": 1.0}, 2, allowed_rows=np.array([5]))


@pytest.mark.parametrize("method", ["lucene", "bm25+"])
def test_save_load_round_trip(tmp_path: Path, method: str) -> None:
    index = build_lexical_index(DOCS, LexicalConfig(method=method))  # type: ignore[arg-type]
    save_lexical_index(index, tmp_path)
    for mmap in (True, False):
        loaded = load_lexical_index(tmp_path, mmap=mmap)
        assert loaded.n_docs == 3
        for query in ({"miete": 1.0}, {"frist": 0.5, "kündigung": 1.0}):
            np.testing.assert_array_equal(loaded.scores(query), index.scores(query))
        assert loaded.document_frequency("frist") == 2
    assert memory_mapped(load_lexical_index(tmp_path, mmap=True).retriever.scores["data"])


def test_load_refuses_missing_or_broken(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no lexical index"):
        load_lexical_index(tmp_path)
    save_lexical_index(build_lexical_index(DOCS, LexicalConfig()), tmp_path)
    (tmp_path / "indices.csc.index.npy").unlink()
    with pytest.raises(ArtifactError, match="cannot load"):
        load_lexical_index(tmp_path)


def test_empty_documents_and_corpus() -> None:
    index = build_lexical_index([["miete"], [], ["frist"]], LexicalConfig())
    assert index.n_docs == 3 and index.scores({"miete": 1.0})[1] == 0.0
    with pytest.raises(InvalidRequestError):
        build_lexical_index([], LexicalConfig())


def test_weighted_scores_sum_the_columns_on_a_large_index(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vocab = [f"t{i}" for i in range(10000)]
    # Zipf-like term draws: a few very common terms with long posting lists, like real text
    draws = np.minimum(rng.zipf(1.3, size=(10000, 30)), 10000) - 1
    save_lexical_index(build_lexical_index(([vocab[j] for j in row] for row in draws), LexicalConfig()), tmp_path)
    index = load_lexical_index(tmp_path, mmap=True)
    query = {vocab[j]: 1.0 if j < 20 else 0.3 for j in range(40)}
    scores = index.scores(query)
    # the same sum written out: each term's column times its weight, added in query order
    data, indices, indptr = (np.asarray(index.retriever.scores[k]) for k in ("data", "indices", "indptr"))
    expected = np.zeros(index.n_docs, dtype=np.float64)
    for term, weight in query.items():
        tid = index.vocab[term]
        lo, hi = indptr[tid], indptr[tid + 1]
        np.add.at(expected, indices[lo:hi], data[lo:hi].astype(np.float64) * weight)
    assert scores.dtype == np.float32
    # float32 sums: a few ulps from the float64 ones, never more
    np.testing.assert_allclose(scores, expected, rtol=2e-6, atol=1e-6)
    # the sparse product reads the memory-mapped postings in place: no worker keeps a private copy of them
    matrix = index._matrix
    assert np.shares_memory(matrix.data, index.retriever.scores["data"])
    assert np.shares_memory(matrix.indices, index.retriever.scores["indices"])
    assert memory_mapped(index.retriever.scores["indices"])


def test_reference_bm25_stems_and_drops_stopwords() -> None:
    texts = [
        "Ordentliche Kündigung des Vermieters. Der Vermieter kann nur kündigen, wenn er ein Interesse hat.",
        "Kaufvertrag. Durch den Kaufvertrag wird der Verkäufer verpflichtet.",
        "Mietvertrag und Miete: die Mieten sind monatlich zu zahlen.",
    ]
    ref = ReferenceBM25.build(texts)
    hits = ref.search(["Kündigungen", "die Mieten", "und der die", "Verkäufers Pflichten"], 3)
    assert list(hits.rows_for(0)) == [0]  # "Kündigungen" matches "Kündigung" through the stemmer
    assert list(hits.rows_for(1)) == [2]
    assert hits.rows_for(2).size == 0  # stopwords only: nothing matches
    assert hits.rows_for(3)[0] == 1
    assert ref.query_terms("Kündigungen") == ref.query_terms("kündigung")
    # deterministic, including ties
    again = ref.search(["Kündigungen", "die Mieten"], 3)
    np.testing.assert_array_equal(again.rows, hits.rows[:2])


def test_column_sum_is_bit_for_bit_scipys_column_product(tmp_path: Path) -> None:
    """``_column_sum`` calls scipy's private routines directly: it must give exactly what the public
    ``matrix[:, ids] @ weights`` gives (the same float32 additions in the same order), refuse ids out of range
    and leave other dtypes to scipy."""
    from scipy import sparse

    from legalsearch.lexical import _column_sum, _weighted_scores

    rng = np.random.default_rng(1)
    vocab = [f"t{i}" for i in range(3000)]
    draws = np.minimum(rng.zipf(1.3, size=(4000, 25)), 3000) - 1
    save_lexical_index(build_lexical_index(([vocab[j] for j in row] for row in draws), LexicalConfig()), tmp_path)
    matrix = load_lexical_index(tmp_path, mmap=True)._matrix
    assert matrix.indptr.dtype == matrix.indices.dtype == np.int32 and matrix.data.dtype == np.float32
    for size in (0, 1, 7, 120):
        ids = rng.permutation(matrix.shape[1])[:size].astype(np.int64)
        weights = rng.random(size) * 3
        public = np.asarray(matrix[:, ids] @ weights.astype(np.float32), dtype=np.float32)
        fast = _column_sum(matrix, ids, weights.astype(np.float32))
        assert fast is not None and fast.dtype == np.float32
        assert np.array_equal(fast, public)
        assert np.array_equal(_weighted_scores(matrix, None, ids, weights), public) or size == 0
    with pytest.raises(IndexError):
        _column_sum(matrix, np.asarray([matrix.shape[1]]), np.ones(1, dtype=np.float32))
    with pytest.raises(IndexError):
        _column_sum(matrix, np.asarray([-1]), np.ones(1, dtype=np.float32))
    wide = sparse.csc_array((matrix.data, matrix.indices.astype(np.int64), matrix.indptr.astype(np.int64)),
                            shape=matrix.shape)
    assert _column_sum(wide, np.asarray([0, 1]), np.ones(2, dtype=np.float32)) is None
