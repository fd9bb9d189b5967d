import numpy as np
import scipy.sparse as sp
from gensim.models import KeyedVectors

from legalsearch.config import DocVectorsConfig
from legalsearch.docvectors import document_vectors, text_vector


def _kv() -> KeyedVectors:
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(["miete", "kündigung", "urlaub"], np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32))
    return kv


def test_weighted_average_is_normalised_and_empty_documents_are_zero() -> None:
    vocab = ["miete", "kündigung", "unbekannt"]
    tfidf = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32))
    vecs = document_vectors(tfidf, vocab, _kv(), DocVectorsConfig())
    np.testing.assert_allclose(vecs[0], [1.0, 0.0], atol=1e-6)
    expected = np.array([1.6, 0.8]) / np.linalg.norm([1.6, 0.8])
    np.testing.assert_allclose(vecs[1], expected, atol=1e-6)
    assert not vecs[2].any()  # no known term: the documented zero-vector rule
    assert vecs.dtype == np.float32


def test_mean_weighting_ignores_weights() -> None:
    vocab = ["miete", "urlaub"]
    tfidf = sp.csr_matrix(np.array([[0.9, 0.1]], dtype=np.float32))
    vecs = document_vectors(tfidf, vocab, _kv(), DocVectorsConfig(weighting="mean"))
    np.testing.assert_allclose(vecs[0], np.array([1, 1]) / np.sqrt(2), atol=1e-6)


def test_text_vector_unknown_terms_give_zero() -> None:
    assert not text_vector({"nichts": 1.0}, _kv()).any()
    np.testing.assert_allclose(text_vector({"urlaub": 2.0}, _kv()), [0.0, 1.0], atol=1e-6)


def test_text_vector_is_bit_for_bit_the_weighted_loop() -> None:
    """The rows times their weights summed in one reduction: the same float32 operations in the same order as
    adding ``weight * row`` term by term from zero (signed zeros included)."""
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(2)
    kv = KeyedVectors(vector_size=16)
    words = [f"w{i}" for i in range(200)]
    kv.add_vectors(words, rng.standard_normal((200, 16)).astype(np.float32))

    def loop(term_weights: dict[str, float]) -> np.ndarray:
        vec = np.zeros(16, dtype=np.float32)
        for term, weight in term_weights.items():
            if term in kv.key_to_index:
                vec += weight * np.asarray(kv.vectors)[kv.key_to_index[term]]
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    cases = [{}, {"w0": 0.0}, {"w1": -0.0, "nichts": 2.0}, {"w1": 1.0, "w2": -1.0}]
    for _ in range(300):
        picked = rng.choice(200, size=int(rng.integers(1, 60)), replace=False)
        cases.append({words[i]: float(rng.standard_normal() * 10.0 ** int(rng.integers(-4, 4))) for i in picked})
    for case in cases:
        got = text_vector(case, kv)
        assert got.dtype == np.float32 and got.tobytes() == loop(case).tobytes()
