from pathlib import Path

import numpy as np
import pytest

from legalsearch.config import KeywordsConfig, PhrasesConfig
from legalsearch.errors import CorpusError
from legalsearch.keywords import (
    DocumentKeywords,
    KeywordModel,
    PhraseModel,
    csr_rows,
    extract_keywords,
    learn_phrases,
)

DOCS = [
    ["ordentliche", "kündigung", "mietvertrag", "vermieter", "berechtigt", "interesse"],
    ["ordentliche", "kündigung", "arbeitsvertrag", "arbeitgeber", "frist"],
    ["außerordentliche", "kündigung", "wichtig", "grund", "mietvertrag"],
    ["ordentliche", "kündigung", "frist", "monat", "vermieter"],
    ["kaution", "mieter", "vermieter", "rückzahlung"],
    ["ordentliche", "kündigung", "eigenbedarf", "vermieter"],
]


def test_learn_phrases_finds_recurring_bigram_and_applies_greedily() -> None:
    phrases = learn_phrases(DOCS * 3, PhrasesConfig(min_count=3, threshold=0.3))
    assert ("ordentliche", "kündigung") in phrases.scores
    assert phrases.apply(["die", "ordentliche", "kündigung", "frist"]) == ["die", "ordentliche_kündigung", "frist"]


def test_phrases_disabled_and_round_trip(tmp_path: Path) -> None:
    assert len(learn_phrases(DOCS, PhrasesConfig(enabled=False))) == 0
    model = PhraseModel({("a", "b"): 0.9, ("c", "d"): 0.5})
    model.save(tmp_path / "p.tsv")
    assert PhraseModel.load(tmp_path / "p.tsv") == model


def test_extract_keywords_weights_rare_terms_above_common_ones() -> None:
    result = extract_keywords(iter(DOCS), KeywordsConfig(min_df=1, max_df=0.9, top_k=3))
    vocab = result.model.vocabulary
    assert "kündigung" in vocab
    first = result.documents.of(0, vocab)
    assert len(first) == 3
    terms = [k.term for k in first]
    # "berechtigt" occurs once in the corpus, "kündigung" in 4 of 6 documents
    assert "berechtigt" in terms and "kündigung" not in terms
    assert [k.weight for k in first] == sorted((k.weight for k in first), reverse=True)
    assert result.tfidf.shape == (len(DOCS), len(vocab))


def test_max_df_prunes_ubiquitous_terms() -> None:
    result = extract_keywords(iter(DOCS), KeywordsConfig(min_df=1, max_df=0.5))
    assert "kündigung" not in result.model.term_index
    assert "vermieter" not in result.model.term_index  # 4 of 6 documents


def test_no_terms_left_is_a_corpus_error() -> None:
    with pytest.raises(CorpusError):
        extract_keywords(iter([["a"], ["b"]]), KeywordsConfig(min_df=5))


def test_weigh_matches_document_weights_and_round_trips(tmp_path: Path) -> None:
    result = extract_keywords(iter(DOCS), KeywordsConfig(min_df=1, max_df=0.9, top_k=50))
    weighed = {k.term: k.weight for k in result.model.weigh(DOCS[0])}
    stored = {k.term: k.weight for k in result.documents.of(0, result.model.vocabulary)}
    assert weighed.keys() == stored.keys()
    for term, w in stored.items():
        assert weighed[term] == pytest.approx(w, rel=1e-5)
    result.model.save(tmp_path / "vocab.tsv")
    loaded = KeywordModel.load(tmp_path / "vocab.tsv")
    assert loaded.vocabulary == result.model.vocabulary
    np.testing.assert_allclose(loaded.idf, result.model.idf, rtol=1e-6)
    result.documents.save(tmp_path)
    again = DocumentKeywords.load(tmp_path)
    assert again.of(2, loaded.vocabulary) == result.documents.of(2, result.model.vocabulary)


def test_rows_gathers_several_rows_like_one_at_a_time() -> None:
    kws = DocumentKeywords(
        np.array([0, 2, 2, 5], dtype=np.int64),
        np.array([4, 1, 0, 3, 2], dtype=np.int32),
        np.array([0.5, 0.25, 0.75, 0.125, 0.0625], dtype=np.float32),
    )
    vocabulary = ["a", "b", "c", "d", "e"]
    found = kws.rows([2, 1, 0, 2])
    assert found.bounds == [0, 3, 3, 5, 8]
    for r, row in enumerate([2, 1, 0, 2]):
        lo, hi = found.bounds[r], found.bounds[r + 1]
        assert [(vocabulary[t], w) for t, w in zip(found.terms[lo:hi], found.weights[lo:hi], strict=True)] == [
            (k.term, k.weight) for k in kws.of(row, vocabulary)
        ]
    assert csr_rows(kws.indptr, []).bounds == [0]
    assert csr_rows(kws.indptr, []).positions.size == 0
