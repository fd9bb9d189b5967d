"""Reader of the German federal law Markdown format (``bundestag/gesetze``): one Document per section.

The rules are written down in ``docs/corpus-formats.md``; keep the two in step.
"""

from __future__ import annotations

import logging
import re
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from legalsearch.config import CorpusConfig
from legalsearch.corpus.report import IngestReport
from legalsearch.errors import CorpusError
from legalsearch.types import Document

log = logging.getLogger("legalsearch.corpus")

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")

# anchored on the preceding newline rather than "^": a literal first character lets the regex engine skip
# ahead instead of trying every position of a 200 MB archive
_HEADING = re.compile(r"\n(#{1,6})(?=[ \t\r\n]|$)([^\n]*)")
_CLOSING_HASHES = re.compile(r"[ \t]+#+[ \t\r]*$")
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
# "§ 573b", "§ 1.01", "§§ 12", "Art 1", "Art IIIa", "Artikel 3"; not "Art und Weise" nor "Artengruppe 2"
_SECTION = re.compile(
    r"^(?P<label>(?:§§?|Art\.?|Artikel)\s*(?:\d+[a-z]*(?:\.\d+[a-z]*)*|[IVXLC]+[a-z]?))(?=\s|$)\s*(?P<title>.*)$"
)
_PLACEHOLDER = re.compile(r"^\(XXXX\)\s*")
_REPEALED_HEADING = re.compile(r"\((?:weggefallen|aufgehoben)\)")
_REPEALED_TEXT = re.compile(r"^[-–\s]*\(?(?:weggefallen|aufgehoben|gestrichen|entfällt|gegenstandslos)\)?[.\s]*$", re.I)
_PREAMBLE = re.compile(r"^(?:Eingangsformel|Schlu(?:ss|ß)formel)\b")
_CONTENTS = re.compile(r"^Inhalts(?:verzeichnis|übersicht)\b")
# "Erster", "Zweites", ... as structural headings begin
_ORDINALS = "Erst|Zweit|Dritt|Viert|Fünft|Sechst|Siebt|Siebent|Acht|Neunt|Zehnt|Elft|Zwölft"
_STRUCTURAL = re.compile(
    r"^(?:(?:Buch|Teil|Abschnitt|Unterabschnitt|Titel|Untertitel|Kapitel|Unterkapitel|Abteilung|Gliederungseinheit)\b"
    rf"|(?:{_ORDINALS})e[rs]?\b)"
)
# a structural label inside a heading path ("Buch 2 -", "Untertitel 1 -", "Zweiter Abschnitt"), with its number
_HEADING_LABEL = re.compile(
    rf"\b(?:(?:{_ORDINALS})er\s+)?"
    r"(?:Buch|Teil|Abschnitt|Unterabschnitt|Titel|Untertitel|Kapitel|Unterkapitel|Abteilung|Unterabteilung)"
    r"(?:\s+[0-9IVXLC]+[a-z]?\b)?\s*[-–:.]?\s*"
)
_FOOTNOTE = re.compile(r"\[\^[^\]]*\]:?")
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):[ \t]*(.*)$")

#: the front matter is looked for in this many first lines
_FRONT_MATTER_LINES = 100
#: annex ids use at most this much of the heading
ANNEX_ID_CHARS = 60
#: a text-carrying structural heading whose "text" is one short line is a heading wrapped onto two lines
_WRAPPED_HEADING_CHARS = 100


def is_archive(path: Path) -> bool:
    """Whether a path names a tar archive by its suffix."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class LawHeader:
    """The front matter of one law file."""

    jurabk: str
    title: str
    slug: str
    #: index of the first line after the front matter
    body_start: int


@dataclass
class _Block:
    """One heading with the text up to the next heading."""

    depth: int
    heading: str
    line: int
    text: str


def strip_heading_labels(heading_path: str) -> str:
    """A section's heading path (``metadata["heading_path"]``) without its structural labels ("Buch 2 -",
    "Untertitel 1 -", "Zweiter Abschnitt"), the levels separated by ". ": the labels are in every section's path
    and would only make phrases such as "pachtvertrag_untertitel"; the titles are kept."""
    return _HEADING_LABEL.sub(" ", heading_path.replace(" > ", ". "))


def _clean(text: str) -> str:
    """Markdown emphasis and footnote markers removed, whitespace (incl. no-break spaces) collapsed."""
    return " ".join(_FOOTNOTE.sub("", text).replace("**", "").split())


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def parse_front_matter(lines: list[str]) -> LawHeader | None:
    """The law header, or None when the file has no front matter (a README, not a law).

    The front matter's simple ``key: value`` lines are parsed by hand; indented lines continue the previous
    value. A few files carry the first part of a long title on lines above the opening ``---``.
    """
    lines = [line.rstrip("\r") for line in lines]
    start = next((i for i, line in enumerate(lines[:10]) if line.strip() == "---"), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        return None
    values: dict[str, str] = {}
    key = ""
    for line in lines[start + 1 : end]:
        match = _KEY_VALUE.match(line)
        if match:
            key = match.group(1)
            values[key] = match.group(2).strip()
        elif key and line[:1].isspace() and line.strip():
            values[key] = f"{values[key]} {line.strip()}"
    title = " ".join(part for part in (" ".join(lines[:start]).strip(), _unquote(values.get("Title", ""))) if part)
    return LawHeader(
        jurabk=_clean(_unquote(values.get("jurabk", ""))),
        title=_clean(title),
        slug=_unquote(values.get("slug", "")),
        body_start=end + 1,
    )


_LINK = re.compile(r"(!?)\[([^\]]*)\]\([^)]*\)")


def _paragraphs(chunk: str) -> list[str]:
    """Blank-line separated paragraphs, each with its hard wraps joined into single spaces."""
    paragraphs = []
    for raw in _BLANK_LINE.split(chunk):
        if "[^" in raw:
            raw = _FOOTNOTE.sub("", raw)
        if "**" in raw:
            raw = raw.replace("**", "")
        if "](" in raw:
            # scanned tables and forms are embedded as images: their file names are no text; links keep their text
            raw = _LINK.sub(lambda m: "" if m.group(1) else m.group(2), raw)
        text = " ".join(raw.split())
        if text:
            paragraphs.append(text)
    return paragraphs


def _blocks(text: str, start: int, first_line: int) -> tuple[str, list[_Block]]:
    """The H1 title and every deeper heading with its text; the law's header text before them is dropped.

    ``start`` is the offset of the body in ``text``, ``first_line`` its 1-based line number.
    """
    h1 = ""
    blocks: list[_Block] = []
    line, pos = first_line, start
    # the body starts right after a newline, which the heading pattern needs to see
    headings = list(_HEADING.finditer(text, max(start - 1, 0)))
    for k, match in enumerate(headings):
        line += text.count("\n", pos, match.start() + 1)
        pos = match.start() + 1
        end = headings[k + 1].start() if k + 1 < len(headings) else len(text)
        heading = _clean(_CLOSING_HASHES.sub("", match.group(2)))
        if len(match.group(1)) == 1:
            h1 = h1 or heading
        else:
            blocks.append(_Block(len(match.group(1)), heading, line, text[match.end() : end]))
    return h1, blocks


def parse_law(text: str, source: str, config: CorpusConfig, report: IngestReport) -> Iterator[Document]:
    """The Documents of one law file's text; ``source`` names the file in reports and ``Document.source``."""
    head = text.split("\n", _FRONT_MATTER_LINES)[:_FRONT_MATTER_LINES]
    header = parse_front_matter(head)
    if header is None:
        log.debug("%s: no front matter, not a law file", source)
        return
    if not header.jurabk:
        report.skip(source, 1, "missing jurabk")
        return
    body_offset = sum(len(line) + 1 for line in head[: header.body_start])
    h1, blocks = _blocks(text, body_offset, header.body_start + 1)
    title = header.title or re.sub(rf"\s*\({re.escape(header.jurabk)}\)$", "", h1)
    if not blocks:
        # treaties and ordinances published as metadata only: no document, but a law citations can name (its
        # articles are then a missing section, not an unknown law); an empty label marks the law without sections
        report.skip(source, 1, "law without sections", routine=True)
        report.withheld.append(("", header.jurabk, title, ""))
        return
    law = _LawReader(header, title, source, config, report)
    for block in blocks:
        doc = law.read(block)
        if doc is not None:
            yield doc


class _LawReader:
    """Turns one law's blocks into Documents, in order: ids counted per label, the path of enclosing headings."""

    def __init__(self, header: LawHeader, law_title: str, source: str, config: CorpusConfig,
                 report: IngestReport) -> None:
        self.header = header
        self.law_title = law_title
        self.source = source
        self.config = config
        self.report = report
        self.seen: Counter[str] = Counter()
        self.path: list[tuple[int, str]] = []

    def read(self, block: _Block) -> Document | None:
        """The Document of one block, or None for a block that is skipped (reported) or only a heading."""
        while self.path and self.path[-1][0] >= block.depth:
            self.path.pop()
        paragraphs = _paragraphs(block.text)
        placeholder = _PLACEHOLDER.match(block.heading) is not None
        heading = _PLACEHOLDER.sub("", block.heading)
        section = None if placeholder else _SECTION.match(heading)
        if section:
            return self._section(block, section, paragraphs)
        return self._other(block, heading, paragraphs)

    def _section(self, block: _Block, section: re.Match[str], paragraphs: list[str]) -> Document | None:
        body = "\n".join(paragraphs)
        label, title = section.group("label"), section.group("title")
        doc = self._make(label, title, "statute", block, paragraphs)
        if _REPEALED_HEADING.search(title) or _REPEALED_TEXT.match(body):
            self._skip(block, "repealed")
        elif len(body) < self.config.min_text_chars:
            self._skip(block, "empty text")
        else:
            return doc
        self.report.withheld.append((doc.id, self.header.jurabk, self.law_title, label))
        return None

    def _other(self, block: _Block, heading: str, paragraphs: list[str]) -> Document | None:
        """A block without a section label: skipped, an annex, or a heading of the path."""
        body = "\n".join(paragraphs)
        reason = _skip_reason(heading, body)
        if reason is not None:
            self._skip(block, reason)
            return None
        if (
            _STRUCTURAL.match(heading)
            and len(paragraphs) == 1
            and len(body) <= _WRAPPED_HEADING_CHARS
            and not body.endswith((".", ":", ";"))
        ):
            # "Abschnitt 2" / "Bodenbezogene Verwertung": the title was set on the line below the heading
            heading = f"{heading} - {body}"
            paragraphs, body = [], ""
        doc = None
        if body:
            annex = self._make(heading[:ANNEX_ID_CHARS].rstrip(), heading, "annex", block, paragraphs)
            if not self.config.index_annexes:
                self._skip(block, "annex not indexed")
            elif len(body) < self.config.min_text_chars:
                self._skip(block, "empty text")
            else:
                doc = annex
        self.path.append((block.depth, heading))
        return doc

    def _make(self, label: str, title: str, doc_type: str, block: _Block, paragraphs: list[str]) -> Document:
        # every occurrence counts, kept or skipped, so that ids do not shift with the config
        header = self.header
        base = f"{header.jurabk} {label}".strip()
        self.seen[base] += 1
        return Document(
            id=base if self.seen[base] == 1 else f"{base} ({self.seen[base]})",
            text="\n".join(paragraphs),
            title=title,
            type=doc_type,
            metadata={
                "law": header.jurabk,
                "law_title": self.law_title,
                "section": label,
                "heading_path": " > ".join(h for _, h in self.path),
            },
            source=f"{self.source}:{block.line}",
        )

    def _skip(self, block: _Block, reason: str) -> None:
        self.report.skip(self.source, block.line, reason, routine=True)


def _skip_reason(heading: str, body: str) -> str | None:
    """Why a block without a section label is left out (repealed, preamble, table of contents), or None."""
    if _REPEALED_HEADING.search(heading) or (body and _REPEALED_TEXT.match(body)):
        return "repealed"
    if _PREAMBLE.match(heading):
        return "preamble"
    if _CONTENTS.match(heading):
        return "table of contents"
    return None


def iter_archive_laws(
    path: Path, config: CorpusConfig | None = None, report: IngestReport | None = None
) -> Iterator[tuple[str, bytes]]:
    """Every Markdown member of a tar archive as (member name, bytes), streamed in archive order.

    Members larger than ``max_file_bytes`` and links are skipped (and reported when a report is given); an
    archive whose members would expand beyond ``max_uncompressed_bytes`` raises CorpusError before that member
    is decompressed, so a tar or gzip bomb stops at the cap.
    """
    config = config or CorpusConfig()
    report = report if report is not None else IngestReport()
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                # offsets count the uncompressed stream: headers, every member (skipped ones are decompressed too)
                if member.offset_data + member.size > config.max_uncompressed_bytes:
                    raise CorpusError(
                        f"{path}: expands to more than {config.max_uncompressed_bytes:,} bytes uncompressed "
                        f"(member {member.name} of {member.size:,} bytes; [corpus] max_uncompressed_bytes); "
                        "refused as a possible tar or decompression bomb"
                    )
                if not member.name.lower().endswith(".md"):
                    continue
                if member.issym() or member.islnk():
                    report.skip(member.name, 0, "link refused")
                elif member.isfile() and member.size > config.max_file_bytes:
                    report.skip(member.name, 0, "file too large")
                elif member.isfile() and (handle := archive.extractfile(member)) is not None:
                    yield member.name, handle.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise CorpusError(f"{path}: not a readable tar archive ({exc})") from exc


def _decode(data: bytes, source: str, report: IngestReport) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.skip(source, data.count(b"\n", 0, exc.start) + 1, "invalid UTF-8")
        return None


def read_law_bytes(data: bytes, source: str, config: CorpusConfig, report: IngestReport) -> Iterator[Document]:
    """The Documents of one law file's raw bytes; a file that is not UTF-8 is skipped and reported."""
    text = _decode(data, source, report)
    if text is not None:
        yield from parse_law(text, source, config, report)


def read_archive(path: Path, config: CorpusConfig, report: IngestReport) -> Iterator[Document]:
    """The Documents of every law in a tar archive, in sorted member order, without extracting to disk.

    A compressed tar cannot seek back cheaply, so the members are read once into memory (about 200 MB for
    the federal archive) and parsed in name order, each released as soon as it is parsed.
    """
    members = dict(iter_archive_laws(path, config, report))
    for name in sorted(members):
        yield from read_law_bytes(members.pop(name), name, config, report)
