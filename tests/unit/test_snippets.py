from pathlib import Path

import numpy as np
import pytest
from reference import make_snippet, wanted_terms

from legalsearch.config import PreprocessConfig
from legalsearch.errors import ArtifactError
from legalsearch.snippets import (
    SnippetIndex,
    head_chars,
    index_snippets,
    make_snippets,
    snippet_passages,
    wanted_ids,
)
from legalsearch.text import Preprocessor

FILLER = "Dieser Satz handelt von anderen Dingen wie Gebäuden und Straßen. "
TEXTS = [
    "Der Vermieter kann das Mietverhältnis kündigen. Die Mietvertragskündigung bedarf der Schriftform.",
    FILLER * 6 + "Der Mieter darf der Kündigung widersprechen; die Kündigung & der Widerspruch <sind> schriftlich. "
    + FILLER * 6,
    "Ein Text ohne die gesuchten Wörter, aber mit Sonderzeichen <b> & Co.",
    "Nach § 573 Abs. 2 BGB braucht der Vermieter ein berechtigtes Interesse.",
]


@pytest.fixture(scope="module")
def pre() -> Preprocessor:
    return Preprocessor(PreprocessConfig())


@pytest.fixture(scope="module")
def built(pre: Preprocessor) -> tuple[SnippetIndex, dict[str, int]]:
    vocab: dict[str, int] = {}
    for text in TEXTS:
        for token in pre.tokens(text):
            vocab.setdefault(token, len(vocab))
    return index_snippets(TEXTS, pre, vocab, snippet_chars=80), vocab


def test_marks_every_form_of_a_term_and_reports_it(built: tuple[SnippetIndex, dict[str, int]]) -> None:
    index, vocab = built
    wanted = frozenset({vocab["kündigung"]})
    snip = make_snippet(index, 0, TEXTS[0], wanted_terms(len(vocab), wanted), 200)
    # the compound produced "kündigung" as a part: the whole word is marked, once
    assert "<mark>Mietvertragskündigung</mark>" in snip.html
    assert snip.html.count("<mark>") == 1
    assert snip.matched == wanted


def test_a_compound_matching_twice_is_marked_once(built: tuple[SnippetIndex, dict[str, int]]) -> None:
    index, vocab = built
    wanted = wanted_terms(len(vocab), {vocab["mietvertrag"], vocab["kündigung"], vocab["vermieter"]})
    snip = make_snippet(index, 0, TEXTS[0], wanted, 200)
    assert snip.html.count("<mark>Mietvertragskündigung</mark>") == 1
    assert "<mark>Vermieter</mark>" in snip.html


def test_window_goes_to_the_passage_with_most_matches_and_escapes_html(
    built: tuple[SnippetIndex, dict[str, int]],
) -> None:
    index, vocab = built
    wanted = wanted_terms(len(vocab), {vocab["kündigung"], vocab["widerspruch"]})
    snip = make_snippet(index, 1, TEXTS[1], wanted, 80)
    assert snip.html.startswith("…") and snip.html.endswith("…")
    assert snip.html.count("<mark>") >= 2
    assert "&amp;" in snip.html and "<sind>" not in snip.html
    text = snip.html.replace("<mark>", "").replace("</mark>", "").strip("…")
    assert len(text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")) <= 80


def test_no_match_gives_the_escaped_lead(built: tuple[SnippetIndex, dict[str, int]]) -> None:
    index, vocab = built
    snip = make_snippet(index, 2, TEXTS[2], wanted_terms(len(vocab), {vocab["kündigung"]}), 30)
    assert snip.html == TEXTS[2][:30] + "…"
    assert snip.matched == frozenset()
    full = make_snippet(index, 2, TEXTS[2], wanted_terms(len(vocab), ()), 500)
    assert full.html == TEXTS[2].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_citations_are_marked_as_one_unit(built: tuple[SnippetIndex, dict[str, int]]) -> None:
    index, vocab = built
    snip = make_snippet(index, 3, TEXTS[3], wanted_terms(len(vocab), {vocab["§573@bgb"]}), 200)
    assert "<mark>§ 573 Abs. 2 BGB</mark>" in snip.html


def test_only_the_opening_text_is_indexed(pre: Preprocessor) -> None:
    text = "Frist " + "x" * head_chars(10) + " Kündigung"
    index = index_snippets([text], pre, {"frist": 0, "kündigung": 1}, snippet_chars=10)
    assert index.terms.tolist() == [0]


def test_round_trip_and_damage(built: tuple[SnippetIndex, dict[str, int]], tmp_path: Path) -> None:
    index, _ = built
    assert SnippetIndex.load(tmp_path) is None  # a model from before the index existed
    index.save(tmp_path)
    loaded = SnippetIndex.load(tmp_path)
    assert loaded is not None and len(loaded) == len(TEXTS)
    for name in ("indptr", "starts", "ends", "terms"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
    np.save(tmp_path / "snippets_terms.npy", index.terms[:-1])
    with pytest.raises(ArtifactError, match="inconsistent"):
        SnippetIndex.load(tmp_path)
    (tmp_path / "snippets_ends.npy").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="unreadable"):
        SnippetIndex.load(tmp_path)


def test_batched_snippets_equal_one_at_a_time(built: tuple[SnippetIndex, dict[str, int]]) -> None:
    index, vocab = built
    ids = {vocab["kündigung"], vocab["vermieter"], vocab["widerspruch"], vocab["§573@bgb"]}
    # row 2 matches nothing: first, in the middle and last of a batch
    rows = [2, 1, 0, 2, 3, 2]
    for chars in (30, 80, 500):
        batch = make_snippets(index, rows, [TEXTS[r] for r in rows], wanted_ids(ids), chars)
        single = [make_snippet(index, r, TEXTS[r], wanted_terms(len(vocab), ids), chars) for r in rows]
        assert batch == single
        passages = snippet_passages(index, rows, [TEXTS[r] for r in rows], wanted_ids(ids), chars)
        assert passages == [s.html for s in single]
    assert make_snippets(index, [], [], wanted_ids(ids), 80) == []
    assert snippet_passages(index, [], [], wanted_ids(ids), 80) == []
    assert all(s.matched == frozenset() for s in make_snippets(index, [0, 1], TEXTS[:2], wanted_ids(()), 80))


def test_worker_processes_build_the_same_index(built: tuple[SnippetIndex, dict[str, int]]) -> None:
    # batches of one text over a worker and this process: the concatenated arrays equal the one-process index
    index, vocab = built
    parallel = Preprocessor(PreprocessConfig(n_process=2, batch_size=1))
    again = index_snippets(TEXTS * 3, parallel, vocab, snippet_chars=80)
    once = index_snippets(TEXTS * 3, Preprocessor(PreprocessConfig(batch_size=1)), vocab, snippet_chars=80)
    for name in ("indptr", "starts", "ends", "terms"):
        assert getattr(again, name).dtype == getattr(index, name).dtype
        np.testing.assert_array_equal(getattr(again, name), getattr(once, name))
    np.testing.assert_array_equal(once.indptr[: len(TEXTS) + 1], index.indptr)


def test_spans_written_at_preprocessing_give_the_same_index(
    pre: Preprocessor, built: tuple[SnippetIndex, dict[str, int]]
) -> None:
    from legalsearch.snippets import UNWRITTEN, index_span_lines, span_line

    index, vocab = built
    head = head_chars(80)
    lines = [span_line(list(spans)) for spans in pre.pipe_spans(t[:head] for t in TEXTS)]
    lines[2] = UNWRITTEN  # a document whose spans could not be written: indexed from its text
    again = index_span_lines(lines, TEXTS, pre, vocab, snippet_chars=80)
    for name in ("indptr", "starts", "ends", "terms"):
        assert np.array_equal(getattr(again, name), getattr(index, name))
        assert getattr(again, name).dtype == getattr(index, name).dtype
