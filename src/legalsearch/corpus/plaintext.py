"""Reader of plain extra text for word2vec: one sentence or paragraph per line, never indexed."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

from legalsearch.corpus.jsonl import open_lines
from legalsearch.corpus.report import IngestReport
from legalsearch.errors import CorpusError

TEXT_SUFFIXES = (".txt", ".txt.gz")


def is_text(path: Path) -> bool:
    """Whether a path names a plain text file (optionally gzipped) by its suffix."""
    return path.name.lower().endswith(TEXT_SUFFIXES)


def read_text_lines(path: Path, source: str, report: IngestReport) -> Iterator[str]:
    """The non-empty stripped lines of one text file; lines that are not UTF-8 are reported and skipped."""
    try:
        with open_lines(path) as handle:
            for number, raw in enumerate(handle, start=1):
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
