"""Feedback: the reader (labelled questions, clicks, bad records, the split) and the vote / prior arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from legalsearch.errors import CorpusError, InvalidRequestError
from legalsearch.evaluate import split_of
from legalsearch.feedback import prior_of, read_feedback, vote_weights

KNOWN = {"A § 1": 0, "A § 2": 1, "A § 3": 2, "B § 1": 3}


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n"
                            for x in lines), encoding="utf-8")
    return path


def test_labelled_questions_and_clicks_are_read_and_merged(tmp_path: Path) -> None:
    path = _write(tmp_path / "fb.jsonl", [
        {"id": "q1", "query": "Darf der Vermieter kündigen?", "relevant": ["A § 1", "A § 2"]},
        {"query": "kaution zurück", "clicked": "A § 3", "count": 3},
        {"query": "kaution zurück", "clicked": "A § 3"},
        {"query": "kaution zurück", "clicked": "B § 1", "count": 2.5},
        "",
    ])
    read = read_feedback([path], KNOWN)
    by_key = {q.key: q for q in read.questions}
    assert set(by_key) == {"q1", "kaution zurück"}  # a click without id is keyed by its query text
    assert by_key["q1"].docs == (("A § 1", 1.0), ("A § 2", 1.0))
    assert by_key["kaution zurück"].docs == (("A § 3", 4.0), ("B § 1", 2.5))
    assert read.records == 4 and not read.report.skipped
    assert "2 questions, 4 answers; skipped none" in read.summary()


def test_bad_records_are_skipped_and_reported_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "fb.jsonl", [
        {"id": "q1", "query": "gut", "relevant": ["A § 1", "X § 9"]},  # one unknown id: the rest is kept
        {"id": "q2", "query": "   ", "relevant": ["A § 1"]},
        "{not json",
        {"id": "q3", "query": "nur unbekannt", "relevant": ["X § 1"]},
        {"id": "q4", "query": "beides", "relevant": ["A § 1"], "clicked": "A § 2"},
        {"query": "klick", "clicked": "A § 2", "count": -1},
        ["a", "list"],
    ])
    read = read_feedback([path], KNOWN)
    assert [q.key for q in read.questions] == ["q1"]
    assert read.questions[0].docs == (("A § 1", 1.0),)
    lines = [(s.source, s.line, s.reason) for s in read.report.skipped]
    assert ("fb.jsonl", 1, "unknown document id") in lines
    assert ("fb.jsonl", 2, "empty query") in lines
    assert ("fb.jsonl", 3, "broken JSON") in lines
    assert ("fb.jsonl", 4, "unknown document id") in lines
    assert ("fb.jsonl", 5, "not a feedback record (needs 'relevant' or 'clicked')") in lines
    assert ("fb.jsonl", 6, "invalid click count") in lines
    assert ("fb.jsonl", 7, "not an object") in lines
    assert "skipped 7" in read.summary()


def test_the_split_is_the_split_of_eval(tmp_path: Path) -> None:
    ids = [f"q{i}" for i in range(40)]
    path = _write(tmp_path / "fb.jsonl", [{"id": i, "query": f"Frage {i}", "relevant": ["A § 1"]} for i in ids])
    tune = read_feedback([path], KNOWN, "tune")
    test = read_feedback([path], KNOWN, "test")
    assert {q.key for q in tune.questions} == {i for i in ids if split_of(i) == "tune"}
    assert {q.key for q in test.questions} == {i for i in ids if split_of(i) == "test"}
    assert tune.other_split == len(test.questions) and 0 < len(tune.questions) < 40
    assert tune.sha256 != test.sha256
    assert read_feedback([path], KNOWN, "tune").sha256 == tune.sha256  # stable
    with pytest.raises(InvalidRequestError):
        read_feedback([path], KNOWN, "train")  # type: ignore[arg-type]


def test_a_missing_feedback_file_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        read_feedback([tmp_path / "absent.jsonl"], KNOWN)


def test_vote_weights_and_prior_are_log_scaled() -> None:
    assert vote_weights({0: 1.0, 1: 1.0}) == {0: 1.0, 1: 1.0}
    clicks = vote_weights({0: 9.0, 1: 1.0})
    assert clicks[0] == 1.0 and clicks[1] == pytest.approx(np.log(2) / np.log(10))
    prior = prior_of([{0: 1.0, 1: 1.0}, {0: 1.0}, {2: 3.0}], 4)
    assert prior.dtype == np.float32 and prior[3] == 0.0
    assert prior[2] == pytest.approx(1.0) and prior[0] == pytest.approx(np.log(3) / np.log(4))
    assert prior[1] < prior[0] < prior[2]
