"""Corpus readers: law Markdown (folder, archive, file), JSON Lines, extra text, and the demo corpus."""

from __future__ import annotations

import gzip
import logging
import tarfile
from pathlib import Path

import pytest

from legalsearch.config import CorpusConfig
from legalsearch.corpus import IngestReport, detect_format, read_documents, read_extra_text
from legalsearch.corpus.gesetze import iter_archive_laws, read_law_bytes
from legalsearch.errors import CorpusError
from legalsearch.types import Document, SkippedRecord

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "corpus"
LAWS = FIXTURES / "gesetze"
DEMO = REPO / "corpora" / "demo"
CONFIG = CorpusConfig()


def read(paths: list[str | Path], config: CorpusConfig = CONFIG) -> tuple[dict[str, Document], IngestReport]:
    report = IngestReport()
    docs = list(read_documents(paths, config, report))
    by_id = {d.id: d for d in docs}
    assert len(by_id) == len(docs), "ids must be unique"
    assert report.documents == len(docs)
    return by_id, report


def skipped(report: IngestReport) -> set[tuple[str, int, str]]:
    return {(s.source, s.line, s.reason) for s in report.skipped}


# --- law Markdown -------------------------------------------------------------------------------------------


def test_section_ids_titles_text_and_metadata() -> None:
    docs, _ = read([LAWS])
    doc = docs["TestG § 1"]
    assert doc.title == "Grundsatz"
    assert doc.type == "statute"
    assert doc.text == (
        "(1) Dieser Satz ist hart umbrochen und wird zu einer Zeile verbunden.\n"
        "(2) Der zweite Absatz steht nach einem Zeilenumbruch."  # footnote marker removed
    )
    assert dict(doc.metadata) == {
        "law": "TestG",
        "law_title": "Testgesetz über die Prüfung des Einlesens",  # folded front-matter value
        "section": "§ 1",
        "heading_path": "Buch 1 - Allgemeiner Teil > Abschnitt 1 - Grundsätze",
    }
    assert doc.source == "gesetze/t/testg/index.md:31"
    assert docs["TestG § 1a"].title == "Ergänzung des Grundsatzes"
    assert docs["TestG § 9"].title == ""
    assert docs["TGG Art 1"].title == ""
    assert docs["TGG Art 2"].title == "Freiheit"
    assert docs["TGG Art 2"].metadata["heading_path"] == "I. - Die Grundrechte"


def test_heading_path_follows_depth_and_wrapped_headings() -> None:
    docs, _ = read([LAWS])
    # "### Abschnitt 2" with its title on the next line; § 8 sits two levels deeper than its siblings
    assert docs["TestG § 8"].metadata["heading_path"] == (
        "Buch 1 - Allgemeiner Teil > Abschnitt 2 - Besondere Vorschriften > Titel 1 - Tiefer gegliedert"
    )
    assert docs["TestG § 9"].metadata["heading_path"] == "Buch 2 - Schlussbestimmungen"


def test_repealed_preamble_contents_and_empty_sections_are_skipped_and_counted() -> None:
    docs, report = read([LAWS])
    law = "gesetze/t/testg/index.md"
    assert {"TestG § 5", "TestG § 6", "TestG § 7"}.isdisjoint(docs)
    assert not any("§§ 2" in i for i in docs)
    assert {
        (law, 18, "preamble"),
        (law, 22, "table of contents"),
        (law, 42, "repealed"),  # (XXXX) §§ 2 bis 4 (weggefallen)
        (law, 44, "repealed"),  # heading "§ 5 (weggefallen)"
        (law, 46, "repealed"),  # text "(weggefallen)"
        (law, 50, "empty text"),  # text "-"
        (law, 70, "preamble"),  # Schlussformel
    } <= skipped(report)
    assert report.reasons() == {"repealed": 3, "preamble": 2, "table of contents": 1, "empty text": 1}


def test_repeated_section_labels_get_numbered_suffixes_in_file_order() -> None:
    docs, _ = read([LAWS])
    assert docs["TestG § 1"].title == "Grundsatz"
    assert docs["TestG § 1 (2)"].title == "Name der Vereinigung"
    assert docs["TestG § 1 (3)"].title == "Sitz der Vereinigung"
    assert docs["TestG § 1 (3)"].metadata["section"] == "§ 1"
    assert docs["TestG § 1 (3)"].metadata["heading_path"] == "Anlage 2 Mustersatzung"


def test_annexes_indexed_with_truncated_heading_id() -> None:
    docs, _ = read([LAWS])
    annex = docs["TestG Anlage 1 (zu § 1) Muster eines Antrags mit einer sehr langen"]
    assert annex.type == "annex"
    assert annex.title.endswith("die abgeschnitten wird")
    assert annex.text == (
        "(Fundstelle: Testblatt 2001, 5)\nName, Vorname, Anschrift und Unterschrift des Antragstellers."
    )
    assert docs["TGG Präambel"].type == "annex"
    # "Anlage 2" carries no text of its own: it is structure for the sections below it
    assert not any(i.startswith("TestG Anlage 2") for i in docs)


def test_annexes_not_indexed_are_counted() -> None:
    docs, report = read([LAWS], CorpusConfig(index_annexes=False))
    assert {d.type for d in docs.values()} == {"statute"}
    assert report.reasons()["annex not indexed"] == 2


def test_min_text_chars_applies() -> None:
    docs, report = read([LAWS], CorpusConfig(min_text_chars=60))
    assert "TestG § 1a" not in docs  # 50 characters
    assert "TestG § 8" in docs
    assert report.reasons()["empty text"] >= 2


def test_archive_and_folder_give_identical_documents(tmp_path: Path) -> None:
    archive = tmp_path / "laws.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(LAWS, arcname="gesetze")
    folder_report, archive_report = IngestReport(), IngestReport()
    from_folder = list(read_documents([LAWS], CONFIG, folder_report))
    from_archive = list(read_documents([archive], CONFIG, archive_report))
    assert from_archive == from_folder
    assert archive_report.skipped == folder_report.skipped
    assert detect_format(archive) == "gesetze-tar"


def test_single_law_file_and_file_without_front_matter() -> None:
    docs, _ = read([LAWS / "t" / "tgg" / "index.md"])
    assert set(docs) == {"TGG Präambel", "TGG Art 1", "TGG Art 2"}
    with pytest.raises(CorpusError, match="no usable document"):
        list(read_documents([LAWS / "README.md"], CONFIG, IngestReport()))


def test_law_file_with_invalid_utf8_is_reported() -> None:
    report = IngestReport()
    data = (LAWS / "t" / "tgg" / "index.md").read_bytes().replace("Würde".encode(), b"W\xfcrde")
    assert list(read_law_bytes(data, "bad/index.md", CONFIG, report)) == []
    assert report.skipped == [SkippedRecord("bad/index.md", 23, "invalid UTF-8")]


def test_a_law_without_sections_is_withheld_as_a_citable_law() -> None:
    # treaties published as metadata only: no document, but citations can name the law (its articles are missing)
    report = IngestReport()
    data = ("---\nTitle: Übereinkommen über die Erteilung europäischer Patente\njurabk: EuPatÜbk\nlayout: default\n"
            "---\n\n# Übereinkommen über die Erteilung europäischer Patente (EuPatÜbk)\n").encode()
    assert list(read_law_bytes(data, "e/eupatuebk/index.md", CONFIG, report)) == []
    assert report.withheld == [("", "EuPatÜbk", "Übereinkommen über die Erteilung europäischer Patente", "")]


# --- JSON Lines ---------------------------------------------------------------------------------------------


def test_jsonl_records_and_metadata(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="legalsearch.corpus"):
        docs, _ = read([FIXTURES / "decisions.jsonl"])
    first = docs["T-1"]
    assert first.type == "decision"
    assert first.title == "Erste Entscheidung"
    assert dict(first.metadata) == {
        "court": "BGH",
        "date": "2021-01-01",
        "law": "TestG",
        "year": 2021,
        "published": True,
        "note": None,
    }
    assert "field 'tags' is not a scalar" in caplog.text
    assert docs["T-2"].type == "document"
    assert docs["T-2"].title == ""
    assert set(docs) == {"T-1", "T-2"}


def test_jsonl_bad_records_are_reported_with_file_and_line(tmp_path: Path) -> None:
    _, report = read([FIXTURES / "decisions.jsonl"])
    src = str(FIXTURES / "decisions.jsonl")
    assert skipped(report) == {
        (src, 4, "broken JSON"),
        (src, 5, "not an object"),
        (src, 6, "missing id"),
        (src, 7, "empty text"),
        (src, 8, "duplicate id"),
        (src, 9, "invalid id"),
    }
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b'{"id": "U-1", "text": "Ein gueltiger Datensatz im gz-Archiv."}\n')
        fh.write(b'{"id": "U-2", "text": "Ung\xfcltiges UTF-8 in dieser Zeile."}\n')
    docs, report = read([bad])
    assert set(docs) == {"U-1"}
    assert report.skipped == [SkippedRecord(str(bad), 2, "invalid UTF-8")]


def test_duplicate_ids_across_files_keep_the_first(tmp_path: Path) -> None:
    other = tmp_path / "more.jsonl"
    other.write_text(
        '{"id": "T-2", "text": "Eine zweite Fassung mit derselben id wird übersprungen."}\n'
        '{"id": "TestG § 1", "text": "Auch eine id aus dem Gesetz darf nicht doppelt vorkommen."}\n'
        '{"id": "T-9", "text": "Ein neuer Datensatz wird gelesen."}\n',
        encoding="utf-8",
    )
    docs, report = read([LAWS, FIXTURES / "decisions.jsonl", other])
    assert docs["T-2"].text.startswith("Eine Entscheidung ohne Titel")
    assert docs["TestG § 1"].type == "statute"
    assert "T-9" in docs
    assert {(str(other), 1, "duplicate id"), (str(other), 2, "duplicate id")} <= skipped(report)


def test_summary_line() -> None:
    report = IngestReport(documents=88470)
    report.skip("a.md", 1, "repealed", routine=True)
    report.skip("a.md", 2, "repealed", routine=True)
    report.skip("b.jsonl", 3, "broken JSON")
    assert report.summary() == "read 88,470 documents; skipped 3: 2 repealed, 1 broken JSON"
    assert IngestReport(documents=2).summary() == "read 2 documents; skipped none"


# --- extra text and errors ----------------------------------------------------------------------------------


def test_extra_text_plain_gz_folder_and_invalid_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"  Erste Zeile.  \n\n   \nZweite Zeile.\nKaputt: \xff\xfe\n")
    with gzip.open(tmp_path / "b.txt.gz", "wb") as fh:
        fh.write(b"Dritte Zeile aus gz.\n")
    (tmp_path / "ignored.md").write_text("not text\n", encoding="utf-8")
    report = IngestReport()
    lines = list(read_extra_text([tmp_path], report))
    assert lines == ["Erste Zeile.", "Zweite Zeile.", "Dritte Zeile aus gz."]
    assert report.extra_lines == 3
    assert report.skipped == [SkippedRecord(f"{tmp_path.name}/a.txt", 5, "invalid UTF-8")]
    assert detect_format(tmp_path / "b.txt.gz") == "text"


def test_missing_and_unknown_paths_raise_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        list(read_documents([tmp_path / "nope"], CONFIG, IngestReport()))
    with pytest.raises(CorpusError, match="not found"):
        list(read_extra_text([tmp_path / "nope.txt"], IngestReport()))
    (tmp_path / "data.csv").write_text("id,text\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        detect_format(tmp_path / "data.csv")
    with pytest.raises(CorpusError, match="no law Markdown"):
        list(read_documents([tmp_path], CONFIG, IngestReport()))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no usable document"):
        list(read_documents([empty], CONFIG, IngestReport()))


# --- demo corpus --------------------------------------------------------------------------------------------


def test_demo_corpus_reads_cleanly() -> None:
    docs, report = read([DEMO])
    types = [d.type for d in docs.values()]
    assert len(docs) >= 70
    assert types.count("decision") == 30
    assert types.count("annex") >= 1
    assert types.count("statute") >= 40
    # only the intended skips: the (weggefallen) sections and the two formulas
    assert report.reasons() == {"repealed": 3, "preamble": 2}
    assert docs["DMietG § 13"].title == "Ordentliche Kündigung des Vermieters"
    # every law a decision cites exists in the corpus
    laws = {d.metadata["law"] for d in docs.values() if d.type == "statute"}
    assert {d.metadata["law"] for d in docs.values() if d.type == "decision"} <= laws

    extra = IngestReport()
    lines = list(read_extra_text([DEMO / "extra"], extra))
    assert len(lines) >= 250
    assert not extra.skipped


# --- the real federal archive -------------------------------------------------------------------------------


@pytest.mark.shared
def test_real_archive_bgb_and_gg(shared_dir: Path) -> None:
    archive = shared_dir / "corpora" / "gesetze-markdown.tar.gz"
    wanted = {"gesetze/b/bgb/index.md", "gesetze/g/gg/index.md"}
    report = IngestReport()
    docs: dict[str, Document] = {}
    for name, data in iter_archive_laws(archive):
        if name in wanted:
            docs.update((d.id, d) for d in read_law_bytes(data, name, CONFIG, report))
            wanted.discard(name)
            if not wanted:
                break
    assert not wanted, f"missing from the archive: {wanted}"
    assert docs["BGB § 573"].title == "Ordentliche Kündigung des Vermieters"
    assert "berechtigtes Interesse" in docs["BGB § 573"].text
    assert "Mietverhältnisse über Wohnraum" in str(docs["BGB § 573"].metadata["heading_path"])
    assert "BGB § 573b" in docs
    assert docs["GG Art 1"].text.startswith("(1) Die Würde des Menschen ist unantastbar.")
    assert sum(1 for d in docs.values() if d.metadata["law"] == "BGB") > 2000


def test_markdown_images_are_dropped_and_links_keep_their_text() -> None:
    from legalsearch.corpus.gesetze import _paragraphs

    assert _paragraphs("Muster ![bgbl1_2010_0010.jpg](bgbl1_2010_0010.jpg)\nsiehe [Anlage 1](#anl1).") == [
        "Muster siehe Anlage 1."
    ]
