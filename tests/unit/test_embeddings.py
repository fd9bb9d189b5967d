import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from plugin_model import memory_mapped

from legalsearch.config import Word2VecConfig
from legalsearch.embeddings import load_vectors, save_vectors, similar_terms, train_word2vec
from legalsearch.errors import ArtifactError, CorpusError, UnknownTermError

LINES = [
    "vermieter kündigung mietvertrag wohnung mieter",
    "mieter wohnung miete vermieter mietvertrag",
    "arbeitgeber arbeitnehmer kündigung arbeitsvertrag lohn",
    "arbeitnehmer urlaub arbeitgeber lohn arbeitsvertrag",
]
CONFIG = Word2VecConfig(vector_size=16, window=3, epochs=30, min_count=1, negative=3, sample=0, workers=1, seed=3)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt"
    path.write_text("\n".join(LINES * 50) + "\n", encoding="utf-8")
    return path


def test_vectors_are_normalised_and_round_trip_memory_mapped(corpus: Path, tmp_path: Path) -> None:
    kv = train_word2vec(corpus, CONFIG)
    np.testing.assert_allclose(np.linalg.norm(kv.vectors, axis=1), 1.0, rtol=1e-5)
    save_vectors(kv, tmp_path)
    loaded = load_vectors(tmp_path, mmap=True)
    assert memory_mapped(loaded.vectors)
    np.testing.assert_array_equal(loaded.vectors, kv.vectors)
    assert loaded.index_to_key == kv.index_to_key and loaded.key_to_index == kv.key_to_index
    # plain arrays and text: nothing in the folder is a pickle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.txt", "vectors.npy", "vectors_keys.txt"]
    assert similar_terms(loaded, "mieter", k=5) == similar_terms(kv, "mieter", k=5)


def test_vector_files_that_disagree_are_refused(corpus: Path, tmp_path: Path) -> None:
    save_vectors(train_word2vec(corpus, CONFIG), tmp_path)
    keys = (tmp_path / "vectors_keys.txt").read_text(encoding="utf-8").split("\n")
    (tmp_path / "vectors_keys.txt").write_text("\n".join(keys[1:]), encoding="utf-8")
    with pytest.raises(ArtifactError, match="do not match their keys"):
        load_vectors(tmp_path)
    (tmp_path / "vectors_keys.txt").write_text("\n".join([keys[0], *keys[:-2]]) + "\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="repeats a key"):
        load_vectors(tmp_path)


def test_similar_terms_respects_allowed_and_unknown_term(corpus: Path) -> None:
    kv = train_word2vec(corpus, CONFIG)
    sims = similar_terms(kv, "mieter", k=3, allowed={"vermieter", "wohnung", "lohn"})
    assert {s.term for s in sims} <= {"vermieter", "wohnung", "lohn"}
    assert [s.score for s in sims] == sorted((s.score for s in sims), reverse=True)
    with pytest.raises(UnknownTermError):
        similar_terms(kv, "zzz")


def test_intersection_keeps_only_neighbours_all_models_agree_on(corpus: Path) -> None:
    from dataclasses import replace

    kvs = [train_word2vec(corpus, replace(CONFIG, seed=s)) for s in (1, 2, 3)]
    both = similar_terms(kvs, "mieter", k=10, pool=3)
    for s in both:
        for kv in kvs:
            assert s.term in {t.term for t in similar_terms(kv, "mieter", k=3)}


def test_training_repeats_exactly_across_processes(corpus: Path) -> None:
    code = (
        "import sys, numpy as np; from legalsearch.embeddings import train_word2vec;"
        "from legalsearch.config import Word2VecConfig as C;"
        f"kv = train_word2vec(__import__('pathlib').Path(sys.argv[1]), C(**{CONFIG.__dict__!r}));"
        "print(float(np.abs(kv.vectors).sum()), kv.index_to_key[:3])"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code, str(corpus)], env={"PYTHONHASHSEED": seed, "PATH": ""},
                       capture_output=True, text=True, check=True).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1, outs


def test_empty_corpus_is_a_corpus_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(CorpusError):
        train_word2vec(empty, CONFIG)
