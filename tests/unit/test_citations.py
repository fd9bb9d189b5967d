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
    # renamed laws whose jurabk is the old one (src/legalsearch/data/law_aliases.tsv)
    rows += [(f"BBauG § {n}", "BBauG", "Baugesetzbuch", f"§ {n}") for n in (1, 154)]
    rows += [(f"GeschmMG 2004 § {n}", "GeschmMG 2004", "Gesetz über den rechtlichen Schutz von Design", f"§ {n}")
             for n in (1, 33)]
    # an Artikelgesetz whose sections repeat inside its articles
    rows += [(f"ÄndG {label}", "ÄndG", "Erstes Änderungsgesetz", label) for label in ("Art I", "Art II")]
    rows += [(doc_id, "ÄndG", "Erstes Änderungsgesetz", "§ 3") for doc_id in ("ÄndG § 3", "ÄndG § 3 (2)")]
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


def _spans(text: str, context: str | None = None) -> list[tuple[str, str | None]]:
    return [(surface, reason) for surface, _, reason in _resolve(text, context)]


def test_a_span_ends_with_the_laws_name() -> None:
    # a date after a law's own name is no part of it; after a kind of act ("des Gesetzes") it names the act
    assert _spans("nach § 20 Abs. 1 des Emissionshandelsgesetzes vom 8. Juli 2004 (BGBl. I S. 1578) zuständig") == [
        ("§ 20 Abs. 1 des Emissionshandelsgesetzes", "unknown law")]
    assert _spans("zuletzt durch Artikel 9 des Gesetzes vom 11. August 2010 (BGBl. I S. 1163) geändert") == [
        ("Artikel 9 des Gesetzes vom 11. August 2010", "unknown law")]
    assert _spans("nach Artikel 3 des Zusatzabkommens vom 3. August 1959 zu dem Abkommen vom 19. Juni 1951 über "
                  "die Rechtsstellung der Truppen (BGBl. II S. 1)")[0][0] == (
        "Artikel 3 des Zusatzabkommens vom 3. August 1959 zu dem Abkommen vom 19. Juni 1951 über die Rechtsstellung "
        "der Truppen")
    assert _spans("im Sinne des Artikels 2 des Internationalen Übereinkommens von London von 1990 über die "
                  "Verhütung von Unfällen (BGBl. II S. 5)")[0][0] == (
        "Artikels 2 des Internationalen Übereinkommens von London von 1990 über die Verhütung von Unfällen")


def test_a_partys_document_is_no_law_even_inside_a_statute() -> None:
    assert _spans("wählen nach § 19 Nr. 3 der Satzung einen Vorstand") == [("§ 19 Nr. 3", "no law")]
    assert _spans("nach § 16 des Mietvertrags trägt der Mieter") == [("§ 16", "no law")]
    # never the citing law instead: § 573 of the BGB is not meant
    assert _spans("die nach § 573 der Satzung gewählten Mitglieder", context="BGB") == [("§ 573", "no law")]
    assert _spans("§ 2 der Betriebsvereinbarung") == [("§ 2", "no law")]


@pytest.mark.parametrize(("text", "surface"), [
    ("( Art. 2 Abs. 3 VO 881/2002 und", "Art. 2 Abs. 3 VO 881/2002"),
    ("mit Art. 9 Abs. 1 Satz 2 der Verordnung ( EG ) Nr. 207/2009 in ihrer Fassung",
     "Art. 9 Abs. 1 Satz 2 der Verordnung ( EG ) Nr. 207/2009"),
    ("nach Artikel 4 Absatz 2 Buchstabe a bis d der Verordnung (EG) Nr. 1071/2009 in der jeweils geltenden Fassung",
     "Artikel 4 Absatz 2 Buchstabe a bis d der Verordnung (EG) Nr. 1071/2009"),
    ("sind Art. 13 Abs. 1 der Richtlinie 2006 / 112 / EG des Rates vom 28. November 2006 über das gemeinsame "
     "Mehrwertsteuersystem ( MwStSystRL ) anzuwenden",
     "Art. 13 Abs. 1 der Richtlinie 2006 / 112 / EG des Rates vom 28. November 2006 über das gemeinsame "
     "Mehrwertsteuersystem"),
    ("entsprechend Artikel 8 des Durchführungsbeschlusses 2014/709/EU der Kommission.",
     "Artikel 8 des Durchführungsbeschlusses 2014/709/EU"),
    ("nach Art. 5 Verordnung (EG) Nr. 1234/2007 gilt", "Art. 5 Verordnung (EG) Nr. 1234/2007"),
])
def test_eu_acts_are_read_with_their_number(text: str, surface: str) -> None:
    assert _spans(text) == [(surface, "unknown law")]


@pytest.mark.parametrize(("text", "surface"), [
    ("verlangt § 11 Ziff. 1 und Ziff. 2 MTV Chemie 2010 für den Anspruch", "§ 11 Ziff. 1 und Ziff. 2 MTV Chemie 2010"),
    ("gelten die §§ 12 und 13 TVöD / VKA .", "§§ 12 und 13 TVöD / VKA"),
    ("nach § 69 Abs. 4 Satz 1 NV Bühne endet", "§ 69 Abs. 4 Satz 1 NV Bühne"),
    ("gemäß § 24 TVÜ-Bund gelten", "§ 24 TVÜ-Bund"),
    ("§ 4 Abs. 2 TV-L Ärzte regelt", "§ 4 Abs. 2 TV-L Ärzte"),
])
def test_collective_agreements_keep_their_branch_and_year(text: str, surface: str) -> None:
    assert _spans(text) == [(surface, "unknown law")]


def test_a_bare_article_in_a_law_of_sections_is_kept_unresolved() -> None:
    # "Artikel 7" in a law numbered in § means another act (an EU regulation named in the lead-in): never § 7
    assert _resolve("entgegen Artikel 573 Absatz 1 Unterabsatz 1 das Clearing", context="BGB") == [
        ("Artikel 573 Absatz 1 Unterabsatz 1", (), "unknown law")]
    assert _resolve("nach Artikel 20", context="GG") == [("Artikel 20", ("GG Art 20",), None)]
    assert _resolve("Art. 573 BGB")[0][1:] == ((), "missing section")  # named: the law lacks the article
    assert _resolve("§ 1 GG")[0][1:] == ((), "missing section")


def test_a_section_inside_an_article_names_the_article() -> None:
    assert _resolve("die von Artikel II § 3 Abs. 5 ÄndG erfassten Ämter") == [
        ("Artikel II § 3 Abs. 5 ÄndG", ("ÄndG Art II",), None)]
    assert _resolve("nach Artikel XI des NATO- Truppenstatuts") == [
        ("Artikel XI des NATO- Truppenstatuts", (), "unknown law")]


def test_renamed_laws_resolve_to_the_corpus_jurabk() -> None:
    assert _resolve("nach § 154 Abs. 1 Satz 1 , Abs. 2 BauGB") == [
        ("§ 154 Abs. 1 Satz 1 , Abs. 2 BauGB", ("BBauG § 154",), None)]
    assert _resolve("§ 33 Abs. 1 Nr. 1 i. V. m. § 1 Nr. 1 DesignG")[1] == ("§ 1 Nr. 1 DesignG", ("GeschmMG 2004 § 1",),
                                                                          None)


def test_law_names_the_corpus_defines_are_learned() -> None:
    rows = [("MVG § 3", "MVG", "Musterverwaltungsgesetz", "§ 3"),
            ("LFGB § 15", "LFGB", "Lebensmittel-, Bedarfsgegenstände- und Futtermittelgesetzbuch", "§ 15"),
            ("XG § 1", "XG", "Gesetz über Beispiele", "§ 1"), ("YG § 1", "YG", "Gesetz über Muster", "§ 1")]
    directory = LawDirectory.from_sections(rows)
    directory.learn_definitions([
        "Die Behörde nach dem Musterverwaltungsgesetz (MuVwG) prüft.",
        "Das Lebensmittel- und Futtermittelgesetzbuch (LFGB) gilt.",
        # two definitions of one abbreviation that disagree define nothing
        "nach dem Gesetz über Beispiele - GüB - und", "nach dem Gesetz über Muster (GüB)",
        # a kind of act, or a name that is only the start of a title, defines nothing
        "das Gesetz (ZZG)", "die Musterverwaltung (MV)",
    ])
    extractor = Extractor(directory)

    def targets(text: str) -> tuple[str, ...]:
        return resolve(extractor.extract(text)[0], directory).targets

    assert targets("§ 3 MuVwG") == ("MVG § 3",)
    assert targets("§ 15 des Lebensmittel- und Futtermittelgesetzbuchs") == ("LFGB § 15",)
    assert directory.canonical("GüB") is None and directory.canonical("ZZG") is None
    assert directory.learned == {"aliases": {"MuVwG": "MVG"}, "names": {
        "lebensmittel- und futtermittelgesetzbuch": "LFGB"}}


@pytest.mark.parametrize(("text", "surfaces"), [
    ("BSG Urteil vom 7. 12. 1965 - 10 RV 405/65 = SozR Nr 9 zu § 136 SGG ) .", []),
    ("BAG 5. Mai 2010 - 7 AZR 1/09 - AP Nr. 12 zu § 626 BGB", []),
    ("( vgl. Kimmel , a. a. O. , § 18 Rn. 3 )", []),
    ("Gosch in Kirchhof , a. a. O. , § 17 EStG Rz 88", ["§ 17 EStG"]),
    ("in § 197a Abs 1 S 1 Teils 1 SGG iVm", ["§ 197a Abs 1 S 1 Teils 1 SGG"]),
    ("Handbuch , § 82 RdNr 241 ff", ["§ 82"]),
])
def test_reporter_entries_and_positions_in_books(text: str, surfaces: list[str]) -> None:
    assert [c.surface for c in EXTRACTOR.extract(text)] == surfaces


# rules written after the second held-out sample (heldout2.jsonl) was measured, one test per error class
def _more_directory() -> LawDirectory:
    rows = [(f"BinSchStrO 2012 § {n}", "BinSchStrO 2012", "Binnenschifffahrtsstraßen-Ordnung", f"§ {n}")
            for n in ("1.01", "4.05", "6.04", "6.05", "17.23")]
    rows += [(f"FamFG § {n}", "FamFG", "Gesetz über das Verfahren in Familiensachen und in den Angelegenheiten der "
              "freiwilligen Gerichtsbarkeit", f"§ {n}") for n in (138, 375)]
    rows += [(f"HwO § {n}", "HwO", "Gesetz zur Ordnung des Handwerks", f"§ {n}") for n in (25, 122)]
    rows += [("HwWahlO § 1", "HwWahlO", "Wahlordnung für die Wahlen der Mitglieder der Vollversammlung der "
              "Handwerkskammern (Anlage C zu dem Gesetz zur Ordnung des Handwerks (Handwerksordnung))", "§ 1")]
    rows += [(f"EinigVtr Art {n}", "EinigVtr", "Vertrag zwischen der Bundesrepublik Deutschland und der Deutschen "
              "Demokratischen Republik über die Herstellung der Einheit Deutschlands", f"Art {n}") for n in (3, 8)]
    rows += [(f"UrkBefrITAG Art {n}", "UrkBefrITAG", "Gesetz zu dem Vertrag vom 7. Juni 1969 zwischen der "
              "Bundesrepublik Deutschland und der Italienischen Republik über den Verzicht auf die Legalisation von "
              "Urkunden", f"Art {n}") for n in (1, 5)]
    rows += [(f"MarkenG § {n}", "MarkenG", "Gesetz über den Schutz von Marken und sonstigen Kennzeichen", f"§ {n}")
             for n in (8, 9, 37, 42, 125)]
    rows += [(f"UmwStG 1995 § {n}", "UmwStG 1995", "Umwandlungssteuergesetz", f"§ {n}") for n in (2, 3)]
    rows += [(f"UmwStG § {n}", "UmwStG", "Umwandlungssteuergesetz alter Fassung", f"§ {n}") for n in (2,)]
    rows += [(f"StPO § {n}", "StPO", "Strafprozeßordnung", f"§ {n}") for n in (257, 337)]
    rows += [(f"VwGO § {n}", "VwGO", "Verwaltungsgerichtsordnung", f"§ {n}") for n in (100,)]
    rows += [(f"SG § {n}", "SG", "Gesetz über die Rechtsstellung der Soldaten", f"§ {n}") for n in (3,)]
    rows += [(f"BewG § {n}", "BewG", "Bewertungsgesetz", f"§ {n}") for n in (2, 21)]
    rows += [(f"LuftVStG § {n}", "LuftVStG", "Luftverkehrsteuergesetz", f"§ {n}") for n in (11,)]
    rows += [("LuftVStAbsenkV 2022 § 1", "LuftVStAbsenkV 2022", "Verordnung zur Absenkung der Steuersätze im Jahr "
              "2022 nach § 11 Absatz 2 des Luftverkehrsteuergesetzes", "§ 1")]
    rows += [("StatG § 1", "StatG", "Gesetz über die Statistik nach § 11 des Luftverkehrsteuergesetzes", "§ 1")]
    directory = LawDirectory.from_sections(rows)
    directory.add_vocabulary(["Werk und Hand"])  # section titles tell where a compound's parts begin
    return directory


MORE = _more_directory()
MORE_EXTRACTOR = Extractor(MORE)


def _more(text: str, context: str | None = None) -> list[tuple[str, tuple[str, ...], str | None]]:
    return [(c.surface, r.targets, r.reason)
            for c in MORE_EXTRACTOR.extract(text) for r in [resolve(c, MORE, context, max_range=50)]]


def test_decimal_section_numbers() -> None:
    # laws that count sections per chapter ("§ 17.23"), also with the archive's Markdown escape ("§ 4\.05")
    assert _more("den Sprechfunk nach § 17.23 in Verbindung mit § 4\\.05 Nummer 3", "BinSchStrO 2012") == [
        ("§ 17.23", ("BinSchStrO 2012 § 17.23",), None), ("§ 4\\.05 Nummer 3", ("BinSchStrO 2012 § 4.05",), None)]
    assert _more("die §§ 6.04 bis 6.05", "BinSchStrO 2012")[0][1] == (
        "BinSchStrO 2012 § 6.04", "BinSchStrO 2012 § 6.05")
    assert sorted(["6.05", "17.23", "4.05", "6.04"], key=section_key) == ["4.05", "6.04", "6.05", "17.23"]
    assert [c.surface for c in EXTRACTOR.extract("Buchholz 449.2 § 6 SLV und 1.000 Euro")] == []


def test_long_titles_and_titles_of_nested_brackets() -> None:
    text = ("auf Grund des § 138 des Gesetzes über das Verfahren in Familiensachen und in den Angelegenheiten der "
            "freiwilligen Gerichtsbarkeit als Beistand")
    assert _more(text) == [(text[text.index("§"):text.index(" als")], ("FamFG § 138",), None)]
    # "(Handwerksordnung)" inside another law's bracket names the parent law, not the Wahlordnung
    assert _more("nach § 25 der Handwerksordnung zur Ausbildung") == [
        ("§ 25 der Handwerksordnung", ("HwO § 25",), None)]


def test_treaties_by_short_title_and_acts_by_date() -> None:
    assert _more("in dem in Artikel 3 des Einigungsvertrages genannten Gebiet") == [
        ("Artikel 3 des Einigungsvertrages", ("EinigVtr Art 3",), None)]
    text = ("in Verbindung mit Artikel 5 des Gesetzes vom 30. Juli 1974 zu dem Vertrag vom 7. Juni 1969 zwischen der "
            "Bundesrepublik Deutschland und der Italienischen Republik über den Verzicht auf die Legalisation von "
            "Urkunden auch im Land Berlin.")
    assert _more(text) == [(text[text.index("Artikel"):text.index(" auch")], ("UrkBefrITAG Art 5",), None)]


def test_a_number_with_its_own_absatz_is_a_section_of_the_list() -> None:
    assert _more("gemäß §§ 37 Abs. 1 , 8 Abs. 2 Nr. 1 MarkenG wegen") == [
        ("§§ 37 Abs. 1 , 8 Abs. 2 Nr. 1 MarkenG", ("MarkenG § 37", "MarkenG § 8"), None)]
    assert _more("nach §§ 125 Nr. 1 , 42 Abs. 2 Nr. 1 , 9 Abs. 1 Nr. 2 MarkenG")[0][1] == (
        "MarkenG § 125", "MarkenG § 42", "MarkenG § 9")
    # without an Absatz of its own the smaller number still continues the parts
    assert _resolve("§§ 280 Abs. 1 und 3, 575 BGB")[0][1] == ("BGB § 575",)


def test_a_year_or_a_state_after_the_law() -> None:
    assert _more("unter Geltung des § 2 Abs. 1 Satz 1 UmwStG 1995 nichts") == [
        ("§ 2 Abs. 1 Satz 1 UmwStG 1995", ("UmwStG 1995 § 2",), None)]
    assert _more("eine Regelung wie § 10a KAG Rheinland-Pfalz ( KAG RP ) erlassen") == [
        ("§ 10a KAG Rheinland-Pfalz", (), "unknown law")]
    assert _more("Art. 2 Abs. 1 des Bewertungsänderungsgesetzes 1965 bestimmte") == [
        ("Art. 2 Abs. 1 des Bewertungsänderungsgesetzes 1965", (), "unknown law")]


def test_roman_articles_chain_to_the_law_named_at_the_end() -> None:
    assert _more("gegen Art. I und Art. II des Nichtverbreitungsvertrages sowie") == [
        ("Art. I", (), "unknown law"), ("Art. II des Nichtverbreitungsvertrages", (), "unknown law")]


@pytest.mark.parametrize(("text", "surface", "target"), [
    ("( st. Rspr. ; Franke in Löwe / Rosenberg , StPO , 26. Aufl. , § 337 Rn. 117 ff. mwN )", "§ 337", "StPO § 337"),
    ("( KK-StPO / Moldenhauer / Wenske StPO 7. Aufl. , § 257 Rn. 15 )", "§ 257", "StPO § 257"),
    ("( Rudisile in Schoch / Schneider / Bier , VwGO , § 100 Rn. 14 [ Juni 2017 ] )", "§ 100", "VwGO § 100"),
    ("( Eyermann / Geiger , VwGO , 14. Aufl. , § 100 )", "§ 100", "VwGO § 100"),
])
def test_a_commentary_names_the_law_of_a_bare_section(text: str, surface: str, target: str) -> None:
    assert _more(text) == [(surface, (target,), None)]


def test_no_commentary_no_law() -> None:
    # neither an edition between nor a marginal number after: "VwGO , § 100" alone says nothing
    assert _more("( vgl. VwGO , § 100 )") == [("§ 100", (), "no law")]
    assert _more("( vgl. Kimmel , a. a. O. , § 18 Rn. 3 )") == []
    # inside a statute the citing law stays the law of a bare section
    assert _more("nach § 2 VwGO , § 3 ist", context="SG")[1] == ("§ 3", ("SG § 3",), None)


def test_short_titles_are_no_guess_for_amending_acts_or_one_letter() -> None:
    # "Steuer|änderungs|gesetz" is neither the SG (one letter before the head) nor any law it amends
    assert _more("§ 3 Absatz 1 des Steueränderungsgesetzes vom 6. März 1990") == [
        ("§ 3 Absatz 1 des Steueränderungsgesetzes", (), "unknown law")]


def test_act_tails_end_before_what_is_no_name() -> None:
    text = "nach den Artikeln 28 bis 31 der Verordnung (EU) 2016/679 zwischen dem Diensteanbieter und dem Auftragnehmer"
    assert _more(text)[0][0] == "Artikeln 28 bis 31 der Verordnung (EU) 2016/679"
    assert _more("§ 2 Nr. 5 Buchst. a der Verordnung über Zuständigkeiten auf verschiedenen Gebieten der "
                 "Gefahrenabwehr ( ZustVO-SOG )")[0][0] == (
        "§ 2 Nr. 5 Buchst. a der Verordnung über Zuständigkeiten auf verschiedenen Gebieten der Gefahrenabwehr")


def test_the_gesetz_of_an_ordinance_is_the_law_its_title_names() -> None:
    text = "werden die Steuersätze des § 11 Absatz 1 Nummer 1 bis 3 des Gesetzes für das Jahr 2022 abgesenkt"
    assert _more(text, context="LuftVStAbsenkV 2022") == [
        ("§ 11 Absatz 1 Nummer 1 bis 3 des Gesetzes", ("LuftVStG § 11",), None)]
    # a statute's "des Gesetzes" is not the law its title names
    assert _more(text, context="StatG")[0][1:] == ((), "unknown law")


def _stub_directory() -> LawDirectory:
    rows = [("", "EuPatÜbk", "Übereinkommen über die Erteilung europäischer Patente", ""),
            ("", "TVöD", "Tarifvertrag für den öffentlichen Dienst", ""),
            ("", "EUV 1230/2012", "Verordnung (EU) Nr. 1230/2012 der Kommission vom 12. Dezember 2012", "")]
    rows += [(f"FreizügV § {n}", "FreizügV", "Freizügigkeitsverordnung", f"§ {n}") for n in (7,)]
    rows += [(f"EZulV 1976 § {n}", "EZulV 1976", "Erschwerniszulagenverordnung", f"§ {n}") for n in (7, "16a")]
    rows += [(f"BGB § {n}", "BGB", "Bürgerliches Gesetzbuch", f"§ {n}") for n in (573, 574)]
    rows += [(f"EntgFG § {n}", "EntgFG", "Gesetz über die Zahlung des Arbeitsentgelts an Feiertagen und im "
              "Krankheitsfall", f"§ {n}") for n in (3, 12)]
    # short titles the corpus lacks: the fit whose title holds a word of the compound wins
    rows += [("VAG 2016 § 68", "VAG 2016", "Gesetz über die Beaufsichtigung der Versicherungsunternehmen", "§ 68"),
             ("VIG § 1", "VIG", "Gesetz zur Verbesserung der gesundheitsbezogenen Verbraucherinformation", "§ 1"),
             ("VSBG § 36", "VSBG", "Gesetz über die alternative Streitbeilegung in Verbrauchersachen", "§ 36"),
             ("VStRG § 36", "VStRG", "Gesetz zur Reform des Vermögensteuerrechts", "§ 36")]
    rows += [("BtMG 1981 § 29", "BtMG 1981", "Gesetz über den Verkehr mit Betäubungsmitteln", "§ 29"),
             ("BMG § 29", "BMG", "Bundesmeldegesetz", "§ 29")]
    rows += [("FGO § 91", "FGO", "Finanzgerichtsordnung", "§ 91"),
             ("EinigVtr Art 21", "EinigVtr", "Vertrag über die Herstellung der Einheit Deutschlands", "Art 21")]
    directory = LawDirectory.from_sections(rows)
    directory.add_vocabulary(["Versicherung unter Aufsicht", "Verbraucher im Streit", "Beilegung", "Reit",
                              "Betäubung und Mittel"])
    return directory


STUBS = _stub_directory()


def _stubs(text: str, context: str | None = None) -> list[tuple[str, tuple[str, ...], str | None]]:
    return [(c.surface, r.targets, r.reason)
            for c in Extractor(STUBS).extract(text) for r in [resolve(c, STUBS, context, max_range=50)]]


def test_a_law_the_corpus_holds_without_sections_is_a_missing_section() -> None:
    assert _stubs("nach Art. 69 EPÜ und Art. 2 des Übereinkommens über die Erteilung europäischer Patente") == [
        ("Art. 69 EPÜ", (), "missing section"),
        ("Art. 2 des Übereinkommens über die Erteilung europäischer Patente", (), "missing section")]
    # an agreement held as a stub still keeps its branch, and then names no law of the corpus
    assert _stubs("nach §§ 12 und 13 TVöD / Bund") == [("§§ 12 und 13 TVöD / Bund", (), "unknown law")]
    # a title that is only a kind of act ("Verordnung (EU) Nr. …") names no law by that word
    assert _stubs("Artikels 4 Absatz 2 der Verordnung (EG) Nr. 1071/2009")[0][0] == (
        "Artikels 4 Absatz 2 der Verordnung (EG) Nr. 1071/2009")


def test_an_article_of_a_law_of_sections_named_by_title_is_another_act() -> None:
    assert _stubs("Art. 7 Abs. 1 der Freizügigkeitsverordnung") == [
        ("Art. 7 Abs. 1 der Freizügigkeitsverordnung", (), "unknown law")]
    assert _stubs("§ 7 der Freizügigkeitsverordnung") == [("§ 7 der Freizügigkeitsverordnung", ("FreizügV § 7",), None)]


def test_court_abbreviations_of_the_curated_list() -> None:
    assert _stubs("gemäß § 3 Abs. 1 EFZG und § 12 EntgFG") == [
        ("§ 3 Abs. 1 EFZG", ("EntgFG § 3",), None), ("§ 12 EntgFG", ("EntgFG § 12",), None)]
    assert _stubs("zum Stichtag des Art. 21 Abs. 2 EV diente") == [("Art. 21 Abs. 2 EV", ("EinigVtr Art 21",), None)]


def test_a_commentary_named_by_the_laws_title() -> None:
    assert _stubs("( Gräber / Herbert , Finanzgerichtsordnung , 8. Aufl. , § 91 Rz 4 , Stichwort )") == [
        ("§ 91", ("FGO § 91",), None)]


def test_a_chain_runs_over_an_article_before_the_next_group() -> None:
    assert _stubs("die Anforderungen der §§ 573 oder der §§ 574 des Bürgerlichen Gesetzbuchs", context="EntgFG") == [
        ("§§ 573", ("BGB § 573",), None), ("§§ 574 des Bürgerlichen Gesetzbuchs", ("BGB § 574",), None)]


def test_a_state_before_a_short_title_names_a_law_of_that_state() -> None:
    # the short title alone would fit the federal law; "Bayerischen" makes it a state's law the corpus lacks
    assert _stubs("§ 68 des Bayerischen Versicherungsaufsichtsgesetzes") == [
        ("§ 68 des Bayerischen Versicherungsaufsichtsgesetzes", (), "unknown law")]


def test_short_titles_prefer_the_law_whose_title_shares_a_word() -> None:
    assert _stubs("§ 68 Absatz 2 des Versicherungsaufsichtsgesetzes") == [
        ("§ 68 Absatz 2 des Versicherungsaufsichtsgesetzes", ("VAG 2016 § 68",), None)]
    assert _stubs("§ 36 des Verbraucherstreitbeilegungsgesetzes")[0][1] == ("VSBG § 36",)
    # "Bt" takes an inner letter of "Betäubungs": such a fit counts only when the title holds a word of the compound
    assert _stubs("§ 29 des Betäubungsmittelgesetzes")[0][1] == ("BtMG 1981 § 29",)


def test_a_lead_in_names_the_law_of_a_chain_without_one() -> None:
    text = "anderer Bestimmungen der Erschwerniszulagenverordnung - § 7 Abs. 3 , § 16a Abs. 3 - weder in"
    assert _stubs(text) == [("§ 7 Abs. 3", ("EZulV 1976 § 7",), None), ("§ 16a Abs. 3", ("EZulV 1976 § 16a",), None)]
    assert _stubs("die Vorschriften des Bürgerlichen Gesetzbuchs (§§ 573 bis 574) gelten", context="EntgFG") == [
        ("§§ 573 bis 574", ("BGB § 573", "BGB § 574"), None)]
    # a party or a phrase is no lead-in; a statute's bare section stays its own
    assert _stubs("die Klage der Beklagten - § 7 - ist") == [("§ 7", (), "no law")]
    text = "Taten nach den §§ 573 und 574 des Bürgerlichen Gesetzbuchs, die sich beziehen auf Zuschüsse (§ 3) und"
    assert _stubs(text, context="EntgFG")[1] == ("§ 3", ("EntgFG § 3",), None)
    assert _stubs("nach § 3 gilt", context="EntgFG") == [("§ 3", ("EntgFG § 3",), None)]


# rules written after the fourth held-out sample (heldout4.jsonl) was first measured, one test per error class
def test_the_gesetz_of_an_ordinance_whose_title_names_its_law_without_a_section() -> None:
    rows = [("EnergieStG § 25", "EnergieStG", "Energiesteuergesetz", "§ 25"),
            ("EnergieStV § 58", "EnergieStV", "Verordnung zur Durchführung des Energiesteuergesetzes", "§ 58"),
            ("UStG 1980 § 4", "UStG 1980", "Umsatzsteuergesetz", "§ 4"),
            ("UStDV 1980 § 1", "UStDV 1980", "Umsatzsteuer-Durchführungsverordnung", "§ 1"),
            ("BattG § 3", "BattG", "Batteriegesetz", "§ 3"),
            ("ElektroGGebV § 1", "ElektroGGebV", "Gebührenverordnung zum Elektro- und Elektronikgerätegesetz und zum "
             "Batteriegesetz", "§ 1"),
            ("SGBV § 1", "SGBV", "Verordnung zum Sozialgesetzbuch", "§ 1"),
            ("ZPO § 3", "ZPO", "Zivilprozessordnung", "§ 3")]
    directory = LawDirectory.from_sections(rows)
    extractor = Extractor(directory)

    def read(text: str, context: str) -> list[tuple[tuple[str, ...], str | None]]:
        return [(r.targets, r.reason) for c in extractor.extract(text) for r in [resolve(c, directory, context)]]

    assert read("im Sinne des § 25 Abs. 1 des Gesetzes", "EnergieStV") == [(("EnergieStG § 25",), None)]
    assert read("nach § 4 Nr. 8 des Gesetzes", "UStDV 1980") == [(("UStG 1980 § 4",), None)]
    # a title naming two laws (one of them not in the corpus), one that is no law of the corpus, a statute: no law
    assert read("nach § 3 des Gesetzes", "ElektroGGebV") == [((), "unknown law")]
    assert read("nach § 3 des Gesetzes", "SGBV") == [((), "unknown law")]
    assert read("nach § 3 des Gesetzes", "ZPO") == [((), "unknown law")]


@pytest.mark.parametrize(("text", "surface", "target"), [
    ("( Meyer-Goßner , Strafprozeßordnung , 60. Auflage , § 337 Rn. 2 )", "§ 337", "StPO § 337"),
    ("( MüKoStPO / Knauer , 1. Aufl. , § 257 Rn. 3 )", "§ 257", "StPO § 257"),
    ("( MüKoVwGO / Schübel , 45. Aufl. , § 100 Rn. 4 )", "§ 100", "VwGO § 100"),
    ("( Ströbele / Hacker , Markengesetz , 11. Auflage , § 8 , Rdnr. 86 )", "§ 8", "MarkenG § 8"),
])
def test_a_commentary_with_the_edition_written_out_a_short_title_or_the_law_inside_its_name(text: str, surface: str,
                                                                                            target: str) -> None:
    assert _more(text) == [(surface, (target,), None)]


def test_more_parts_of_the_section_after_a_comma_decimal_parts_and_bracketed_parts() -> None:
    assert [s for s, _ in _spans("entgegen § 22c Absatz 1 Satz 3, auch in Verbindung mit Absatz 2 Satz 3, "
                                 "Lagerstättenwasser einbringt", context="BGB")] == [
        "§ 22c Absatz 1 Satz 3, auch in Verbindung mit Absatz 2 Satz 3"]
    # not when something other than a part of the section follows
    assert [s for s, _ in _spans("nach § 5 Absatz 1, auch in Verbindung mit einer Rechtsverordnung nach § 6",
                                 context="BGB")] == ["§ 5 Absatz 1", "§ 6"]
    assert _more("die nach § 15.02 Nummer 1.2 zulässige Fahrzeugbreite", context="BinSchStrO 2012") == [
        ("§ 15.02 Nummer 1.2", (), "missing section")]
    assert _more("nach §§ 65 Abs. 1 , 81 Abs. 1 Satz 1 i. V. m. 24 Abs. 1 und Abs. 6 ( Satz 4 ) PatG")[0][0] == (
        "§§ 65 Abs. 1 , 81 Abs. 1 Satz 1 i. V. m. 24 Abs. 1 und Abs. 6 ( Satz 4 ) PatG")


def test_an_abbreviation_before_gesetz_and_the_year_of_a_treatys_version() -> None:
    rows = [("AZRG § 34", "AZRG", "Gesetz über das Ausländerzentralregister", "§ 34"),
            ("BSIG 2009 § 8", "BSIG 2009", "Gesetz über das Bundesamt für Sicherheit in der Informationstechnik",
             "§ 8")]
    directory = LawDirectory.from_sections(rows)
    extractor = Extractor(directory)
    found = [(c.surface, resolve(c, directory).targets) for c in
             extractor.extract("nach § 34 Abs. 5 des AZR-Gesetzes und § 8 des BSI-Gesetzes sowie § 3 des XY-Gesetzes")]
    assert found == [("§ 34 Abs. 5 des AZR-Gesetzes", ("AZRG § 34",)), ("§ 8 des BSI-Gesetzes", ("BSIG 2009 § 8",)),
                     ("§ 3 des XY-Gesetzes", ())]
    first = extractor.extract("nach Artikel V Absatz 2 des Haftungsübereinkommens von 1992 (§ 611)")[0]
    assert first.surface == "Artikel V Absatz 2 des Haftungsübereinkommens von 1992"
