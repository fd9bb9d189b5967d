"""Reader of plain extra text for word2vec: one sentence or paragraph per line, never indexed."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

from legalsearch.config import CorpusConfig
from legalsearch.corpus.jsonl import bounded_lines
from legalsearch.corpus.report import IngestReport
from legalsearch.errors import CorpusError

TEXT_SUFFIXES = (".txt", ".txt.gz")


def is_text(path: Path) -> bool:
    """Whether a path names a plain text file (optionally gzipped) by its suffix."""
    return path.name.lower().endswith(TEXT_SUFFIXES)


def read_text_lines(
    path: Path, source: str, report: IngestReport, config: CorpusConfig | None = None
) -> Iterator[str]:
    """The non-empty stripped lines of one text file; lines that are not UTF-8 or too long are reported and
    skipped; a gzipped file expanding beyond the config's cap raises CorpusError."""
    try:
        for number, raw in enumerate(bounded_lines(path, source, config or CorpusConfig()), start=1):
            if raw is None:
                report.skip(source, number, "line too long")
                continue
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                report.skip(source, number, "invalid UTF-8")
                continue
            if number == 1:
                line = line.lstrip("\ufeff")
            if line:
                yield line
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusError(f"{source}: cannot be read ({exc})") from exc
