"""Citation extraction (spans, law names, chains) and resolution (ranges, titles, reasons), on a small directory."""

from __future__ import annotations

import pytest

from legalsearch.citations import Citation, Extractor, LawDirectory, resolve, section_key

BGB = [
    "§ 535", "§ 536", "§ 536a", "§ 573", "§ 573a", "§ 573b", "§ 573c", "§ 573d", "§ 574", "§ 574a", "§ 574b",
    "§ 574c", "§ 575", "§ 575a", "§ 823",
]


def _directory() -> LawDirectory:
    rows = [(f"BGB {label}", "BGB", "Bürgerliches Gesetzbuch", label) for label in BGB]
    rows += [(f"GG Art {n}", "GG", "Grundgesetz für die Bundesrepublik Deutschland", f"Art {n}") for n in (1, 2, 20)]
    rows += [(f"ZPO § {n}", "ZPO", "Zivilprozessordnung", f"§ {n}") for n in (114, 708, 711)]
    rows += [(f"SGB 5 § {n}", "SGB 5", "Sozialgesetzbuch (SGB) Fünftes Buch (V) - Gesetzliche Krankenversicherung -",
              f"§ {n}") for n in (31, 92)]
    rows += [(f"BBiG 2005 § {n}", "BBiG 2005", "Berufsbildungsgesetz", f"§ {n}") for n in (1, 5)]
    rows += [(f"DMietG § {n}", "DMietG", "Demo-Mietrechtsgesetz", f"§ {n}") for n in (5, 6, 13, 14)]
    return LawDirectory.from_sections(rows)


DIRECTORY = _directory()
EXTRACTOR = Extractor(DIRECTORY)


def _resolve(text: str, context: str | None = None) -> list[tuple[str, tuple[str, ...], str | None]]:
    return [(c.surface, r.targets, r.reason)
            for c in EXTRACTOR.extract(text) for r in [resolve(c, DIRECTORY, context, max_range=50)]]


@pytest.mark.parametrize(
    ("text", "surface", "targets"),
    [
        ("nach § 573 Abs. 2 BGB kann", "§ 573 Abs. 2 BGB", ("BGB § 573",)),
        ("die §§ 573, 574 BGB gelten", "§§ 573, 574 BGB", ("BGB § 573", "BGB § 574")),
        ("§ 573 ff. BGB", "§ 573 ff. BGB", ("BGB § 573",)),
        ("gemäß § 573c Abs. 1 Satz 2 BGB.", "§ 573c Abs. 1 Satz 2 BGB", ("BGB § 573c",)),
        ("aus Art. 1 Abs. 1 GG folgt", "Art. 1 Abs. 1 GG", ("GG Art 1",)),
        ("§ 13 Abs. 2 Nr. 2 DMietG", "§ 13 Abs. 2 Nr. 2 DMietG", ("DMietG § 13",)),
        ("nach § 823 Abs. 1 des Bürgerlichen Gesetzbuchs haftet", "§ 823 Abs. 1 des Bürgerlichen Gesetzbuchs",
         ("BGB § 823",)),
        ("Art. 20 des Grundgesetzes", "Art. 20 des Grundgesetzes", ("GG Art 20",)),
        ("§ 6 des Demo-Mietrechtsgesetzes", "§ 6 des Demo-Mietrechtsgesetzes", ("DMietG § 6",)),
        ("§ 31 SGB V", "§ 31 SGB V", ("SGB 5 § 31",)),
        ("§ 92 des Fünften Buches Sozialgesetzbuch", "§ 92 des Fünften Buches Sozialgesetzbuch", ("SGB 5 § 92",)),
        ("§ 5 BBiG", "§ 5 BBiG", ("BBiG 2005 § 5",)),
        ("§§ 280 Abs. 1 und 3, 575 BGB", "§§ 280 Abs. 1 und 3, 575 BGB", ("BGB § 575",)),
        ("§ 114 Abs. 1 Satz 1 ZPO .", "§ 114 Abs. 1 Satz 1 ZPO", ("ZPO § 114",)),
    ],
)
def test_one_citation_its_span_and_targets(text: str, surface: str, targets: tuple[str, ...]) -> None:
    found = _resolve(text)
    assert len(found) == 1, found
    got_surface, got_targets, reason = found[0]
    assert got_surface == surface
    assert text[text.index(surface):text.index(surface) + len(surface)] == surface
    assert got_targets == targets and reason is None


def test_ranges_hold_every_lettered_section_in_the_laws_order() -> None:
    [(_, targets, _)] = _resolve("§§ 573 bis 575 BGB")
    assert targets == ("BGB § 573", "BGB § 573a", "BGB § 573b", "BGB § 573c", "BGB § 573d", "BGB § 574",
                       "BGB § 574a", "BGB § 574b", "BGB § 574c", "BGB § 575")
    [(_, within, _)] = _resolve("die §§ 574 bis 574b", context="BGB")
    assert within == ("BGB § 574", "BGB § 574a", "BGB § 574b")


def test_chains_split_and_a_group_takes_the_law_named_at_the_end() -> None:
    assert _resolve("§ 536 Abs. 1 i.V.m. § 535 BGB") == [
        ("§ 536 Abs. 1", ("BGB § 536",), None), ("§ 535 BGB", ("BGB § 535",), None)]
    assert _resolve("§ 573 und § 574 BGB")[0][1] == ("BGB § 573",)
    assert _resolve("§ 114 ZPO in Verbindung mit Art. 1 GG") == [
        ("§ 114 ZPO", ("ZPO § 114",), None), ("Art. 1 GG", ("GG Art 1",), None)]
    assert [s for s, _, _ in _resolve("§ 708 Nr. 11, § 711 ZPO")] == ["§ 708 Nr. 11", "§ 711 ZPO"]


def test_bare_references_resolve_within_the_citing_law_only() -> None:
    assert _resolve("nach § 573 ist", context="BGB") == [("§ 573", ("BGB § 573",), None)]
    assert _resolve("nach § 573 dieses Gesetzes", context="BGB") == [("§ 573 dieses Gesetzes", ("BGB § 573",), None)]
    assert _resolve("nach § 573 ist") == [("§ 573", (), "no law")]


def test_unresolvable_citations_are_kept_with_their_reason() -> None:
    assert _resolve("§ 5 BayBO") == [("§ 5 BayBO", (), "unknown law")]
    assert _resolve("§ 7 des Atomgesetzes") == [("§ 7 des Atomgesetzes", (), "unknown law")]
    assert _resolve("§ 999 BGB") == [("§ 999 BGB", (), "missing section")]
    # a law the corpus lacks is unknown even inside a statute: never the citing law instead
    assert _resolve("§ 5 des Atomgesetzes", context="BGB")[0][2] == "unknown law"
    partly = resolve(EXTRACTOR.extract("§§ 573, 999 BGB")[0], DIRECTORY)
    assert partly.targets == ("BGB § 573",) and partly.missing == ("BGB § 999",) and partly.reason is None


def test_bad_ranges_never_crash_and_are_counted() -> None:
    assert _resolve("§§ 9 bis 3 BGB") == [("§§ 9 bis 3 BGB", (), "malformed range")]
    huge = resolve(EXTRACTOR.extract("§§ 1 bis 10000 BGB")[0], DIRECTORY, max_range=5)
    assert len(huge.targets) == 5 and huge.capped == len(BGB) - 5
    assert resolve(EXTRACTOR.extract("§§ 1 bis 99999999999999999999 BGB")[0], DIRECTORY).reason is None


@pytest.mark.parametrize("text", ["Art und Weise", "§", "§§", "§ BGB", "Artikel", "1 § 2", "§§§§ 5", "§ 5 Abs.",
                                  "§ 5 Abs. 1 und", "x" * 1000 + "§ 1" * 500, "\u00a7\u00a0573\u00a0BGB"])
def test_odd_text_gives_citations_or_nothing(text: str) -> None:
    for c in EXTRACTOR.extract(text):
        assert isinstance(c, Citation) and text[c.start:c.end] == c.surface
        resolve(c, DIRECTORY)


def test_words_that_look_like_abbreviations_are_no_laws() -> None:
    assert [c.law for c in EXTRACTOR.extract("§ 5 Abs. 1 EUR 100")] == [None]
    assert [c.law for c in EXTRACTOR.extract("§ 5 GmbH")] == [None]


def test_section_order() -> None:
    assert sorted(["574", "573a", "573", "10", "573b"], key=section_key) == ["10", "573", "573a", "573b", "574"]
