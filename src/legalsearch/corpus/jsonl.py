"""Reader of JSON Lines documents: one object per line with ``id`` and ``text``, other scalars as metadata."""

from __future__ import annotations

import gzip
import json
import logging
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from legalsearch.config import CorpusConfig
from legalsearch.corpus.report import IngestReport
from legalsearch.errors import CorpusError
from legalsearch.types import Document, Scalar

log = logging.getLogger("legalsearch.corpus")

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
#: fields that fill the Document itself; every other scalar field becomes metadata
_OWN_FIELDS = frozenset({"id", "text", "title", "type"})


def is_jsonl(path: Path) -> bool:
    """Whether a path names a JSON Lines file (optionally gzipped) by its suffix."""
    return path.name.lower().endswith(JSONL_SUFFIXES)


def open_lines(path: Path) -> IO[bytes]:
    """The file as a binary stream, transparently gunzipped when its name ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


#: a line too long to keep is skipped in pieces of this size
_SKIP_CHUNK = 1 << 20


def bounded_lines(path: Path, source: str, config: CorpusConfig) -> Iterator[bytes | None]:
    """The raw lines of a (possibly gzipped) file, each read at most ``max_line_bytes`` at a time.

    A longer line is passed over in chunks and yielded as None, so that one huge line never sits in memory.
    A gzipped file that expands beyond ``max_uncompressed_bytes`` raises CorpusError (a decompression bomb).
    """
    limit = config.max_line_bytes
    total_cap = config.max_uncompressed_bytes if path.name.lower().endswith(".gz") else None
    total = 0
    with open_lines(path) as handle:
        while raw := handle.readline(limit + 1):
            total += len(raw)
            too_long = len(raw) > limit and not raw.endswith(b"\n")
            while too_long and raw and not raw.endswith(b"\n"):
                raw = handle.readline(_SKIP_CHUNK)
                total += len(raw)
                _check_total(source, total, total_cap)
            _check_total(source, total, total_cap)
            yield None if too_long else raw


def _check_total(source: str, total: int, cap: int | None) -> None:
    if cap is not None and total > cap:
        raise CorpusError(
            f"{source}: expands to more than {cap:,} bytes uncompressed ([corpus] max_uncompressed_bytes); "
            "refused as a possible decompression bomb"
        )


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # NaN and infinity have no JSON form
    return value is None or isinstance(value, str | int | bool)


def _document(record: dict[str, Any], source: str, line: int, config: CorpusConfig) -> Document | str:
    """The record as a Document, or the reason it is refused."""
    doc_id = record.get("id")
    if doc_id is None or (isinstance(doc_id, str) and not doc_id.strip()):
        return "missing id"
    if not isinstance(doc_id, str):
        return "invalid id"
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        return "invalid text"
    text = (text or "").strip()
    if not text or len(text) < config.min_text_chars:
        return "empty text"

    where = f"{source}:{line}"
    title, doc_type = record.get("title"), record.get("type")
    if title is not None and not isinstance(title, str):
        log.warning("%s: field 'title' is not a string, ignored", where)
        title = None
    if doc_type is not None and not (isinstance(doc_type, str) and doc_type.strip()):
        log.warning("%s: field 'type' is not a non-empty string, ignored", where)
        doc_type = None
    metadata: dict[str, Scalar] = {}
    for key, value in record.items():
        if key in _OWN_FIELDS:
            continue
        if _is_scalar(value):
            metadata[key] = value
        else:
            log.warning("%s: field %r is not a scalar (string, number, boolean, null), ignored", where, key)
    return Document(
        id=doc_id.strip(),
        text=text,
        title=(title or "").strip(),
        type=(doc_type or "document").strip(),
        metadata=metadata,
        source=where,
    )


def parse_json_line(raw: bytes | None, number: int) -> dict[str, Any] | str | None:
    """One JSON Lines line as an object, the reason it is refused, or None for a blank line (a BOM on line 1
    is allowed); shared by every JSON Lines reader (documents, feedback)."""
    if raw is None:
        return "line too long"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid UTF-8"
    line = line.lstrip("\ufeff").strip() if number == 1 else line.strip()
    if not line:
        return None
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return "broken JSON"
    return record if isinstance(record, dict) else "not an object"


def _record(raw: bytes | None, number: int, source: str, config: CorpusConfig) -> Document | str | None:
    """One line as a Document, the reason it is refused, or None for a blank line."""
    record = parse_json_line(raw, number)
    if not isinstance(record, dict):
        return record
    return _document(record, source, number, config)


def read_jsonl(path: Path, source: str, config: CorpusConfig, report: IngestReport) -> Iterator[Document]:
    """The Documents of one JSON Lines file; bad records are reported with file and line, reading goes on."""
    try:
        for number, raw in enumerate(bounded_lines(path, source, config), start=1):
            result = _record(raw, number, source, config)
            if isinstance(result, str):
                report.skip(source, number, result)
            elif result is not None:
                yield result
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusError(f"{source}: cannot be read ({exc})") from exc
