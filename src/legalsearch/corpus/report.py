"""The ingest report: what was read and what was refused, filled while the readers run."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from legalsearch.types import SkippedRecord

log = logging.getLogger("legalsearch.corpus")


@dataclass
class IngestReport:
    """Mutable accumulator of one ingest run: counts of what was yielded, and every skipped record."""

    documents: int = 0
    extra_lines: int = 0
    skipped: list[SkippedRecord] = field(default_factory=list)
    #: statute sections whose heading exists but which are not indexed (repealed, empty): (id, law, law title,
    #: section label); citations of them resolve to their id (citation graph). A law without any section (a treaty
    #: published as metadata only) is one row with empty id and label: citable, its articles missing
    withheld: list[tuple[str, str, str, str]] = field(default_factory=list)

    def skip(self, source: str, line: int, reason: str, *, routine: bool = False) -> None:
        """Record a refused record and log it as a warning ``file:line: reason``.

        ``routine`` skips (repealed sections, formulas: thousands in the federal archive) are logged at
        debug level only, so that they do not drown warnings about damaged input.
        """
        self.skipped.append(SkippedRecord(source=source, line=line, reason=reason))
        log.log(logging.DEBUG if routine else logging.WARNING, "%s:%d: %s", source, line, reason)

    def reasons(self) -> dict[str, int]:
        """Number of skipped records per reason, most frequent first."""
        return dict(Counter(s.reason for s in self.skipped).most_common())

    def summary(self) -> str:
        """One human line, e.g. ``read 88,470 documents; skipped 2,101: 2,089 repealed, 12 empty text``."""
        parts = [f"read {self.documents:,} documents"]
        if self.extra_lines:
            parts.append(f"{self.extra_lines:,} extra-text lines")
        head = " and ".join(parts)
        if not self.skipped:
            return f"{head}; skipped none"
        detail = ", ".join(f"{n:,} {reason}" for reason, n in self.reasons().items())
        return f"{head}; skipped {len(self.skipped):,}: {detail}"
