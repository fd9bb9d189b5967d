"""German preprocessing: abbreviations, citations, lemmas, stopwords, numbers, compounds, spans, streaming."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import preprocess, token_spans

from legalsearch.config import PreprocessConfig, config_from_dict
from legalsearch.errors import ConfigError
from legalsearch.text import (
    MAX_CHUNK_CHARS,
    MAX_COMPOUND_CHARS,
    MAX_COMPOUND_PARTS,
    Preprocessor,
    TokenSpan,
)
from legalsearch.text.memo import memo_budget
from legalsearch.text.parallel import ship, unship
from legalsearch.text.tokenizer import spans as stretches

DEMO = Path(__file__).resolve().parents[2] / "corpora" / "demo"


@pytest.fixture(scope="module")
def pre() -> Preprocessor:
    return Preprocessor(PreprocessConfig())


def test_abbreviations_stay_whole_and_are_dropped(pre: Preprocessor) -> None:
    words = [t.text for t in pre._tokenizer("vgl. z.B. i.V.m. ggf. d.h. u.a. BGBl. Urt. bzw. etc. Miete")]
    for abbr in ("vgl.", "z.B.", "i.V.m.", "ggf.", "d.h.", "u.a.", "BGBl.", "Urt.", "bzw.", "etc."):
        assert abbr in words
    # none of them leaks a fragment ("z", "b", "bgbl", "urt") into the tokens
    assert pre.tokens("vgl. z.B. i.V.m. ggf. d.h. u.a. BGBl. Urt. bzw. etc. Miete") == ["miete"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nach § 573 Abs. 2 BGB", ["§573", "§573@bgb"]),
        ("§§ 573, 574 BGB", ["§573", "§573@bgb", "§574", "§574@bgb"]),
        ("§ 573b", ["§573b"]),
        ("§573 BGB", ["§573", "§573@bgb"]),
        ("Art. 1 GG", ["art1", "art1@gg"]),
        ("§ 5 DMietG", ["§5", "§5@dmietg"]),
        ("§ 9 Abs. 2 Satz 2 ArbGG", ["§9", "§9@arbgg"]),
        ("§ 201 Abs. 1 SGB V", ["§201", "§201@sgbv"]),
        ("Art. 6 Abs. 1 lit. f DSGVO", ["art6", "art6@dsgvo"]),
        ("§ 72b Rn. 59", ["§72b"]),
    ],
)
def test_citations(pre: Preprocessor, text: str, expected: list[str]) -> None:
    assert pre.tokens(text) == expected


def test_citation_in_decision_matches_query_citation(pre: Preprocessor) -> None:
    decision = pre.tokens("Die Kündigung ist nach § 573 Abs. 2 Nr. 1 BGB i.V.m. § 574 BGB wirksam.")
    query = pre.tokens("§ 573 BGB")
    assert set(query) <= set(decision)
    assert not any(" " in t or "_" in t for t in decision)


def test_citations_off_keeps_no_citation_tokens() -> None:
    toks = Preprocessor(PreprocessConfig(citations=False)).tokens("nach § 573 Abs. 2 BGB")
    assert not any(t.startswith("§") for t in toks)


def test_lemmas_and_lowercase(pre: Preprocessor) -> None:
    toks = pre.tokens("Mietverträge wurden gekündigt. Kündigungen")
    assert toks[:2] == ["mietvertrag", "kündigen"]
    assert "kündigung" in toks
    # lowercase query input finds the capitalised noun in the case-sensitive table
    assert pre.tokens("mietverträge") == ["mietvertrag"]
    assert Preprocessor(PreprocessConfig(lowercase=False, split_compounds=False)).tokens(
        "Mietverträge"
    ) == ["Mietvertrag"]


def test_simplemma_lemmatizer() -> None:
    toks = Preprocessor(PreprocessConfig(lemmatizer="simplemma", split_compounds=False)).tokens(
        "Mietverträge gekündigt"
    )
    assert toks == ["mietvertrag", "kündigen"]


def test_stopwords_and_exceptions(pre: Preprocessor) -> None:
    assert pre.tokens("Der Mieter und die Vermieterin haben es gemäß dem Vertrag") == [
        "mieter", "vermieterin", "vertrag"
    ]
    # "Recht" is on spaCy's list but a content word in law
    assert pre.tokens("das Recht") == ["recht"]
    keep = Preprocessor(PreprocessConfig(remove_stopwords=False, split_compounds=False))
    assert "der" in keep.tokens("Der Mieter")


def test_numbers(pre: Preprocessor) -> None:
    assert pre.tokens("am 12. Oktober 2017 zahlte er 1,5 Mio. Euro") == ["oktober", "zahlen", "euro"]
    keep = Preprocessor(PreprocessConfig(numbers="keep"))
    assert keep.tokens("am 12. Oktober 2017") == ["12", "oktober", "2017"]
    # subsection numbers of a citation never become tokens of their own
    assert keep.tokens("§ 573 Abs. 2 BGB") == ["§573", "§573@bgb"]


def test_punctuation_and_min_chars(pre: Preprocessor) -> None:
    assert pre.tokens("( Miete ) ; - ! a") == ["miete"]
    assert Preprocessor(PreprocessConfig(min_token_chars=6)).tokens("Miete Kaution") == ["kaution"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Mietvertragskündigung", ["mietvertragskündigung", "mietvertrag", "kündigung"]),
        ("Kündigungsfrist", ["kündigungsfrist", "kündigung", "frist"]),
        ("Mietvertragskündigungen", ["mietvertragskündigung", "mietvertrag", "kündigung"]),
        ("Landgericht", ["landgericht", "land", "gericht"]),
        ("Mietvertragskündigungsfrist", ["mietvertragskündigungsfrist", "mietvertragskündigung",
                                         "mietvertrag", "kündigung", "frist"]),
        # known words are not split, so no "bein" + "halten" and no "anwalt" + "schaft"
        ("beinhalten", ["beinhalten"]),
        ("Anwaltschaft", ["anwaltschaft"]),
    ],
)
def test_compounds(pre: Preprocessor, word: str, expected: list[str]) -> None:
    assert pre.tokens(word) == expected


def test_compounds_off() -> None:
    assert Preprocessor(PreprocessConfig(split_compounds=False)).tokens("Kündigungsfrist") == ["kündigungsfrist"]


def test_hyphen_and_slash_words(pre: Preprocessor) -> None:
    assert pre.tokens("Miet-Kaution") == ["miet-kaution", "miet", "kaution"]
    assert pre.tokens("Mieter_innen und/oder") == ["mieter", "innen"]
    for tok in pre.tokens("Miet-Kaution Mieter_innen\u00a0Wohnung\nMiete"):
        assert "_" not in tok and not any(c.isspace() for c in tok)


def test_pipe_equals_tokens(pre: Preprocessor) -> None:
    texts = [
        "Die Mietvertragskündigung nach § 573 Abs. 2 BGB ist unwirksam.",
        "",
        "Art. 1 GG schützt die Würde des Menschen.",
        "z.B. 12 Kündigungsfristen",
    ] * 3
    small = Preprocessor(PreprocessConfig(batch_size=2))
    assert list(small.pipe(texts)) == [pre.tokens(t) for t in texts]
    assert list(preprocess(iter(texts), PreprocessConfig())) == [pre.tokens(t) for t in texts]


def test_pipe_parallel_equals_serial(pre: Preprocessor) -> None:
    texts = [f"Urteil {i}: Kündigung nach § {i} BGB, Mietvertragskündigung" for i in range(50)]
    texts[10:10] = ["", "  ", "z.B. 12", "Die Mietvertragskündigung nach §§ 573, 574 BGB i.V.m. Art. 1 GG."]
    par = Preprocessor(PreprocessConfig(n_process=2, batch_size=3))
    assert list(par.pipe(texts)) == [pre.tokens(t) for t in texts]
    serial_grouped = list(Preprocessor(PreprocessConfig()).pipe_grouped(texts))
    assert list(par.pipe_grouped(texts)) == serial_grouped
    assert any("|" in g for toks in serial_grouped for g in toks)


def test_worker_results_round_trip() -> None:
    batch = [["miete", "§573@bgb"], [], ["mietvertragskündigung|mietvertrag|kündigung"], []]
    shipped = ship(batch)
    assert isinstance(shipped, str)
    assert unship(shipped) == batch
    assert unship(ship([[]])) == [[]]
    # a token that breaks the no-whitespace rule travels as lists, so the round trip stays exact
    odd = [["a b", "c"], ["d\ne"]]
    assert ship(odd) == odd
    assert unship(ship(odd)) == odd


def test_memo_answers_repeated_texts_identically() -> None:
    fresh = Preprocessor(PreprocessConfig())
    texts = ["Die Kündigung nach § 573 Abs. 2 BGB, Mietvertragskündigung und Art. 1 GG."] * 3
    first, *rest = list(fresh.pipe(texts))
    assert first == ["kündigung", "§573", "§573@bgb", "mietvertragskündigung", "mietvertrag", "kündigung",
                     "art1", "art1@gg"]
    assert rest == [first, first]
    grouped = list(fresh.pipe_grouped(texts))
    assert grouped[0] == grouped[2] == ["kündigung", "§573|§573@bgb",
                                        "mietvertragskündigung|mietvertrag|kündigung", "art1|art1@gg"]
    # the tokenizer keeps far more than spaCy's default 10,000 chunks (its cache never changes the tokens)
    assert fresh._tokenizer.max_cache_size >= 100_000


def test_pipe_is_lazy(pre: Preprocessor) -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"Kündigung Nummer {i}"

    lazy = Preprocessor(PreprocessConfig(batch_size=10, n_process=1))
    first = list(itertools.islice(lazy.pipe(endless()), 3))
    assert first == [["kündigung"]] * 3
    assert pulled < 100


def test_token_spans_map_back(pre: Preprocessor) -> None:
    text = "Die Mietvertragskündigung wurde nach § 573 Abs. 2 BGB gekündigt."
    spans = token_spans(pre, text)
    assert all(isinstance(s, TokenSpan) for s in spans)
    for s in spans:
        assert text[s.start : s.end] == s.surface
    by_surface = {s.surface: s.tokens for s in spans}
    assert by_surface["Mietvertragskündigung"] == ("mietvertragskündigung", "mietvertrag", "kündigung")
    assert by_surface["§ 573 Abs. 2 BGB"] == ("§573", "§573@bgb")
    assert by_surface["gekündigt"] == ("kündigen",)
    assert [t for s in spans for t in s.tokens] == pre.tokens(text)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spans[0].start = 1  # type: ignore[misc]


def test_fingerprint(pre: Preprocessor) -> None:
    same = Preprocessor(PreprocessConfig())
    assert pre.fingerprint == same.fingerprint
    assert pre.fingerprint != Preprocessor(PreprocessConfig(split_compounds=False)).fingerprint
    assert pre.fingerprint != Preprocessor(PreprocessConfig(numbers="keep")).fingerprint
    # how the work is batched does not change the tokens, so it keeps caches valid
    assert pre.fingerprint == Preprocessor(PreprocessConfig(batch_size=7, n_process=2)).fingerprint


def test_deterministic() -> None:
    text = "Die Kündigungsfristen des Mietvertrags nach §§ 573, 573c BGB, z.B. 3 Monate."
    a = Preprocessor(PreprocessConfig()).tokens(text)
    b = Preprocessor(PreprocessConfig()).tokens(text)
    assert a == b
    assert a == Preprocessor(PreprocessConfig()).tokens(text)


def test_invalid_config() -> None:
    with pytest.raises(ConfigError, match="min_token_chars = 0: must be between 1 and"):
        config_from_dict({"preprocess": {"min_token_chars": 0}})


def test_small_inputs_stay_in_process_even_with_workers_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from legalsearch.config import PreprocessConfig
    from legalsearch.text import Preprocessor

    pre = Preprocessor(PreprocessConfig(n_process=2, batch_size=4))

    def no_pool(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a worker pool was started for a single batch")

    monkeypatch.setattr(pre, "_pipe_parallel", no_pool)
    assert next(pre.pipe_grouped(["Die Kündigung des Mietvertrags"])) == next(
        Preprocessor(PreprocessConfig(batch_size=4)).pipe_grouped(["Die Kündigung des Mietvertrags"])
    )
    assert list(pre.pipe(["Miete", "Kaution"])) == [["miete"], ["kaution"]]


def test_pipe_spans_equals_token_spans_text_by_text() -> None:
    texts = [
        "Nach § 573 Abs. 2 BGB kann der Vermieter die Mietvertragskündigung erklären.",
        "",
        "   ",
        "Art. 1 GG; vgl. §§ 573, 574 BGB und Nr. 3 — die Kündigung, die Kündigung!",
        "Der Mieter (M.) zahlt 1.200,00 EUR; die Zahlung ist fällig.  Doppelte  Leerzeichen\tund Tabs.",
    ] * 3
    # a fresh preprocessor each: the first texts fill the hash memo that later ones are answered from
    fresh, batched = Preprocessor(PreprocessConfig(batch_size=2)), Preprocessor(PreprocessConfig(batch_size=2))
    expected = [token_spans(fresh, t) for t in texts]
    got = list(batched.pipe_spans(texts))
    assert got == expected
    for text, spans in zip(texts, got, strict=True):
        assert all(text[s.start:s.end] == s.surface for s in spans)
    assert any(s.surface == "§ 573 Abs. 2 BGB" for s in got[0])


# ---------------------------------------------------------------- bounded cost on hostile input


ORDINARY_SENTENCE = ("Der Vermieter kann das Mietverhältnis nach § 573 Abs. 2 BGB ordentlich kündigen, wenn er ein "
                     "berechtigtes Interesse an der Beendigung hat. ")


def _cpu_seconds(fn, *args):  # type: ignore[no-untyped-def]
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


@pytest.mark.parametrize(
    "text",
    [
        "vertrag" * 2857,  # one 19,999-character "compound": recursed once per repetition, 31 s, RecursionError
        "Vertrag" * 2857,
        "§" * 19_999,  # spaCy strips a run's affixes one by one, rescanning the rest each time
        "—" * 19_999,
        "§ " * 9_999,  # each bare sign rescanned the run of signs after it
        "(" * 19_999,
        "Mietvertragskündigung" * 952,
    ],
    ids=["vertrag", "Vertrag", "paragraphs", "dashes", "spaced-paragraphs", "parens", "compounds"],
)
def test_hostile_text_costs_well_under_a_second(text: str) -> None:
    # relative to ordinary legal text of the same length on this machine (~25x here on a slow one, where the
    # quadratic rescans this guards against cost ~600x): a second, or 60x that, whichever is more
    ordinary = (ORDINARY_SENTENCE * (len(text) // len(ORDINARY_SENTENCE) + 1))[: len(text)]
    budget = max(1.0, 60 * _cpu_seconds(Preprocessor(PreprocessConfig()).tokens, ordinary))
    pre = Preprocessor(PreprocessConfig())  # fresh: no memo or tokenizer cache from other tests
    assert _cpu_seconds(pre.tokens, text) < budget
    assert _cpu_seconds(lambda t: token_spans(pre, t), text) < budget
    assert _cpu_seconds(lambda t: list(pre.pipe_spans([t])), text) < budget


def test_compound_splitting_never_recurses_over_the_input() -> None:
    # a 47-character compound of twelve parts splits with a few frames of stack to spare; the recursive splitter
    # needed 26 (three per part), the iterative one 11, whatever the word
    word = "Handwerksfachwirtfortbildungsprüfungsverordnung"
    pre = Preprocessor(PreprocessConfig())
    pre.tokens("Die Miete")  # whatever spaCy sets up on first use happens outside the measured call
    depth = len(inspect.stack())
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 20)
    try:
        tokens = pre.tokens(word)
    finally:
        sys.setrecursionlimit(limit)
    assert tokens[0] == word.lower() and {"handwerk", "fortbildung", "prüfung", "verordnung"} <= set(tokens)
    assert len(tokens) == 13


def test_compounds_are_capped_in_length_and_parts(pre: Preprocessor) -> None:
    long_word = "mietvertrag" * ((MAX_COMPOUND_CHARS // 11) + 1)
    assert len(long_word) > MAX_COMPOUND_CHARS
    assert pre.tokens(long_word) == [long_word]  # too long to be a compound: kept whole, not split
    for word in ("Mietvertragskündigungsfrist", "Handwerksfachwirtfortbildungsprüfungsverordnung"):
        assert 1 < len(pre.tokens(word)) <= MAX_COMPOUND_PARTS + 1


def test_long_runs_are_tokenized_in_pieces_with_the_text_offsets(pre: Preprocessor) -> None:
    run = "https://example.org/" + "a/(b)§" * 60
    text = f"Kündigung {run}  {'x' * (3 * MAX_CHUNK_CHARS + 5)} Mietvertrag"
    doc = pre._tokenize(text)
    assert doc.text == text
    assert all(text[t.idx : t.idx + len(t.text)] == t.text for t in doc)
    assert all(len(t.text) <= MAX_CHUNK_CHARS for t in doc)
    tokens = pre.tokens(text)
    assert tokens[0] == "kündigung" and tokens[-1] == "mietvertrag"
    for span in token_spans(pre, text):
        assert text[span.start : span.end] == span.surface
    # runs up to the limit go to spaCy whole, exactly as before
    short = "x" * MAX_CHUNK_CHARS
    assert [t.text for t in pre._tokenize(short)] == [t.text for t in pre._tokenizer(short)]


# ---------------------------------------------------------------- query tokens through the stretch memo

#: pieces that exercise spaCy's whitespace rules, its affixes, the special cases and the citation parser
_PIECES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2009", "\x1c", "a", "Abs.", "Abs", ".", "§", "§§", "(", ")",
           ",", "5", "573", "BGB", "i.V.m.", "z.B.", "-", "Miet-", "vertrag", "Kündigung", " ff.", "Art.", "GG"]


@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
@settings(max_examples=400, deadline=None)
def test_query_groups_equal_pipe_grouped(text: str) -> None:
    fresh, memoised = Preprocessor(PreprocessConfig()), _MEMOISED
    with fresh.transient():
        expected = next(fresh.pipe_grouped([text]))
    for _ in range(2):  # the second time every stretch comes from the memo
        with memoised.transient():
            assert memoised.query_groups(text) == expected


_MEMOISED = Preprocessor(PreprocessConfig())


def test_query_groups_equal_pipe_grouped_on_corpus_text() -> None:
    texts = [line for path in sorted(DEMO.glob("gesetze/**/*.md")) for line in path.read_text().splitlines()]
    texts += [json.loads(line)["text"] for line in (DEMO / "decisions.jsonl").read_text().splitlines()]
    texts += ["x" * (MAX_CHUNK_CHARS + 5) + "  §  573 BGB", "  Abs. 2\n\nSatz 1  ", ""]
    fresh, memoised = Preprocessor(PreprocessConfig()), Preprocessor(PreprocessConfig())
    expected = list(fresh.pipe_grouped(texts))
    with memoised.transient():
        assert [memoised.query_groups(t) for t in texts] == expected
    with memoised.transient():
        assert [memoised.query_groups(t) for t in texts] == expected
    assert len(memoised._span_memo) > 100


def test_spans_are_what_spacy_tokenizes_one_by_one(pre: Preprocessor) -> None:
    text = "  Nach § 573  Abs. 2\tBGB,\n\n die  Kündigung. \u00a0Ende "
    assert list(stretches(text)) == ["  ", "Nach", "§", "573", " ", "Abs.", "2", "\t", "BGB,", "\n\n ", "die", " ",
                                 "Kündigung.", "\u00a0", "Ende"]
    by_spans = [t.text for s in stretches(text) for t in pre._tokenizer(s)]
    assert by_spans == [t.text for t in pre._tokenizer(text)]


def test_memo_budget_empties_the_stretch_memo_too() -> None:
    small = Preprocessor(PreprocessConfig())
    with small.transient():
        small.query_groups("Die Kündigung des Mietvertrags nach § 573 BGB")
    assert small._span_memo
    small._charge(memo_budget() + 1)
    assert not small._span_memo
