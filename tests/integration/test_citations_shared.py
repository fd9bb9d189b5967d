"""Citation extraction and resolution measured on the hand-labelled samples, resolved against the full law corpus.

The floors on the tuning sample are the issue's: precision >= 0.95, recall >= 0.90 (span match), resolution accuracy
>= 0.95 of the extracted citations (exact target set and reason). The held-out samples hold their measured level
less a small margin, so that a silent drop fails. docs/citations.md lists the figures and the misses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.citations import (
    HELDOUT,
    HELDOUT2,
    HELDOUT3,
    HELDOUT4,
    HELDOUT5,
    LABELS,
    SAMPLES,
    load_labels,
    ours,
    read_corpus,
    refex,
    score,
)
from legalsearch.citations import LawDirectory, directory_of

pytestmark = [pytest.mark.shared]


@pytest.fixture(scope="module")
def directory(shared_dir: Path) -> LawDirectory:
    documents, withheld = read_corpus(shared_dir / "corpora" / "gesetze-markdown.tar.gz")
    return directory_of(documents, withheld)


@pytest.mark.parametrize("path", [LABELS, HELDOUT, HELDOUT2, HELDOUT3, HELDOUT4, HELDOUT5],
                         ids=["tuning", "heldout", "heldout2", "heldout3", "heldout4", "heldout5"])
def test_the_samples_are_there_and_large_enough(path: Path) -> None:
    labels = load_labels(path)
    assert sum(len(p["citations"]) for p in labels) >= 200
    for p in labels:
        for c in p["citations"]:
            assert p["text"][c["start"]:c["end"]] == c["surface"]


def test_the_samples_share_no_passage() -> None:
    seen: set[str] = set()
    for _, _, path in SAMPLES:
        texts = {p["text"] for p in load_labels(path)}
        assert not texts & seen
        seen |= texts


def _assert_floors(directory: LawDirectory, path: Path, precision: float, recall: float, resolution: float,
                   labelled: int = 0) -> None:
    """The project's extractor on one sample: at least ``labelled`` citations scored, and the three floors."""
    s = score("legalsearch", load_labels(path), ours(directory))
    misses = "\n".join(map(str, s.misses))
    assert s.labelled >= labelled
    assert s.precision >= precision, misses
    assert s.recall >= recall, misses
    assert s.resolution_accuracy >= resolution, misses


def test_extraction_and_resolution_meet_the_floors(directory: LawDirectory) -> None:
    _assert_floors(directory, LABELS, precision=0.95, recall=0.90, resolution=0.95)


def test_the_labelled_targets_exist_in_the_corpus(directory: LawDirectory) -> None:
    # a label naming an id the corpus lacks would make every resolver look wrong
    known = {doc_id for sections in directory.sections.values() for _, _, doc_id in sections}
    for _, _, path in SAMPLES:
        missing = {t for p in load_labels(path) for c in p["citations"] for t in c["targets"]} - known
        assert not missing, path.name


def test_the_heldout_sample_keeps_its_measured_level(directory: LawDirectory) -> None:
    # first measured before it was used: precision 0.896, recall 0.904, resolution 0.931; after the rules written for
    # its error classes (docs/citations.md) 0.986 / 0.990 / 0.976, so it is no longer a held-out figure; these
    # floors only catch a silent drop
    _assert_floors(directory, HELDOUT, precision=0.98, recall=0.98, resolution=0.97, labelled=200)


def test_the_second_heldout_sample_keeps_its_measured_level(directory: LawDirectory) -> None:
    # labelled before any extractor saw it; first measured (the honest held-out figure) at precision 0.933, recall
    # 0.929, resolution 0.835; after the rules written for its error classes (docs/citations.md) 0.975 / 0.975 /
    # 0.919, after the resolution round of the fourth sample 0.975 / 0.975 / 0.966. These floors (measured less about
    # 0.015) only catch a silent drop
    _assert_floors(directory, HELDOUT2, precision=0.96, recall=0.96, resolution=0.95, labelled=200)


def test_the_third_heldout_sample_keeps_its_first_measured_level(directory: LawDirectory) -> None:
    # labelled and committed before any extractor saw it (f6407e9); first measured with the code of 0807b83 (and of
    # main before it, the same figures) at precision 0.996, recall 0.996, resolution 0.937 (208/222): the honest
    # held-out figure. The floors sit a little below that first measurement, never above it; the rules written
    # after reading its misses (03e84a0, resolution 0.973) are not held here
    _assert_floors(directory, HELDOUT3, precision=0.98, recall=0.98, resolution=0.92, labelled=200)


def test_the_fourth_heldout_sample_keeps_its_first_measured_level(directory: LawDirectory) -> None:
    # labelled and committed before any extractor saw it (77188c1); first measured with the code of main at that
    # commit (3b310ff's code) at precision 0.947 (214/226), recall 0.951 (214/225), resolution 0.949 (203/214): the
    # honest held-out figure. The floors sit a little below that first measurement, never above it; the rules written
    # after reading its misses (0.973 / 0.978 / 0.968, docs/citations.md) are not held here
    _assert_floors(directory, HELDOUT4, precision=0.93, recall=0.93, resolution=0.93, labelled=220)


def test_the_fifth_heldout_sample_keeps_its_first_measured_level(directory: LawDirectory) -> None:
    # labelled and committed before any extractor saw it (f5dab4e); first measured with the code of main at 8a24e9f
    # (the rules written after the fourth sample included) at precision 0.985 (255/259), recall 0.988 (255/258),
    # resolution 0.969 (247/255): the honest held-out figure. The floors sit a little below that first measurement
    _assert_floors(directory, HELDOUT5, precision=0.97, recall=0.97, resolution=0.95, labelled=250)


def test_the_project_extractor_finds_more_than_refex_on_every_sample(directory: LawDirectory) -> None:
    # legal-reference-extraction (the optional "compare" extra) is the extractor the issue names for comparison
    pytest.importorskip("refex")
    other = refex(directory)
    assert not isinstance(other, str)
    for _, _, path in SAMPLES:
        labels = load_labels(path)
        ours_s, refex_s = score("legalsearch", labels, ours(directory)), score("refex", labels, other)
        assert ours_s.matched > refex_s.matched and ours_s.resolved_right > refex_s.resolved_right, path.name
