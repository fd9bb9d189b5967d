"""Stage: document vectors as TF-IDF-weighted averages of word vectors.

Rule for documents with no known term: their vector is all zeros. A zero vector has inner product 0 with
every query, so such documents never rank by embedding, yet they stay indexed and reachable lexically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from gensim.models import KeyedVectors

from legalsearch.config import DocVectorsConfig
from legalsearch.errors import ArtifactError
from legalsearch.model import load_array

log = logging.getLogger(__name__)

#: one unit vector per document row
DOCVECTORS_FILE = "docvectors.npy"


def save_docvectors(vectors: np.ndarray, folder: Path) -> None:
    """Write the document vectors into ``folder`` (``DOCVECTORS_FILE``)."""
    np.save(folder / DOCVECTORS_FILE, vectors)


def load_docvectors(folder: Path, mmap: bool = True) -> np.ndarray:
    """The document vectors ``save_docvectors`` wrote, memory-mapped unless ``mmap`` is false."""
    try:
        return load_array(folder / DOCVECTORS_FILE, mmap)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"document vectors in {folder} are unreadable: {exc}") from exc


def term_matrix(vocabulary: Sequence[str], kv: KeyedVectors) -> np.ndarray:
    """One row per vocabulary term: its unit word vector, or zeros where word2vec does not know it."""
    matrix = np.zeros((len(vocabulary), kv.vector_size), dtype=np.float32)
    for i, term in enumerate(vocabulary):
        idx = kv.key_to_index.get(term)
        if idx is not None:
            matrix[i] = kv.vectors[idx]
    return matrix


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row; zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32)


def document_vectors(
    tfidf: sp.csr_matrix,
    vocabulary: Sequence[str],
    kv: KeyedVectors,
    config: DocVectorsConfig,
    top_k: int | None = None,
) -> np.ndarray:
    """Weighted averages of term vectors, one unit-length row per document (zeros when no term is known)."""
    weights = tfidf.astype(np.float32)
    if config.weighting == "mean":
        weights = weights.copy()
        weights.data[:] = 1.0
    elif config.weighting == "keywords" and top_k is not None:
        weights = _keep_top(weights, top_k)
    vectors = np.asarray(weights @ term_matrix(vocabulary, kv), dtype=np.float32)
    vectors = normalise_rows(vectors)
    empty = int((np.abs(vectors).sum(axis=1) == 0).sum())
    if empty:
        log.info("%d of %d documents have no known term: zero vectors", empty, vectors.shape[0])
    return vectors


def _keep_top(matrix: sp.csr_matrix, top_k: int) -> sp.csr_matrix:
    matrix = matrix.tocsr(copy=True)
    for row in range(matrix.shape[0]):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        if hi - lo > top_k:
            vals = matrix.data[lo:hi]
            cut = np.sort(vals)[-top_k]
            vals[vals < cut] = 0.0
    matrix.eliminate_zeros()
    return matrix


def text_vector(term_weights: Mapping[str, float], kv: KeyedVectors) -> np.ndarray:
    """The unit vector of a weighted bag of terms (a query, keywords); zeros when none is known."""
    # a plain ndarray view of the (memory-mapped) vectors: numpy's memmap subclass costs microseconds per row
    vectors = np.asarray(kv.vectors)
    index = kv.key_to_index
    found = [(i, w) for t, w in term_weights.items() if (i := index.get(t)) is not None]
    if not found:
        return np.zeros(kv.vector_size, dtype=np.float32)
    rows = vectors[[i for i, _ in found]]
    # each row times its weight in float32, then the rows added one after the other from zero: the very
    # operations (and rounding) of a loop of ``vec += weight * row``, in three numpy calls instead of two per term
    rows *= np.asarray([w for _, w in found], dtype=np.float32)[:, None]
    vec: np.ndarray = np.add.reduce(rows, axis=0, initial=np.float32(0.0))
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
