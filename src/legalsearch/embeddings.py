"""Stage: word2vec training (gensim) and related-term lookups over the keyword vocabulary.

Entry points: ``train_word2vec`` trains on a token file and returns L2-normalised KeyedVectors;
``similar_terms`` suggests related terms (thesaurus), optionally by the intersection method over several models.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from legalsearch.config import Word2VecConfig
from legalsearch.errors import ArtifactError, CorpusError, UnknownTermError
from legalsearch.model import load_array
from legalsearch.types import SimilarTerm

log = logging.getLogger(__name__)

#: the unit-length vectors, row i for key i of KEYS_FILE
VECTORS_FILE = "vectors.npy"
#: the vectors' keys, one per line
KEYS_FILE = "vectors_keys.txt"
#: the folder of the extra seed models (``thesaurus/seed-N``, each with VECTORS_FILE and KEYS_FILE)
THESAURUS_DIR = "thesaurus"


def thesaurus_folder(variant: int) -> str:
    """The folder of the ``variant``-th extra seed model inside a model folder (from 1)."""
    return f"{THESAURUS_DIR}/seed-{variant}"


def thesaurus_folders(manifest: Mapping[str, Any]) -> list[str]:
    """The seed models' folders the manifest lists (``thesaurus/seed-N``), in the order they are combined."""
    found = set()
    for rel in manifest.get("files", {}):
        parts = PurePosixPath(rel).parts
        if len(parts) == 3 and parts[0] == THESAURUS_DIR and parts[1].startswith("seed-"):
            found.add(f"{THESAURUS_DIR}/{parts[1]}")
    # string order, as the folders were always combined: float sums repeat exactly
    return sorted(found)


def stable_hash(text: str) -> int:
    """A hash that does not depend on PYTHONHASHSEED, so that seeded training repeats across processes."""
    return zlib.crc32(text.encode("utf-8"))


class _EpochCallback(CallbackAny2Vec):
    def __init__(self, on_epoch: Callable[[int], None]) -> None:
        self.epoch = 0
        self.on_epoch = on_epoch

    def on_epoch_end(self, model: Word2Vec) -> None:
        self.epoch += 1
        self.on_epoch(self.epoch)


def train_word2vec(
    corpus_file: Path,
    config: Word2VecConfig,
    on_epoch: Callable[[int], None] | None = None,
) -> KeyedVectors:
    """Train word2vec on a file of token lines (gensim's fast ``corpus_file`` mode); return normalised vectors."""
    if not corpus_file.exists() or corpus_file.stat().st_size == 0:
        raise CorpusError(f"no training text for word2vec in {corpus_file}")
    callbacks = [_EpochCallback(on_epoch)] if on_epoch else []
    try:
        model = Word2Vec(
            corpus_file=str(corpus_file),
            vector_size=config.vector_size,
            window=config.window,
            sg=int(config.sg),
            epochs=config.epochs,
            min_count=config.min_count,
            negative=config.negative,
            sample=config.sample,
            alpha=config.alpha,
            seed=config.seed,
            workers=config.workers,
            hashfxn=stable_hash,
            callbacks=callbacks,
        )
    except RuntimeError as exc:  # gensim: "you must first build vocabulary before training the model"
        raise CorpusError(f"word2vec could not train: {exc} (is min_count too high for this corpus?)") from exc
    kv: KeyedVectors = model.wv
    normalise(kv)
    log.info("word2vec: %d terms x %d dimensions", len(kv), kv.vector_size)
    return kv


def normalise(kv: KeyedVectors) -> None:
    """Replace the vectors by their unit-length versions in place (cosine = dot product from here on)."""
    norms = np.linalg.norm(kv.vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    kv.vectors = (kv.vectors / norms).astype(np.float32)
    kv.norms = None
    kv.fill_norms(force=True)


def save_vectors(kv: KeyedVectors, folder: Path) -> None:
    """Save the vectors as a plain .npy array and their keys as UTF-8 text, one per line.

    Not gensim's own ``save``: that is a pickle, and loading a pickle runs whatever code it names, so a model
    folder could run code in every server that loads it. A key never holds a newline (keys are whitespace-split
    tokens), which the key file relies on.
    """
    keys = [str(k) for k in kv.index_to_key]
    bad = next((k for k in keys if "\n" in k or not k), None)
    if bad is not None:
        raise ArtifactError(f"word vector key {bad!r} cannot be stored one per line")
    np.save(folder / VECTORS_FILE, np.ascontiguousarray(kv.vectors, dtype=np.float32), allow_pickle=False)
    (folder / KEYS_FILE).write_text("\n".join(keys) + "\n", encoding="utf-8")


def load_vectors(folder: Path, mmap: bool = True) -> KeyedVectors:
    """KeyedVectors from the .npy array (memory-mapped, so that several server workers share one copy) and the
    key list: no pickle is read."""
    try:
        vectors = load_array(folder / VECTORS_FILE, mmap)
        text = (folder / KEYS_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"word vectors in {folder} are unreadable: {exc}") from exc
    keys = text.split("\n")
    if keys and keys[-1] == "":
        keys.pop()
    if vectors.ndim != 2 or vectors.dtype != np.float32 or vectors.shape[0] != len(keys):
        raise ArtifactError(
            f"word vectors in {folder} do not match their keys: {vectors.shape} {vectors.dtype} array, "
            f"{len(keys)} keys"
        )
    key_to_index = {k: i for i, k in enumerate(keys)}
    if len(key_to_index) != len(keys):
        raise ArtifactError(f"word vectors in {folder}: {KEYS_FILE} repeats a key")
    kv = KeyedVectors(int(vectors.shape[1]), count=0, dtype=np.float32)
    kv.index_to_key = keys
    kv.key_to_index = key_to_index
    kv.vectors = vectors
    return kv


def _neighbours(
    kv: KeyedVectors, term: str, pool: int, allowed: Collection[str] | None
) -> list[tuple[str, float]]:
    if term not in kv.key_to_index:
        raise UnknownTermError(term)
    query = kv.vectors[kv.key_to_index[term]]
    sims = kv.vectors @ query
    sims[kv.key_to_index[term]] = -np.inf
    order = np.argsort(-sims, kind="stable")
    found: list[tuple[str, float]] = []
    for idx in order:
        word = kv.index_to_key[int(idx)]
        if allowed is not None and word not in allowed:
            continue
        found.append((word, float(sims[idx])))
        if len(found) >= pool:
            break
    return found


def similar_terms(
    kv: KeyedVectors | Sequence[KeyedVectors],
    term: str,
    k: int = 10,
    allowed: Collection[str] | None = None,
    pool: int = 50,
) -> list[SimilarTerm]:
    """Related terms by cosine similarity; with several models, the intersection method.

    The intersection method keeps only neighbours that every model (trained with a different seed) has among
    its ``pool`` nearest, scored by their mean similarity: unstable, seed-dependent neighbours drop out.
    ``allowed`` restricts suggestions, e.g. to the keyword vocabulary.
    """
    models = [kv] if isinstance(kv, KeyedVectors) else list(kv)
    if not models:
        raise ArtifactError("no word vectors to look terms up in")
    if len(models) == 1:
        return [SimilarTerm(w, s) for w, s in _neighbours(models[0], term, k, allowed)]
    per_model = [dict(_neighbours(m, term, pool, allowed)) for m in models]
    common = set(per_model[0]).intersection(*per_model[1:])
    scored = sorted(
        ((w, float(np.mean([p[w] for p in per_model]))) for w in common), key=lambda ws: (-ws[1], ws[0])
    )
    return [SimilarTerm(w, s) for w, s in scored[:k]]


def thesaurus_seeds(config: Word2VecConfig) -> list[int]:
    """The seeds of the extra models for the intersection method."""
    return [config.seed + i for i in range(1, config.intersection_models + 1)]


def train_seed_variants(corpus_file: Path, config: Word2VecConfig, seeds: Sequence[int]) -> list[KeyedVectors]:
    """Train one model per seed, for the intersection method."""
    return [train_word2vec(corpus_file, replace(config, seed=seed)) for seed in seeds]
