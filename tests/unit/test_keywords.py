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
    model.save(tmp_path)
    assert PhraseModel.load(tmp_path) == model


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
    result.model.save(tmp_path)
    loaded = KeywordModel.load(tmp_path)
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


def _gensim_phrases(sentences: list[list[str]], config: PhrasesConfig) -> dict[tuple[str, str], float]:
    from gensim.models.phrases import Phrases

    model = Phrases(sentences, min_count=config.min_count, threshold=config.threshold, scoring="npmi",
                    delimiter="_")
    return {tuple(p.split("_")): float(s) for p, s in model.export_phrases().items()}  # type: ignore[misc]


def test_phrase_counting_gives_gensims_own_phrases() -> None:
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    sentences = [[words[int(j)] for j in rng.zipf(1.6, size=int(rng.integers(0, 30))) % 40] for _ in range(400)]
    sentences += [["miete", "kündigung", "frist"]] * 9 + [[]]
    config = PhrasesConfig(min_count=3, threshold=0.1, max_phrases=10_000)
    assert learn_phrases(sentences, config).scores == _gensim_phrases(sentences, config)


def test_phrase_application_is_greedy_from_the_left() -> None:
    model = PhraseModel({("a", "b"): 0.9, ("b", "c"): 0.8, ("c", "d"): 0.7})

    def reference(tokens: list[str]) -> list[str]:  # the loop apply() replaced
        out, i = [], 0
        while i < len(tokens):
            if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) in model.scores:
                out.append(tokens[i] + "_" + tokens[i + 1])
                i += 2
            else:
                out.append(tokens[i])
                i += 1
        return out

    rng = np.random.default_rng(5)
    for _ in range(500):
        tokens = [str(x) for x in rng.choice(list("abcde"), size=int(rng.integers(0, 12)))]
        assert model.apply(tokens) == reference(tokens), tokens
    assert model.apply(["a", "b", "c", "d"]) == ["a_b", "c_d"]
    assert PhraseModel({}).apply(["a", "b"]) == ["a", "b"]


def test_phrase_counting_prunes_as_gensim_does_past_its_vocabulary_cap() -> None:
    from gensim.models.phrases import Phrases

    from legalsearch.keywords import _count_into

    rng = np.random.default_rng(11)
    sentences = [[f"w{int(j)}" for j in rng.zipf(1.4, size=int(rng.integers(1, 25))) % 200] for _ in range(300)]
    params = {"min_count": 2, "threshold": 0.0, "scoring": "npmi", "delimiter": "_", "max_vocab_size": 150}
    ours = Phrases(None, **params)
    _count_into(ours, sentences)
    theirs = Phrases(sentences, **params)
    assert ours.corpus_word_count == theirs.corpus_word_count
    assert ours.export_phrases() == theirs.export_phrases() != {}
