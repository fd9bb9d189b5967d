"""Citations with their offsets: found in text, resolved to the corpus's sections, kept when they do not resolve.

``extract`` finds reference expressions ("§ 573 Abs. 2 BGB", "§§ 573 bis 575 BGB", "Art. 1 Abs. 1 GG",
"§ 5 des Bürgerlichen Gesetzbuchs", "§ 5 i.V.m. § 6 BGB", "nach § 5") as character spans. ``LawDirectory``
knows every law of the corpus (jurabk, title, sections in the law's order) and ``resolve`` turns a citation into
document ids, or into a reason why it cannot: an unknown law, a missing section, no law at all. Nothing is
guessed: a citation that does not resolve is kept as written with its reason.

The rules follow the project's token parser (``CitationParser`` in ``text/citations.py``: the same markers, list
words and law-abbreviation shape) but keep offsets and the structure of ranges and chains, which tokens drop.
The conventions (what a span covers, how chains and ranges resolve) are written down in ``docs/citations.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Final, Literal

from legalsearch.types import Document

#: why a citation has no target
Reason = Literal["unknown law", "missing section", "no law", "malformed range"]

# the first section number after §, §§, Art., Artikel; "573c" but not the "ff" of "573ff."
_NUM: Final = r"\d+(?:[a-z]{1,2}(?![a-zäöüß]))?"
# a decimal section number of the laws that count sections per chapter ("§ 17.23", "§ 4\.05" with a Markdown escape)
_DECIMAL_NUM: Final = r"\d{1,3}\\?\.\d{2}[a-z]?(?!\d|[.,]\d|[a-zäöüß])"
_ANCHOR: Final = re.compile(
    rf"(?P<a>§\s?§|§|\b(?:Artikeln|Artikels|Artikel|Art\.|Art|Artt\.))\s*"
    # articles of treaties and amending acts are also numbered in Roman ("Artikel XI des NATO-Truppenstatuts")
    rf"(?P<n>{_DECIMAL_NUM}|{_NUM}|(?<=[lnst.]\s)[IVXL]{{1,6}}(?=[\s,;)]|$))(?![\d,.]\d)"
    # a section letter set apart by a tokenizer ("§ 7 g EStG") belongs to the number
    r"(?:\s(?P<letter>[a-z])(?=\s+(?:[A-ZÄÖÜ]|Abs|Satz|S\b|Nr|,|\.|;|\)|$)))?"
)
# a court's reporter reference holds "§" without citing: "SozR 4 - 1500 § 160 Nr 21", "Buchholz 449.2 § 6 SLV"
_REPORTER: Final = re.compile(
    r"(?:SozR(?:\s*\d+)?(?:\s*-\s*)?\s*\d+|Buchholz\s+\d+(?:\.\d+)*"
    # a reporter's entry "to" a section files a decision under it: "SozR Nr 9 zu § 136 SGG", "AP Nr. 5 zu § 1 KSchG"
    r"|\b(?:SozR|AP|EzA|EzBAT|EzAÜG)(?:\s+\d+(?:\s*-\s*\d+)?)?\s+Nr\.?\s*\d+[a-z]?\s+zu)\s*$"
)
# "a. a. O., § 18 Rn. 3": a position in a work cited before, when no law follows the section
_CITED_BEFORE: Final = re.compile(r"(?:\ba\.\s?a\.\s?O\.|\baaO)\s*,?\s*$")
_SPACE: Final = re.compile(r"\s*")
_MARKER: Final = re.compile(
    r"\s*(?:Abs\.|Absatz|Absatzes|Absätze|Absätzen|Abs|Satz|Satzes|Sätze|Sätzen|S\.|Nr\.|Nrn\.|Nr|Nummer|Nummern|"
    r"Halbsatz|Halbs\.|Hs\.|HS\.?|Buchst\.|Buchstabe|Buchstaben|lit\.|Alt\.|Alternative|Var\.|Variante|UAbs\.|"
    r"Unterabs\.|Unterabsatz|Spiegelstrich|Doppelbuchst\.|Doppelbuchstabe|Buchst|Halbs|Alt|Var|UAbs|S(?=\s+\d)|"
    r"Ziff\.|Ziffer|Ziffern|Ziff|Teilsatz|Teils(?=\s+\d)|Teil(?=\s+[A-Z]\b))\s*"
)
# "erster Halbsatz", "2. Halbsatz", "zweite Alternative", "( c )" after a number
_ORDINAL_PART: Final = re.compile(
    r"\s*(?:(?:erst|zweit|dritt|viert|letzt)e[rns]?|\d+\.)\s+(?:Halbsatz|Halbs\.|Alternative|Alt\.|Variante|Var\.)"
    r"|\s*\(\s*[a-z0-9]{1,2}\s*\)"
    # a bracketed part: "Abs. 6 ( Satz 4 ) PatG"
    r"|\s*\(\s*(?:Satz|S\.|Abs\.|Absatz|Nr\.|Nummer)\s*\d{1,3}[a-z]?\s*\)"
)
_PART_VALUE: Final = re.compile(r"(?:\d+[a-z]?|[a-z]{1,2}(?![a-zäöüß])\)?|[IVX]+\b|[A-Z]\b)(?!\.\d)")
_LIST_SEP: Final = re.compile(
    r"\s*(?P<s>,|und\b|oder\b|sowie\b|bzw\.|bis\b|u\.(?=\s)|-|–|i\.\s?V\.\s?m\.?|iVm\.?|in\s+Verbindung\s+mit)\s*"
)
_DECIMAL_PART: Final = re.compile(r"\d{1,2}\.\d{1,2}(?![\d.])")
# "§ 98 Satz 1 Nummer 4, auch in Verbindung mit Satz 2": an insertion naming more parts of the section
_ALSO_WITH: Final = re.compile(r"\s*,\s*(?:jeweils\s+)?auch\s+in\s+Verbindung\s+mit(?=\s)")
_FOLLOWING: Final = re.compile(r"\s*(?:ff\.|f\.|ff\b|f\b)")
# an Absatz after a number: only a section has one ("§§ 37 Abs. 1, 8 Abs. 2 MarkenG": 8 is a section, not an Absatz)
_OWN_ABSATZ: Final = re.compile(r"\s*(?:Abs\.|Absatz|Abs)\s*\d")
_CHAIN: Final = re.compile(
    r"\s*(?:,\s*)?(?:i\.\s?V\.\s?m\.?|iVm\.?|i\.\s?V\.\s?mit|in\s+Verbindung\s+mit|in\s+Verb\.\s+mit|und|oder|sowie|"
    r"bzw\.|noch(?:\s+in)?|,)(?:\s+(?:der|des|den|dem)(?=\s))?\s*(?=§|Art\.?\s*(?:\d|[IVXL]{1,6}\b)|Artikel\w*\s*(?:\d|[IVXL]{1,6}\b))"
)
# a law abbreviation: letters (and inner digits/hyphens), at least two capitals ("BGB", "DMietG", "AO")
_ABBREVIATION: Final = re.compile(r"\s+(?P<w>[A-ZÄÖÜ][A-Za-zÄÖÜäöüß0-9]*(?:-[A-Za-zÄÖÜäöüß]+)?)(?![\wÄÖÜäöüß-])")
_ROMAN_OR_DIGIT: Final = re.compile(r"\s+(?P<w>[IVX]{1,5}|\d{1,2}|(?:19|20)\d{2})(?![\w.])")
_YEAR: Final = re.compile(r"\s+(?:19|20)\d{2}(?![\w.]|\s*[/-]\s*\d)")
_GENITIVE: Final = re.compile(r"\s+(?P<art>des|der|dem|den)\s+(?P<rest>)")
# a law named in genitive just before a chain, set off by a dash, colon or bracket: "der Erschwerniszulagenverordnung -"
_LEAD_IN: Final = re.compile(r"\b(?:des|der)\s+(?P<rest>[A-ZÄÖÜ][^()\[\]\-–:;§]{0,150}?)\s*(?:[-–:]|\()\s*$")
# an act named by its date before its subject: "des Gesetzes vom 30. Juli 1974 zu dem Vertrag vom 7. Juni 1969 ...",
# whose title in the corpus is "Gesetz zu dem Vertrag vom 7. Juni 1969 ..."
_DATED_ACT: Final = re.compile(
    r"(?P<kind>Gesetz|Verordnung)(?:es|s)?\s+vom\s+\d{1,2}\.\s*(?:[A-ZÄÖÜ][a-zä]+|\d{1,2}\.)\s*\d{4}\s+"
    r"(?=(?:zu|zur|zum|über)\s)"
)
_SELF: Final = re.compile(r"\s+(?:dieses\s+(?:Gesetzes|Gesetzbuchs|Gesetzbuches|Buches|Abkommens|Vertrags|Vertrages)|"
                          r"dieser\s+(?:Verordnung|Ordnung|Satzung|Anordnung|Richtlinie|Bekanntmachung))\b")
_BOOK: Final = re.compile(
    r"\s+(?:des\s+|dem\s+|das\s+)?(?P<o>Erst|Zweit|Dritt|Viert|Fünft|Sechst|Siebt|Siebent|Acht|Neunt|Zehnt|Elft|"
    r"Zwölft|Vierzehnt)(?:e[ns]?|es)?\s+Buch(?:es|s)?(?:\s+(?:des\s+)?Sozialgesetzbuch(?:es|s)?)?\b"
)
# a noun that names a law, for laws the corpus lacks or names otherwise ("des Atomgesetzes", "der Verordnung (EU)
# 2016/796"): the citation then names an unknown law instead of falling back to the citing law
_LAW_NOUN: Final = re.compile(
    r"(?:[A-ZÄÖÜ][\wäöüß-]*)?(?:[Gg]esetz(?:es|e|s)?|[Gg]esetzbuch(?:es|s|e)?|[Oo]rdnung|[Vv]erordnung|[Vv]ertrag(?:es|s)?|"
    r"[Aa]bkommen(?:s)?|[Üü]bereinkommen(?:s)?|[Ss]tatut(?:s|es)?|[Kk]onvention|[Rr]ichtlinie|[Ss]atzung|Charta|"
    r"[Pp]rotokoll(?:s)?|[Vv]erfassung|[Bb]eschluss(?:es)?)"
)
# the head noun of a law name and what stands before it: "Emissionshandels|gesetzes" names one law (a date after it
# is no part of the name), "Zusatz|abkommens", "Internationalen |Übereinkommens" need their tail ("vom 3. August 1959
# zu dem Abkommen ...", "über die Beseitigung von Wracks") to name one
_HEAD_NOUN: Final = re.compile(
    r"(?P<p>.*?)(?:gesetzbuch|gesetz|verordnung|ordnung|vertrag|übereinkommen|abkommen|statut|konvention|richtlinie|"
    r"satzung|charta|protokoll|verfassung|beschluss)(?:es|en|e|s)?"
)
_GENERIC_PREFIXES: Final = frozenset({
    "", "zusatz", "änderungs", "ergänzungs", "durchführungs", "ausführungs", "einführungs", "rahmen", "bundes",
    "landes", "mantel", "zustimmungs", "vertrags",
})
# documents of the parties, not laws: "§ 19 Nr. 3 der Satzung", "§ 16 des Mietvertrags", "in ihrem § 17 der
# Betriebsvereinbarung"; the citation ends before the noun and names no law
_PRIVATE: Final = re.compile(
    r"(?:Satzung|(?:Miet|Pacht|Arbeits|Kauf|Gesellschafts|Dienst|Werk|Darlehens|Anstellungs|Leasing|Lizenz|"
    r"Kooperations|Versicherungs|Tarif|Kredit|Sozialplan|Ehe)?[Vv]ertrag(?:es|s)?|(?:Betriebs|Dienst|Gesamtbetriebs|"
    r"Konzernbetriebs)?[Vv]ereinbarung|Sozialplan(?:s|es)?)"
)
# collective agreements: Tarifvertrag abbreviations ("TVöD", "MTV", "TV-L", "TVÜ-Bund"), "NV" (Normalvertrag),
# "BAT", "AVR"; their branch, region or year follows ("MTV Systemgastronomie 2014", "TVöD / Bund", "NV Bühne")
_AGREEMENT: Final = re.compile(r"(?:[A-Z]{0,4}TV[A-Za-zÄÖÜäöü]*(?:-[A-Za-zÄÖÜäöü]+)?|NV|BAT|AVR)")
_AGREEMENT_TAIL: Final = re.compile(
    r"(?:\s*/\s*|\s+)(?P<w>[A-ZÄÖÜ][\wäöüß]*(?:-[A-ZÄÖÜ][\wäöüß]*)?)(?:\s+(?:19|20)\d{2})?(?![\w-])"
)
_LAW_NUMBER: Final = re.compile(
    r"\s*(?:\(\s*(?:EU|EG|EWG|Euratom)\s*\)\s*)?(?:Nr\.\s*)?\d+\s*/\s*\d+(?:\s*/\s*(?:EU|EG|EWG))?"
)
# the rest of a name the corpus lacks: "des Vertrages zur Gründung der Europäischen Gemeinschaft", "der deutschen
# Verfassung vom 11. August 1919"
_DATE: Final = r"\s+vom\s+\d{1,2}\.\s*(?:[A-ZÄÖÜ][a-zä]+|\d{1,2}\.)\s*\d{4}"
_NAME_TAIL: Final = re.compile(
    r"(?:" + _DATE +
    # an EU act's author, when its date follows (the full title: "des Rates vom 28. November 2006 über ...")
    r"|\s+(?:des\s+Rates|der\s+Kommission|des\s+Europäischen\s+Parlaments\s+und\s+des\s+Rates)(?=" + _DATE + ")"
    r"|\s+von\s+(?:\d{4}|[A-ZÄÖÜ][\wäöüß-]*)(?=[\s,.;)]|$)"
    # the subject: "über die Beseitigung von Wracks", "zu dem Abkommen", "zur Gründung der Europäischen Gemeinschaft"
    r"|\s+(?!für\s+(?:das|die|den)\s+(?:Jahr|Kalenderjahr|Wirtschaftsjahr|Zeitraum))"
    r"(?:zur|zum|über|für|zwischen|zu\s+dem|zu\s+der|betreffend)(?:\s+(?:der|die|das|den|dem|des|einer|eines))?"
    r"(?:\s+(?:[A-ZÄÖÜ][\wäöüß-]*|und|der|des|die|den|dem|von|auf(?!\s+Grund)|[a-zäöüß]+(?:e|en|er|es|em)(?=\s+[A-ZÄÖÜ])))*"
    r"\s+[A-ZÄÖÜ][\wäöüß-]*(?=[\s,.;)]|$))*"
)
#: state codes after a state law's abbreviation ("PersVG BB")
_STATES: Final = frozenset({"BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL", "SN", "ST", "SH",
                            "TH", "NRW"})
#: a state's name after the abbreviation of a law the corpus lacks ("KAG Rheinland-Pfalz")
_STATE_NAME: Final = re.compile(
    r"\s+(?:Baden-Württemberg|Bayern|Berlin|Brandenburg|Bremen|Hamburg|Hessen|Mecklenburg-Vorpommern|Niedersachsen|"
    r"Nordrhein-Westfalen|Rheinland-Pfalz|Saarland|Sachsen-Anhalt|Sachsen|Schleswig-Holstein|Thüringen)(?![\w-])"
)
_EMPTY: Final = re.compile("")
# the year of a treaty's or act's version after its own name: "des Haftungsübereinkommens von 1992"
_VERSION_YEAR: Final = re.compile(r"\s+von\s+(?:19|20)\d{2}(?=[\s,.;)]|$)")
_ABBREVIATION_GESETZ: Final = re.compile(r"([A-ZÄÖÜ][A-Za-zÄÖÜ]*[A-ZÄÖÜ])-Gesetz(?:es|s|e)?")
# "zwischen" continues only a treaty's name ("zu dem Vertrag vom 7. Juni 1969 zwischen der Bundesrepublik ..."), not
# an act's ("der Verordnung (EU) 2016/679 zwischen dem Diensteanbieter und dem Auftragnehmer besteht")
_BETWEEN: Final = re.compile(r"\s+zwischen\s")
_TREATY: Final = re.compile(r"(?i)vertrag|abkommen|übereinkommen|protokoll|konvention")
# a commentary named before a bare section: "Franke in Löwe / Rosenberg , StPO , 26. Aufl. , § 337 Rn. 117",
# "Schulte / Moufang PatG , 10. Aufl. , § 4 Rn. 157", "Bott in Ernst & Young , KStG , § 4 Rz 19"; the law is the
# abbreviation just before the edition (or before the section when a marginal number follows it)
_COMMENTARY: Final = re.compile(
    r"(?P<w>[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]*[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]*|\b[A-ZÄÖÜ][a-zäöüß]+(?:gesetz|gesetzbuch|ordnung))"
    r"(?:\s*/\s*[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]*)?\s*,?\s*"
    r"(?P<ed>\d{1,2}\.\s*Aufl(?:\.|age)?(?:\s+(?:19|20)\d{2})?\s*,?\s*)?(?:\[[^\]]{0,30}\]\s*,?\s*)?$"
)
#: where a law's jurabk may start inside a commentary's name: after a small letter or a hyphen ("MüKo|StPO")
_INNER_LAW: Final = re.compile(r"(?<=[a-zäöüß-])(?=[A-ZÄÖÜ])")
_MARGINAL: Final = re.compile(r"\s*(?:Rn\.?|Rz\.?|RdNr\.?|Rdnr\.?|Randnr\.?|Randnummer|Anm\.)\s*\d")
# a definition of a law's abbreviation: "Kreditwesengesetzes (KWG)", "( LFGB )", "des Baugesetzbuchs - BauGB -"
# (two patterns that start with their bracket or dash: one starting with a space would try every word)
_ABBREVIATION_SHAPE: Final = r"(?P<a>[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]*[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]*)"
_DEFINED: Final = (re.compile(rf"\(\s?{_ABBREVIATION_SHAPE}\s?\)"),
                   re.compile(rf" - {_ABBREVIATION_SHAPE} -(?=[\s,.;)])"),
                   re.compile(rf" – {_ABBREVIATION_SHAPE} –(?=[\s,.;)])"))
_FUNCTION_WORDS: Final = frozenset({"der", "die", "das", "des", "dem", "den", "ein", "eine", "eines", "einer", "im",
                                    "nach", "gemäß", "laut", "vgl", "siehe", "und", "oder", "mit", "zum", "zur"})
# a title word; a day's number keeps its dot ("zu dem Vertrag vom 7. Juni 1969 zwischen ...")
_TITLE_WORD: Final = re.compile(r"(?P<w>[\wÄÖÜäöüß][\wÄÖÜäöüß\-]*)(?P<sp>(?<=\d)\.\s+|\s+|$)?")
# "des Gesetzes" / "der Verordnung" alone: in an ordinance, the law its title names ("Verordnung zur Absenkung der
# Steuersätze ... nach § 11 Absatz 2 des Luftverkehrsteuergesetzes")
_BARE_KIND: Final = frozenset({"Gesetzes", "Gesetz"})
_ORDINANCE: Final = re.compile(r"(?:[A-ZÄÖÜ][a-zäöü]+e\s+)?(?:Verordnung|Anordnung)\b")
# an ordinance whose title names its law without a section: "Verordnung zur Durchführung des Energiesteuergesetzes",
# "Wahlordnung zum Bundespersonalvertretungsgesetz", "Umsatzsteuer-Durchführungsverordnung" (the law: "Umsatzsteuer"
# + "gesetz"); not a statute named "…ordnung" (Zivilprozessordnung)
_NAMED_ORDINANCE: Final = re.compile(r"(?:[A-ZÄÖÜ][a-zäöü]+e\s+)?[\wÄÖÜäöüß-]*"
                                     r"(?:[Vv]erordnung|[Ww]ahlordnung|Anordnung)\b")
_TITLE_LAW_WORD: Final = re.compile(r"[\wÄÖÜäöüß-]+?(?:gesetz(?:es|s|e)?|gesetzbuch(?:es|s)?)(?![\wäöüß])")
_STEM_ORDINANCE: Final = re.compile(r"([A-ZÄÖÜ][a-zäöüß]{3,})-[\wÄÖÜäöüß]*verordnung\b")
_ORDINALS: Final = {
    "Erst": 1, "Zweit": 2, "Dritt": 3, "Viert": 4, "Fünft": 5, "Sechst": 6, "Siebt": 7, "Siebent": 7, "Acht": 8,
    "Neunt": 9, "Zehnt": 10, "Elft": 11, "Zwölft": 12, "Vierzehnt": 14,
}
_ROMAN_VALUES: Final = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
#: capitalised words of the shape of a law abbreviation that name no law (currencies, gazettes, courts, forms)
_NOT_LAWS: Final = frozenset({
    "EUR", "DM", "BGBl", "RGBl", "ABl", "BAnz", "GmbH", "AG", "KG", "OHG", "BGH", "BAG", "BFH", "BSG", "BVerwG",
    "BVerfG", "OLG", "LG", "VG", "OVG", "VGH", "LSG", "LAG", "FG", "BPatG", "EuGH", "EGMR", "Rn", "NJW",
    "BT", "BR", "Drs", "BVerfGE", "BGHZ", "BGHSt", "BAGE", "BSGE", "BFHE", "BVerwGE", "II", "III", "IV", "VI",
    "VII", "VIII", "IX", "XI", "XII", "ZR", "AZR", "StR", "RdNr", "RdNrn", "Rdnr", "Randnr", "RNr",
})
#: words a title match may not end on: "des Gesetzes über die" is no title
_TITLE_MAX_WORDS: Final = 32
_SECTION_LABEL: Final = re.compile(r"^(?P<u>§§?|Art\.?|Artikel)\s*(?P<n>\d+(?:\.\d+)?[a-z]*|[IVXLC]+)$")
_KEY: Final = re.compile(r"(\d+)((?:\.\d+)?[a-z]*)")
_NUM_RE: Final = re.compile(_NUM)
_DECIMAL_RE: Final = re.compile(_DECIMAL_NUM)
_ART_SECTION: Final = re.compile(rf"\s+§\s?(?P<n>{_NUM})(?![\d,.]\d)")
_LETTER: Final = re.compile(r"[a-z]{1,2}\)?(?![\wäöüß])")
_DECIMAL: Final = re.compile(r"[.,]\d")


@dataclass(frozen=True, slots=True)
class SectionRef:
    """One section a citation names: a number, a range up to ``until``, or one with "ff."/"f." after it."""

    number: str
    until: str | None = None
    following: bool = False


@dataclass(frozen=True, slots=True)
class Citation:
    """One reference expression as found: its span, the sections it names and the law as written (or None)."""

    start: int
    end: int
    surface: str
    #: "§" or "Art"
    unit: str
    refs: tuple[SectionRef, ...]
    #: the law as written ("BGB", "SGB 5", a title's jurabk), None when the citation names none
    law: str | None = None
    #: how the law was named: "abbreviation", "title", "self" ("dieses Gesetzes"), "chain" (from a later group),
    #: "lead-in" ("der Erschwerniszulagenverordnung - § 7"), "commentary", "private" ("§ 19 der Satzung")
    law_source: str | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """The targets of one citation (document ids in the law's order) or the reason it has none."""

    citation: Citation
    targets: tuple[str, ...]
    reason: Reason | None = None
    #: sections it names that the law lacks (as "BGB § 999"), kept beside the found ones
    missing: tuple[str, ...] = ()
    #: a range cut at the cap: how many of its sections were dropped
    capped: int = 0


def section_key(number: str) -> tuple[int, str]:
    """Order of section numbers within a law: 573 < 573a < 573b < 574."""
    match = _KEY.fullmatch(number)
    if match:
        return int(match.group(1)), match.group(2)
    roman = _roman(number)  # "Art IX" of an Artikelgesetz
    return (roman, "") if roman is not None else (-1, number)


def _stem(word: str) -> str:
    w = word.lower().replace("ß", "ss")
    # "ens" first: "des Übereinkommens" ~ "Übereinkommen", "des Verfahrens" ~ "Verfahren"
    for suffix in ("ens", "es", "en", "em", "er", "s", "n", "e"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            return w[: -len(suffix)]
    return w


def title_key(words: Iterable[str]) -> str:
    """A law title's words without case and inflection ("des Bürgerlichen Gesetzbuchs" ~ "Bürgerliches Gesetzbuch")."""
    return " ".join(_stem(w) for w in words)


def _title_words(title: str) -> list[str]:
    return re.findall(r"[\wÄÖÜäöüß][\wÄÖÜäöüß\-]*", title)


def _title_keys(title: str) -> set[str]:
    """The full title, its part before a first lower-case word after the first ("Grundgesetz für die ..."), and a
    parenthesised name ("... (Aerosolpackungsverordnung)")."""
    keys: set[str] = set()
    main = re.sub(r"\s*\(.*$", "", title).strip(" -–")
    words = _title_words(main)
    if words and not (len(words) == 1 and words[0] in _KIND_WORDS):  # "Verordnung (EU) Nr. 1230/2012": no name
        keys.add(title_key(words))
        for i in range(1, len(words)):
            if words[i][:1].islower():
                if i >= 1 and not (i == 1 and words[0] in _KIND_WORDS):
                    keys.add(title_key(words[:i]))
                break
    for inner in _top_level_parentheses(title):
        inner_words = _title_words(inner)
        if inner_words and len(inner_words) <= 4 and inner_words[0][:1].isupper() and not inner.isupper():
            keys.add(title_key(inner_words))
    return keys


#: words that name a kind of act, never one act: a title's first word alone is no key ("Richtlinie zur Förderung …")
_KIND_WORDS: Final = frozenset({"Gesetz", "Verordnung", "Anordnung", "Bekanntmachung", "Richtlinie", "Beschluss",
                                "Entscheidung", "Abkommen", "Übereinkommen", "Vertrag", "Protokoll", "Satzung",
                                "Erlass", "Regelung", "Durchführungsverordnung", "Verwaltungsvorschrift"})


def _top_level_parentheses(title: str) -> list[str]:
    """The contents of the title's outermost brackets that hold no brackets themselves: "(Aerosolpackungsverordnung)",
    not the "(Handwerksordnung)" inside "(Anlage C zu dem Gesetz zur Ordnung des Handwerks (Handwerksordnung))",
    which names another law."""
    out, depth, start, nested = [], 0, 0, False
    for i, ch in enumerate(title):
        if ch == "(":
            depth += 1
            if depth == 1:
                start, nested = i + 1, False
            else:
                nested = True
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0 and not nested:
                out.append(title[start:i])
    return out


#: the head nouns of law names and the capitals a jurabk ends with for them ("Geldwäschegesetz" ~ "GwG",
#: "Einigungsvertrag" ~ "EinigVtr")
_HEADS: Final = (("gesetzbuch", ("G", "B")), ("verordnung", ("V",)), ("ordnung", ("O",)), ("gesetz", ("G",)),
                 ("übereinkommen", ("Übk",)), ("abkommen", ("Abk",)), ("vertrag", ("Vtr",)))
# suffixes that end a word's part, never start one ("Steuer|änderungs", not "Steueränder|ungs")
_SUFFIXES: Final = ("ung", "heit", "keit", "schaft")
# what may join two words of a compound ("Versicherung|s|aufsicht", "Arbeit|s|…", "Bund|es|…", "Sorge|n|…")
_LINKS: Final = frozenset({"", "s", "es", "n", "en", "e"})
# words of a compound that say nothing about which law it names
_GENERIC_WORDS: Final = frozenset({"bundes", "gesetz", "gesetze", "ordnung", "verordnung", "reichs", "landes",
                                   "deutsch", "deutsche", "allgemein", "allgemeine", "gesetzes", "recht", "rechts"})
# word endings after which a compound's next part starts ("Versicherungs|aufsicht", "Mutter|schutz")
_JOINT: Final = re.compile(r"(?:s|er|en|ung|heit|keit|schaft)$")


class ShortTitles:
    """Laws named by a short title the corpus does not hold ("des Geldwäschegesetzes"), found from the shape of
    their jurabk ("GwG 2017"): each capital of the jurabk must start a part of the compound, in order, and the
    last must stand for its head noun. Only a single best fit counts; a tie resolves to nothing."""

    def __init__(self, laws: Iterable[str], vocabulary: Iterable[str] = (), known: Mapping[str, str] | None = None,
                 titles: Mapping[str, str] | None = None):
        self.vocabulary = {w for w in vocabulary if len(w) >= 3}
        self.titles = dict(titles or {})
        self.found: dict[str, str | None] = dict(known or {})
        bases: dict[str, set[str]] = {}
        for law in laws:
            base = re.sub(r" \d{4}$", "", law)
            if re.fullmatch(r"[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]+", base):
                bases.setdefault(base, set()).add(law)
        self.candidates: dict[str, list[tuple[str, list[str]]]] = {}
        for base, named in bases.items():
            chunks = re.findall(r"[A-ZÄÖÜ][a-zäöüß]*", base)
            for head, capitals in _HEADS:
                n = len(capitals)
                # one letter before the head ("SG") is too weak a shape to guess a title from
                if len(named) == 1 and len(chunks) > n and tuple(chunks[-n:]) == capitals \
                        and sum(map(len, chunks[:-n])) >= 2:
                    self.candidates.setdefault(head, []).append((next(iter(named)), [c.lower() for c in chunks[:-n]]))
                    break

    def law(self, word: str) -> str | None:
        """The jurabk a short title names, or None."""
        key = word.lower()
        if key not in self.found:
            self.found[key] = self._match(key)
        return self.found[key]

    def _match(self, word: str) -> str | None:
        for head, _ in _HEADS:
            for suffix in ("es", "s", "e", ""):
                if word.endswith(head + suffix):
                    prefix = word[: len(word) - len(head) - len(suffix)].rstrip("-")
                    return self._best(prefix, head) if len(prefix) >= 2 else None
        return None

    def _best(self, prefix: str, head: str) -> str | None:
        # the fit with most parts, then most letters, is the most specific; a tie names nothing. An amending act
        # ("Bewertungs|änderungs|gesetz") is not the law it amends: its jurabk must abbreviate the "Änderung" too
        amending = "änderung" in prefix
        words = self._word_starts(prefix)
        fits: list[tuple[tuple[int, ...], str]] = [
            ((score, len(chunks), sum(map(len, chunks))), law) for law, chunks in self.candidates.get(head, ())
            if chunks[0][0] == prefix[0] and (not amending or any(c.startswith("ä") for c in chunks))
            and (score := self._fits(prefix, chunks, 0, words)) >= 0]
        # a fit whose title holds a word of the compound ("Versicherungs|aufsichts" ~ "… der Versicherungsunternehmen":
        # VAG, not VIG) beats one whose title does not; among those, the fit whose capitals start more of the
        # compound's words. Without such a title, only the shape counts: the most parts, then letters
        parts = self._compound_words(prefix, words)
        confirmed = [((shared, *key), law) for key, law in fits if (shared := self._in_title(parts, law))]
        if not confirmed:
            # a jurabk may take inner letters of a part ("BtMG": "Be|t|äubungs|mittel"): such a looser fit counts only
            # when the law's title holds a word of the compound (BtMG 1981, "… Verkehr mit Betäubungsmitteln")
            confirmed = [((shared, 0, len(chunks), sum(map(len, chunks))), law)
                         for law, chunks in self.candidates.get(head, ())
                         if chunks[0][0] == prefix[0] and _in_order("".join(chunks), prefix)
                         and (not amending or any(c.startswith("ä") for c in chunks))
                         and (shared := self._in_title(parts, law))
                         and self._fits(prefix, chunks, 0, frozenset(), loose=True) >= 0]
        fits = confirmed or [(key[1:], law) for key, law in fits]
        if not fits:
            return None
        fits.sort(reverse=True)
        return fits[0][1] if len(fits) == 1 or fits[1][0] < fits[0][0] else None

    def _compound_words(self, prefix: str, words: frozenset[int]) -> list[list[str]]:
        """Per word start of the compound, the vocabulary words of 5 letters or more that begin there (not "bundes")."""
        found = [[prefix[p:j] for j in range(p + 5, len(prefix) + 1)
                  if prefix[p:j] in self.vocabulary and prefix[p:j] not in _GENERIC_WORDS] for p in (words or {0})]
        return [ws for ws in found if ws]

    def _in_title(self, parts: list[list[str]], law: str) -> int:
        """How many word starts of the compound (``_compound_words``) have a word the law's title holds."""
        title = self.titles.get(law, "").lower()
        return sum(any(w in title for w in ws) for ws in parts) if title else 0

    def _word_starts(self, prefix: str) -> frozenset[int]:
        """Where a word starts in some reading of the whole compound as vocabulary words (of 3 letters or more,
        joined by a linking "s", "es", "n", "en" or "e"): "verbraucher|streit|beilegung|s" -> {0, 11, 17}. Empty
        when the compound does not split into known words."""
        n = len(prefix)
        ends = {i: [j for j in range(i + 3, n + 1) if prefix[i:j] in self.vocabulary] for i in range(n)}
        forward: set[int] = {0}
        for i in range(n):
            if i in forward:
                for j in ends[i]:
                    forward.update(j + k for k in (0, 1, 2) if j + k <= n and prefix[j:j + k] in _LINKS)
        if n not in forward:
            return frozenset()
        backward: set[int] = {n}
        for i in range(n - 1, -1, -1):
            if any(j + k in backward for j in ends[i] for k in (0, 1, 2) if prefix[j:j + k] in _LINKS):
                backward.add(i)
        return frozenset(p for p in forward & backward if p < n)

    def _joint(self, prefix: str, p: int) -> bool:
        if p == 0:
            return True
        if p == len(prefix) - 1:
            return False  # a linking "s" before the head noun ("Aufenthalt|s|gesetz")
        if prefix[p:p + 2] in ("es", "en", "er") and self._joint(prefix, p + 2):
            return False  # a linking "es" ("Bundes|sozial"), not a part of its own
        if prefix.startswith(_SUFFIXES, p):
            return False
        if _JOINT.search(prefix[:p]) or prefix[:p] in self.vocabulary:
            return True
        return any(prefix[p:p + k] in self.vocabulary for k in range(4, min(14, len(prefix) - p) + 1))

    def _fits(self, prefix: str, chunks: list[str], start: int, words: frozenset[int] = frozenset(),
              loose: bool = False) -> int:
        """How many of the chunks start a word (``_word_starts``) in the best way the chunks fit; -1: no fit.
        ``loose``: a chunk's small letters may also come from further inside its part."""
        if not chunks:
            return 0
        chunk, rest = chunks[0], chunks[1:]
        best = -1
        for p in range(start, len(prefix)) if start else (0,):
            if prefix[p] != chunk[0] or not self._joint(prefix, p):
                continue
            at = p + 1
            for letter in chunk[1:]:  # small letters follow in the part, or start the next ("Gw": geld|wäsche)
                if at < len(prefix) and prefix[at] == letter:
                    at += 1
                    continue
                at = next((q + 1 for q in range(at, len(prefix))
                           if prefix[q] == letter and (loose or self._joint(prefix, q))), 0)
                if at == 0:
                    break
            else:
                if (score := self._fits(prefix, rest, at, words, loose)) >= 0:
                    best = max(best, score + (p in words))
                    if not words or best == len(chunks):
                        return best  # no better fit is possible
        return best


@dataclass
class LawDirectory:
    """Every law of a corpus: section ids in the law's order, jurabk spellings, title forms."""

    #: jurabk -> [(unit, number, document id)] in corpus order
    sections: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    _by_number: dict[tuple[str, str, str], str] = field(default_factory=dict, repr=False)
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)
    _title_index: dict[str, str] = field(default_factory=dict, repr=False)
    #: how many words the keys of ``_title_index`` have
    _title_lengths: set[int] = field(default_factory=set, repr=False)
    _enabling: dict[str, str | None] = field(default_factory=dict, repr=False)
    _units: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    short_titles: ShortTitles | None = field(default=None, repr=False)
    #: abbreviations and names read from the corpus's definitions ("Kreditwesengesetzes (KWG)"), kept with the graph
    learned: dict[str, dict[str, str]] = field(default_factory=lambda: {"aliases": {}, "names": {}}, repr=False)

    @classmethod
    def from_sections(cls, rows: Iterable[tuple[str, str, str, str]]) -> LawDirectory:
        """Build from (document id, jurabk, law title, section label) of every statute section, in corpus order."""
        directory = cls()
        for doc_id, law, title, label in rows:
            match = _SECTION_LABEL.match(label)
            directory.titles.setdefault(law, title)
            entries = directory.sections.setdefault(law, [])
            if match is None:
                continue
            unit = "§" if match.group("u").startswith("§") else "Art"
            number = match.group("n")
            entries.append((unit, number, doc_id))
            directory._by_number.setdefault((law, unit, number), doc_id)
        directory._index()
        return directory

    def _index(self) -> None:
        aliases: dict[str, set[str]] = {}
        for law in self.sections:
            for alias in self._spellings(law):
                aliases.setdefault(alias, set()).add(law)
        # an exact jurabk always wins; an alias only when it names a single law
        self._aliases = {a: next(iter(laws)) for a, laws in aliases.items() if len(laws) == 1}
        self._aliases.update({law.casefold(): law for law in self.sections})
        keys: dict[str, set[str]] = {}
        for law, title in self.titles.items():
            for key in _title_keys(title) if title else ():
                keys.setdefault(key, set()).add(law)
        self._title_index = {k: next(iter(laws)) for k, laws in keys.items() if len(laws) == 1}
        self._title_lengths = {k.count(" ") + 1 for k in self._title_index}
        words = {w.lower() for title in self.titles.values() for w in re.findall(r"[A-Za-zÄÖÜäöüß]+", title)}
        self.short_titles = ShortTitles(self.sections, words, titles=self.titles)
        self.add_aliases(_curated_aliases())

    def add_aliases(self, aliases: Mapping[str, str], names: Mapping[str, str] | None = None) -> None:
        """More spellings of the corpus's laws: abbreviation -> jurabk, title key -> jurabk; one the directory
        already reads as a law (or one naming a law the corpus lacks) is left alone."""
        for alias, law in aliases.items():
            if law in self.sections and self.canonical(alias) is None:
                self._aliases[alias.casefold()] = law
        for key, law in (names or {}).items():
            if law in self.sections:
                self._title_index.setdefault(key, law)
                self._title_lengths.add(key.count(" ") + 1)

    def learn_definitions(self, texts: Iterable[str]) -> None:
        """Read the corpus's own definitions of law names: "des Baugesetzbuchs - BauGB -" makes BauGB a spelling of
        the law titled Baugesetzbuch, "Lebensmittel- und Futtermittelgesetzbuch (LFGB)" a title of LFGB. Only a
        definition every occurrence agrees on counts."""
        votes: dict[tuple[str, str], set[str]] = {}
        for text in texts:
            for pattern in _DEFINED:
                for match in pattern.finditer(text):
                    found = self._definition(text, match)
                    if found is not None:
                        votes.setdefault(found[:2], set()).add(found[2])
        aliases = {k: next(iter(v)) for (kind, k), v in votes.items() if kind == "aliases" and len(v) == 1}
        names = {k: next(iter(v)) for (kind, k), v in votes.items() if kind == "names" and len(v) == 1}
        self.learned["aliases"].update(aliases)
        self.learned["names"].update(names)
        self.add_aliases(aliases, names)

    def _definition(self, text: str, match: re.Match[str]) -> tuple[str, str, str] | None:
        """(kind, spelling, jurabk) of one "<name> (<abbreviation>)", or None when neither side is known."""
        words = _title_words(text[max(0, match.start() - 160):match.start()])[-_TITLE_MAX_WORDS:]
        if not words or not _LAW_NOUN.fullmatch(words[-1]):
            return None
        # the name: the capitalised words before the bracket ("Lebensmittel- und Futtermittelgesetzbuch")
        start = len(words) - 1
        while start > 0 and ((words[start - 1][:1].isupper() and words[start - 1].lower() not in _FUNCTION_WORDS)
                             or (words[start - 1] == "und" and start > 1 and words[start - 2].endswith("-"))):
            start -= 1
        if start == len(words) - 1 and not _specific(words[-1]):
            return None  # "Gesetz (BGB)", "Betriebsordnung (BOStrab)": a kind, not a name
        name = words[start:]
        abbreviation = match.group("a")
        known = self.canonical(abbreviation)
        # only a whole title of the corpus names the law: a short title's shape is a guess, too weak to define one
        found = self.title_law(name)
        named = found[0] if found is not None and found[1] == len(name) else None
        if known is None and named is not None:
            # the law's whole title ("Betriebsordnung" is only the start of "Betriebsordnung für Luftfahrtgerät"),
            # abbreviated from its first letter
            whole = title_key(_title_words(re.sub(r"\s*\(.*$", "", self.titles.get(named, ""))))
            if whole != title_key(name) or abbreviation[0] != name[0][0] or not _looks_like_law(abbreviation):
                return None
            return "aliases", abbreviation, named
        if known is not None and named is None:
            return "names", title_key(name), known
        return None

    def add_vocabulary(self, texts: Iterable[str]) -> None:
        """Words (section titles, say) that tell where the parts of a compound short title begin."""
        assert self.short_titles is not None
        self.short_titles.vocabulary.update(
            w for text in texts for w in re.findall(r"[a-zäöüß]{3,}", text.lower())
        )

    def short_title_law(self, word: str) -> str | None:
        """The law a short title the corpus lacks names ("Geldwäschegesetzes" -> "GwG 2017", "AZR-Gesetzes" ->
        "AZRG": an abbreviation before "-Gesetz" names the jurabk that adds its G), or None."""
        if (hyphened := _ABBREVIATION_GESETZ.fullmatch(word)) is not None:
            return self.canonical(hyphened.group(1) + "G")
        return self.short_titles.law(word) if self.short_titles is not None else None

    @staticmethod
    def _spellings(law: str) -> set[str]:
        out = {law.casefold(), law.replace(" ", "").casefold()}
        year = re.fullmatch(r"(.+?) (?:\d{4})", law)
        if year:  # "SGB 9 2018" is cited as "SGB 9" / "SGB IX"
            out.add(year.group(1).casefold())
        if len(law) > 3 and law.endswith("EG") and law[:-2].isalpha():  # "BGBEG" is cited as "EGBGB"
            out.add(f"EG{law[:-2]}".casefold())
        return out

    def canonical(self, written: str) -> str | None:
        """The corpus's jurabk for a law as written ("BGB", "SGB V", "sgb 5"), or None when the corpus lacks it."""
        key = written.casefold()
        found = self._aliases.get(key) or self._aliases.get(key.replace(" ", ""))
        if found is None:
            roman = re.fullmatch(r"(.*?)\s*([ivx]+)", key)
            if roman:
                arabic = _roman(roman.group(2).upper())
                found = self._aliases.get(f"{roman.group(1)} {arabic}") if arabic else None
        return found

    def is_law(self, written: str) -> bool:
        """Whether the corpus has this law."""
        return self.canonical(written) is not None

    def title_law(self, words: list[str]) -> tuple[str, int] | None:
        """The law whose title the longest prefix of ``words`` reads as, with how many words it took."""
        stems = [_stem(w) for w in words[:_TITLE_MAX_WORDS]]
        for n in range(len(stems), 0, -1):
            if n in self._title_lengths and (law := self._title_index.get(" ".join(stems[:n]))) is not None:
                return law, n
        return None

    def enabling_law(self, law: str) -> str | None:
        """The one law of the corpus that the title of ``law`` cites ("... nach § 11 Absatz 2 des
        Luftverkehrsteuergesetzes" -> LuftVStG) or, citing no section, names ("Verordnung zur Durchführung des
        Energiesteuergesetzes" -> EnergieStG, "Umsatzsteuer-Durchführungsverordnung" -> UStG 1980), which its text
        calls "das Gesetz"; None when it cites or names none or several."""
        if law not in self._enabling:
            title = self.titles.get(law, "")
            named: set[str | None] = set()
            if _ORDINANCE.match(title):
                for citation in Extractor(self).extract(title):
                    found = self.canonical(citation.law) if citation.law else None
                    if found is not None and found != law:
                        named.add(found)
            # a statute's "des Gesetzes" is no law its title names
            if not named and _NAMED_ORDINANCE.match(title):
                named = self._named_in_title(law, title)
            self._enabling[law] = next(iter(named)) if len(named) == 1 else None
        return self._enabling[law]

    def _named_in_title(self, law: str, title: str) -> set[str | None]:
        """The laws an ordinance's title names by their exact title or spelling (no short-title guess); None for a
        law word that names no law of the corpus, so that a title naming two laws (or an unknown one) names none."""
        words = [m.group(0) for m in _TITLE_LAW_WORD.finditer(title)]
        if (stem := _STEM_ORDINANCE.match(title)) is not None:
            words.append(stem.group(1) + "gesetz")
        named: set[str | None] = set()
        for word in dict.fromkeys(words):
            found = self.title_law([word])
            law_named = found[0] if found else self.canonical(word)
            if law_named != law:
                named.add(law_named)
        return named

    def lookup(self, law: str, unit: str, number: str) -> str | None:
        """The document id of one section in its unit: "Artikel 7" of a law numbered in § is no § 7 (a bare
        article in such a law means another act, such as an EU regulation named in a lead-in)."""
        return self._by_number.get((law, unit, number))

    def units(self, law: str) -> frozenset[str]:
        """The units ("§", "Art") a law numbers its sections in."""
        if (found := self._units.get(law)) is None:
            found = self._units[law] = frozenset(u for u, _, _ in self.sections.get(law, ()))
        return found

    def in_range(self, law: str, unit: str, start: str, end: str) -> list[str]:
        """Every section of ``law`` from ``start`` to ``end`` inclusive (573 bis 574 holds 573a..573d)."""
        lo, hi = section_key(start), section_key(end)
        found = [(section_key(number), doc_id) for u, number, doc_id in self.sections.get(law, ())
                 if u == unit and lo <= section_key(number) <= hi]
        return [doc_id for _, doc_id in sorted(found, key=lambda f: f[0])]


@cache
def _curated_aliases() -> dict[str, str]:
    """The curated renamed-law spellings of ``data/law_aliases.tsv`` (alias -> jurabk)."""
    text = (resources.files("legalsearch") / "data" / "law_aliases.tsv").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {row[0]: row[1] for row in rows if len(row) >= 2}


def _in_order(letters: str, text: str) -> bool:
    """Whether ``letters`` occur in ``text`` in this order (a jurabk's letters in a compound)."""
    it = iter(text)
    return all(letter in it for letter in letters)


def _roman(text: str) -> int | None:
    if not text or any(c not in _ROMAN_VALUES for c in text):
        return None
    total = 0
    for i, c in enumerate(text):
        value = _ROMAN_VALUES[c]
        total += -value if i + 1 < len(text) and _ROMAN_VALUES[text[i + 1]] > value else value
    return total


@dataclass
class _Group:
    start: int
    end: int
    unit: str
    refs: list[SectionRef]
    law: str | None = None
    law_source: str | None = None


class Extractor:
    """Finds citations in text; a ``LawDirectory`` lets it read law titles and the corpus's own abbreviations."""

    def __init__(self, directory: LawDirectory | None = None) -> None:
        self.directory = directory if directory is not None else LawDirectory()

    def extract(self, text: str) -> list[Citation]:
        """Every citation in ``text``, in order; chains ("§ 5 i.V.m. § 6 BGB") give one citation per group."""
        out: list[Citation] = []
        pos = 0
        while True:
            match = _ANCHOR.search(text, pos)
            if match is None:
                return out
            if _REPORTER.search(text, max(0, match.start() - 40), match.start()):
                pos = match.end()
                continue
            chain = self._chain(text, match)
            pos = max(chain[-1].end, match.end())
            # a group without a law takes the law named after the chain's last group
            last = chain[-1]
            if last.law is None and last.law_source is None and \
                    _CITED_BEFORE.search(text, max(0, match.start() - 12), match.start()):
                continue  # "a. a. O., § 18 Rn. 3": the section of a book named before, not of a law
            before: tuple[str, str] | None = None
            if last.law is None and last.law_source is None:
                before = self._named_before(text, match.start(), last.end)
            for group in chain:
                law, source = group.law, group.law_source
                if law is None and source is None and last.law is not None and group is not last:
                    law, source = last.law, "chain"
                elif law is None and source is None and before is not None:
                    law, source = before
                out.append(Citation(group.start, group.end, text[group.start:group.end], group.unit,
                                    tuple(group.refs), law, source))

    def _named_before(self, text: str, start: int, end: int) -> tuple[str, str] | None:
        """(law, "lead-in" or "commentary") for a chain without a law whose law is named just before it."""
        if (law := self._lead_in(text, start)) is not None:
            return law, "lead-in"
        if (law := self._commentary(text, start, end)) is not None:
            return law, "commentary"
        return None

    def _lead_in(self, text: str, start: int) -> str | None:
        """The law a lead-in names just before a chain without a law, set off by a dash, colon or bracket
        ("Bestimmungen der Erschwerniszulagenverordnung - § 7 Abs. 3 , § 16a", "Vorschriften des Handelsgesetzbuchs
        (§§ 238 bis 263)"): the whole name must be a title of the corpus or a short title fitting one jurabk."""
        before = text[max(0, start - 4):start].rstrip()
        if not before.endswith(("-", "–", ":", "(")):
            return None  # the common case, checked before the costlier search
        lead = _LEAD_IN.search(text, max(0, start - 200), start)
        if lead is None:
            return None
        words, _ = _words(text, lead.start("rest"))
        if len(words) != len(_title_words(lead.group("rest"))):
            return None  # "des Strafgesetzbuches, die sich beziehen auf Vergünstigungen (§ 6)": more than a name
        found = self.directory.title_law(words) if words else None
        if found is not None and found[1] == len(words):
            return found[0]
        if len(words) == 1 and _LAW_NOUN.fullmatch(words[0]) and _specific(words[0]):
            return self.directory.short_title_law(words[0])
        return None

    def _commentary(self, text: str, start: int, end: int) -> str | None:
        """The law of a commentary cited just before a section without a law ("Eyermann / Geiger , VwGO , 14. Aufl. ,
        § 100 Rn. 9"), when the edition stands between them or a marginal number follows the section; else None."""
        segment = max(text.rfind(";", 0, start), text.rfind("(", 0, start), start - 160)
        found = _COMMENTARY.search(text, max(0, segment + 1), start)
        if found is None or (found.group("ed") is None and not _MARGINAL.match(text, end)):
            return None
        word = found.group("w")
        if word not in _NOT_LAWS and self.directory.is_law(word):
            return word
        # a commentary named with its law inside ("MüKoBGB", "BeckOK-ZPO"): the jurabk after a small letter or hyphen
        for inner in _INNER_LAW.finditer(word):
            if (tail := word[inner.start():]) not in _NOT_LAWS and len(tail) >= 2 and self.directory.is_law(tail):
                return tail
        if not _LAW_NOUN.fullmatch(word):
            return None
        if (titled := self.directory.title_law([word])) is not None:
            return titled[0]  # "Gräber / Herbert , Finanzgerichtsordnung , 8. Aufl. , § 91"
        # a short title the corpus does not hold, as for a lead-in ("Ströbele / Hacker , Markengesetz , 11. Auflage")
        return self.directory.short_title_law(word) if _specific(word) else None

    def _chain(self, text: str, match: re.Match[str]) -> list[_Group]:
        groups = [self._group(text, match)]
        while groups[-1].law is None and groups[-1].law_source is None:
            link = _CHAIN.match(text, groups[-1].end)
            if link is None:
                break
            nxt = _ANCHOR.match(text, link.end())
            if nxt is None:
                break
            groups.append(self._group(text, nxt))
        return groups

    def _group(self, text: str, match: re.Match[str]) -> _Group:
        anchor = match.group("a")
        unit = "§" if anchor.startswith("§") else "Art"
        plural = anchor.replace(" ", "") == "§§" or anchor == "Artt."
        refs = [SectionRef(match.group("n").replace("\\", "") + (match.group("letter") or ""))]
        inner = _ART_SECTION.match(text, match.end()) if unit == "Art" else None
        if inner is not None:
            # "Artikel IX § 4 Abs. 5": a section inside an article of an Artikelgesetz, whose section numbers
            # repeat from article to article; the citation names the article
            pos = self._parts(text, inner.end(), [SectionRef(inner.group("n"))], False)
        else:
            pos = self._parts(text, match.end(), refs, plural or unit == "Art")
        group = _Group(match.start(), pos, unit, refs)
        self._law(text, group)
        return group

    def _parts(self, text: str, pos: int, refs: list[SectionRef], smaller_is_part: bool) -> int:
        """Read markers, "ff.", list continuations and ranges after a section number; returns the end."""
        had_part = False
        while True:
            if ordinal := _ORDINAL_PART.match(text, pos):
                pos = ordinal.end()
                continue
            if marker := _MARKER.match(text, pos):
                part = _PART_VALUE.match(text, marker.end())
                if part is None and "." in refs[-1].number:  # "§ 15.02 Nummer 1.2": decimal parts of such a section
                    part = _DECIMAL_PART.match(text, marker.end())
                if part is None:
                    return pos
                pos, had_part = part.end(), True
                continue
            if had_part and (also := _ALSO_WITH.match(text, pos)) and _MARKER.match(text, also.end()):
                pos = also.end()  # "§ 14 Absatz 1, auch in Verbindung mit Absatz 2": more parts of the same section
                continue
            if following := _FOLLOWING.match(text, pos):
                refs[-1] = SectionRef(refs[-1].number, refs[-1].until, True)
                pos = following.end()
                continue
            sep = _LIST_SEP.match(text, pos)
            if sep is None:
                return pos
            if _MARKER.match(text, sep.end()):  # "Abs. 1, Abs. 2", "Satz 1 und Satz 2": more parts
                pos = sep.end()
                continue
            if had_part and text[pos - 1:pos].isalpha() and (letter := _LETTER.match(text, sep.end())):
                pos = letter.end()  # "Buchstabe a bis d", "Buchst. a und b": more letters of the same part
                continue
            found = _NUM_RE.match(text, sep.end())
            if "." in refs[-1].number:  # "§§ 6.04 bis 6.05": a list of decimal sections
                found = _DECIMAL_RE.match(text, sep.end())
            elif found is None or _DECIMAL.match(text, found.end()):
                return pos
            if found is None:
                return pos
            value = found.group(0).replace("\\", "")
            linked = sep.group("s") not in (",", "und", "oder", "sowie", "bzw.", "bis", "u.", "-", "–")
            if had_part and not linked and (not smaller_is_part or section_key(value) < section_key(refs[-1].number)) \
                    and not (smaller_is_part and sep.group("s") == "," and _OWN_ABSATZ.match(text, found.end())):
                # "§ 573 Abs. 1 und 2", "§§ 280 Abs. 1 und 3": a number after a part continues the parts
                if _PART_VALUE.fullmatch(value):
                    pos = found.end()
                    continue
                return pos
            if sep.group("s") in ("bis", "-", "–"):
                refs[-1] = SectionRef(refs[-1].number, value, refs[-1].following)
            else:
                refs.append(SectionRef(value))
            pos, had_part = found.end(), False

    def _law(self, text: str, group: _Group) -> None:
        pos = group.end
        if own := _SELF.match(text, pos):
            group.end, group.law_source = own.end(), "self"
            return
        if book := _BOOK.match(text, pos):
            group.law, group.law_source, group.end = f"SGB {_ORDINALS[book.group('o')]}", "title", book.end()
            return
        genitive = _GENITIVE.match(text, pos)
        if genitive:
            if self._named(text, group, genitive):
                return
            pos = genitive.end() - 1  # "§ 5 des BGB"
        self._abbreviation(text, group, pos)

    def _named(self, text: str, group: _Group, genitive: re.Match[str]) -> bool:
        """A law named after an article ("des Bürgerlichen Gesetzbuchs", "der Verordnung (EG) Nr. 1071/2009");
        whether one was read (a party's document, "der Satzung", counts: it ends the citation without a law)."""
        words, ends = _words(text, genitive.end())
        found = self.directory.title_law(words)
        if found:
            group.law, group.law_source, group.end = found[0], "title", ends[found[1] - 1]
            return True
        if dated := _DATED_ACT.match(text, genitive.end()):
            rest, rest_ends = _words(text, dated.end())
            found = self.directory.title_law([dated.group("kind"), *rest])
            if found and found[1] > 1:
                group.law, group.law_source, group.end = found[0], "title", rest_ends[found[1] - 2]
                return True
        for i, word in enumerate(words[:4]):
            if _LAW_NOUN.fullmatch(word):
                end = ends[i]
                number = _LAW_NUMBER.match(text, end)
                tail = _NAME_TAIL.match(text, number.end() if number else end)
                assert tail is not None  # the tail may be empty
                if group.unit == "§" and i == 0 and _PRIVATE.fullmatch(word) and not number and not tail.group(0):
                    group.law_source = "private"
                    return True
                # "des Brandenburgischen Hochschulgesetzes": a capitalised word before the noun makes another name
                named_before = any(w[:1].isupper() and not w.endswith("-") for w in words[:i])  # ("EU- Verbr…")
                short = self.directory.short_title_law(word) if word[:1].isupper() and not named_before else None
                if short is not None and (_specific(word) or not tail.group(0)):
                    group.law, group.law_source, group.end = short, "title", end
                    return True
                if number is None and _specific(word):
                    # "des Treibhausgas-Emissionshandelsgesetzes vom 8. Juli 2004": the name is complete, but for
                    # the year of its version ("des Haftungsübereinkommens von 1992")
                    tail = _VERSION_YEAR.match(text, end) or _EMPTY.match(text, end)
                    assert tail is not None
                stop = tail.end()
                if (between := _BETWEEN.search(text, tail.start(), stop)) and \
                        not _TREATY.search(text, genitive.start("rest"), between.start()):
                    stop = between.start()
                if number is None and (year := _YEAR.match(text, stop)):
                    stop = year.end()  # "des Bewertungsänderungsgesetzes 1965"
                group.law, group.law_source, group.end = text[genitive.start("rest"):stop], "title", stop
                return True
            if not word[:1].isupper() and not word.endswith("en"):  # "der deutschen Verfassung"
                break
        return False

    def _abbreviation(self, text: str, group: _Group, pos: int) -> None:
        abbreviation = _ABBREVIATION.match(text, pos)
        if abbreviation is None:
            return
        word = abbreviation.group("w")
        known = self.directory.canonical(word)
        end = abbreviation.end()
        if known is None and _LAW_NOUN.fullmatch(word):  # "§ 148 Baugesetzbuch": a title without an article
            titled = self.directory.title_law([word])
            law = titled[0] if titled else self.directory.short_title_law(word)
            if law is None and (number := _LAW_NUMBER.match(text, end)):  # "Art. 5 Verordnung (EG) Nr. 1/2003"
                word, end = text[abbreviation.start("w"):number.end()], number.end()
            group.law, group.law_source, group.end = law or word, "title", end
            return
        if known is None and not _looks_like_law(word):
            return
        if known is None and (number := _LAW_NUMBER.match(text, end)):
            word, end = text[abbreviation.start("w"):number.end()], number.end()  # "VO 881/2002", "RL 2003/88/EG"
        elif (state := _ABBREVIATION.match(text, end)) and state.group("w") in _STATES:
            word, end = f"{word} {state.group('w')}", state.end()  # "PersVG BB": a state's law
        elif known is None and (state_name := _STATE_NAME.match(text, end)):
            word, end = text[abbreviation.start("w"):state_name.end()], state_name.end()  # "KAG Rheinland-Pfalz"
        elif (known is None or not self.directory.sections[known]) and _AGREEMENT.fullmatch(word) and \
                (branch := _AGREEMENT_TAIL.match(text, end)):  # (the corpus holds some agreements as bare stubs)
            word, end = text[abbreviation.start("w"):branch.end()], branch.end()  # "MTV Systemgastronomie 2014"
        elif number := _ROMAN_OR_DIGIT.match(text, end):
            # "SGB V", "SGB 5", "BImSchV 4": the number belongs to the law when the corpus knows the pair
            joined = f"{word} {number.group('w')}"
            if self.directory.canonical(joined) is not None or \
                    (word == "SGB" and known is None and len(number.group("w")) <= 2):
                word, end = joined, number.end()
        group.law, group.law_source, group.end = word, "abbreviation", end


def _words(text: str, at: int) -> tuple[list[str], list[int]]:
    """The words of a possible law title from ``at`` (at most ``_TITLE_MAX_WORDS``) and where each ends."""
    words: list[str] = []
    ends: list[int] = []
    while len(words) < _TITLE_MAX_WORDS and (w := _TITLE_WORD.match(text, at)) and w.group("w"):
        words.append(w.group("w"))
        ends.append(w.start() + len(w.group("w")))
        if not w.group("sp"):
            break
        at = w.end()
    return words, ends


def _specific(word: str) -> bool:
    """Whether a law noun is a name of its own ("Emissionshandelsgesetzes"), not a kind ("Gesetzes", "Zusatzabkommens",
    "EG-Vertrages") that needs what follows to name one law."""
    head = _HEAD_NOUN.fullmatch(word.lower())
    if head is None:
        return False
    prefix = head.group("p").rstrip("-")
    return sum(c.isalpha() for c in prefix) >= 4 and prefix not in _GENERIC_PREFIXES


def _looks_like_law(word: str) -> bool:
    if word in _NOT_LAWS or not re.fullmatch(r"[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]*(?:-[A-Za-zÄÖÜäöüß]+)?", word):
        return False
    return sum(c.isupper() for c in word) >= 2 and len(word) <= 16


def resolve(
    citation: Citation,
    directory: LawDirectory,
    context_law: str | None = None,
    max_range: int = 500,
) -> Resolved:
    """The documents a citation names; a citation without a law refers to ``context_law`` (the citing statute's).

    A range is cut after ``max_range`` sections (``capped`` says how many were dropped); a range that runs
    backwards ("§§ 9 bis 3") resolves to nothing with reason "malformed range".
    """
    if citation.law_source == "private":  # "§ 19 der Satzung": a party's document, never the citing law
        return Resolved(citation, (), "no law")
    if citation.law is None or citation.law_source == "self":
        if context_law is None:
            return Resolved(citation, (), "no law")
        law: str | None = context_law
        if law in directory.sections and citation.unit not in directory.units(law) and citation.law_source is None:
            # a bare "Artikel 7" in a law of §§ (or "§ 5" in one of articles) names an act the text named before
            return Resolved(citation, (), "unknown law")
    else:
        law = directory.canonical(citation.law)
        if law is None and citation.law in _BARE_KIND and context_law is not None:
            law = directory.enabling_law(context_law)  # "nach § 16 des Gesetzes" in an ordinance
    if law is None or law not in directory.sections:
        return Resolved(citation, (), "unknown law")
    if citation.law_source == "title" and directory.sections[law] and citation.unit not in directory.units(law):
        # "Art. 7 der Freizügigkeitsverordnung" read as a German ordinance of §§: the name fits, the unit does not,
        # so another act of that name is meant (an EU regulation, an amending act's articles)
        return Resolved(citation, (), "unknown law")
    targets: list[str] = []
    missing: list[str] = []
    capped = 0
    malformed = False
    for ref in citation.refs:
        if ref.until is not None:
            if section_key(ref.until) < section_key(ref.number):
                malformed = True
                continue
            found = directory.in_range(law, citation.unit, ref.number, ref.until)
            if not found:
                missing.append(f"{law} {citation.unit} {ref.number}-{ref.until}")
            room = max(0, max_range - len(targets))
            capped += max(0, len(found) - room)
            targets.extend(found[:room])
            continue
        doc_id = directory.lookup(law, citation.unit, ref.number)
        if doc_id is None:
            missing.append(f"{law} {citation.unit} {ref.number}")
        else:
            targets.append(doc_id)
    unique = tuple(dict.fromkeys(targets))
    reason: Reason | None = None
    if not unique:
        reason = "malformed range" if malformed else "missing section"
    return Resolved(citation, unique, reason, tuple(missing), capped)


def directory_from_documents(
    docs: Iterable[tuple[str, str, Mapping[str, object]]],
    withheld: Iterable[tuple[str, str, str, str]] = (),
) -> LawDirectory:
    """A LawDirectory of (id, type, metadata) triples: the statute sections with "law" and "section" metadata,
    plus ``withheld`` sections (id, law, title, label) whose heading exists but which are not indexed."""
    rows = list(withheld)
    for doc_id, doc_type, meta in docs:
        law, section = meta.get("law"), meta.get("section")
        if doc_type == "statute" and isinstance(law, str) and isinstance(section, str):
            title = meta.get("law_title")
            rows.append((doc_id, law, title if isinstance(title, str) else "", section))
    return LawDirectory.from_sections(rows)


def directory_of(documents: Sequence[Document], withheld: Iterable[tuple[str, str, str, str]] = ()) -> LawDirectory:
    """The LawDirectory of a corpus as training builds it: its statute sections, the words that split compound short
    titles (section titles), and the law names the corpus's texts define."""
    directory = directory_from_documents(((d.id, d.type, d.metadata) for d in documents), withheld)
    directory.add_vocabulary(d.title for d in documents)
    directory.learn_definitions(d.text for d in documents)
    return directory
