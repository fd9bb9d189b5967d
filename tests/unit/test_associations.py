"""Lay -> legal term associations: NPMI over feedback questions, minimum counts, best first, saved and loaded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from legalsearch.associations import ASSOCIATIONS_FILE, Associations, learn_associations
from legalsearch.errors import ArtifactError

QUESTIONS = [
    (["eigenbedarf", "tochter"], ["mietverhältnis", "kündigung", "vermieter"]),
    (["eigenbedarf", "wohnung"], ["mietverhältnis", "kündigung", "wohnraum"]),
    (["eigenbedarf", "sohn"], ["mietverhältnis", "vermieter"]),
    (["chef", "kündigung"], ["arbeitsverhältnis", "kündigung"]),
    (["chef", "urlaub"], ["arbeitsverhältnis", "urlaub"]),
    (["brauerei"], ["eigenverbrauch"]),
]


def test_npmi_of_words_and_answer_keywords() -> None:
    found = learn_associations(QUESTIONS, min_count=2, min_npmi=0.0, limit=5)
    terms = [a.term for a in found.of("eigenbedarf")]
    assert terms[0] == "mietverhältnis" and "kündigung" in terms and "eigenverbrauch" not in terms
    first = found.of("eigenbedarf")[0]
    assert first.npmi == pytest.approx(1.0) and first.count == 3
    vermieter = next(a for a in found.of("eigenbedarf") if a.term == "vermieter")
    p = 2 / 6
    assert vermieter.npmi == pytest.approx(round(math.log(p / (3 / 6 * 2 / 6)) / -math.log(p), 4))


def test_minimum_count_and_npmi_and_limit() -> None:
    assert "brauerei" not in learn_associations(QUESTIONS, min_count=2, min_npmi=0.0, limit=5)
    assert "brauerei" in learn_associations(QUESTIONS, min_count=1, min_npmi=0.0, limit=5)
    assert len(learn_associations(QUESTIONS, min_count=2, min_npmi=0.0, limit=1).of("eigenbedarf")) == 1
    strict = learn_associations(QUESTIONS, min_count=2, min_npmi=0.99, limit=5)
    assert [a.term for a in strict.of("eigenbedarf")] == ["mietverhältnis"]
    assert all(a.term != "kündigung" for a in learn_associations(QUESTIONS, 1, -1.0, 9).of("kündigung"))


def test_saved_and_loaded(tmp_path: Path) -> None:
    found = learn_associations(QUESTIONS, min_count=2, min_npmi=0.0, limit=5)
    found.save(tmp_path)
    loaded = Associations.load(tmp_path)
    assert loaded is not None and loaded.terms == found.terms and loaded.params["questions"] == 6
    assert Associations.load(tmp_path / "none") is None
    (tmp_path / ASSOCIATIONS_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ArtifactError):
        Associations.load(tmp_path)
