"""Corpus ingestion: law Markdown (archive, folder, file), JSON Lines documents, plain extra text.

``read_documents`` turns corpus paths into Documents, ``read_extra_text`` gives word2vec-only text lines;
both fill an ``IngestReport`` with every record they refuse. The rules are in ``docs/corpus-formats.md``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from legalsearch.config import CorpusConfig
from legalsearch.corpus.gesetze import is_archive, read_archive, read_law_bytes
from legalsearch.corpus.jsonl import is_jsonl, read_jsonl
from legalsearch.corpus.plaintext import is_text, read_text_lines
from legalsearch.corpus.report import IngestReport
from legalsearch.errors import CorpusError
from legalsearch.types import Document

__all__ = ["CorpusFormat", "IngestReport", "detect_format", "read_documents", "read_extra_text"]

log = logging.getLogger("legalsearch.corpus")

CorpusFormat = Literal["gesetze-tar", "gesetze-dir", "gesetze-md", "jsonl", "text"]


def _is_law_markdown(path: Path) -> bool:
    return path.name.lower().endswith(".md")


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """Every regular file below a folder and every symbolic link there, hidden ones left out, each sorted by
    relative path so that order is stable. Links are never followed: one could lead anywhere on the machine."""
    files: list[Path] = []
    links: list[Path] = []
    for folder, dirs, names in os.walk(root):  # os.walk does not descend into linked folders
        here = Path(folder)
        visible = [d for d in dirs if not d.startswith(".")]
        dirs[:] = [d for d in visible if not (here / d).is_symlink()]
        links.extend(here / d for d in visible if (here / d).is_symlink())
        for name in names:
            path = here / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                links.append(path)
            elif path.is_file():
                files.append(path)
    order = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    return sorted(files, key=order), sorted(links, key=order)


def _files(root: Path) -> list[Path]:
    """Every regular file below a folder (no links, no hidden files), sorted by relative path."""
    return _walk(root)[0]


def _refuse_links(root: Path, report: IngestReport) -> None:
    for link in _walk(root)[1]:
        report.skip(_folder_source(root, link), 0, "symlink refused")


def _read_capped(path: Path, source: str, config: CorpusConfig, report: IngestReport) -> bytes | None:
    """A law file's bytes, or None (reported) when it is larger than ``max_file_bytes``."""
    try:
        if path.stat().st_size > config.max_file_bytes:
            report.skip(source, 0, "file too large")
            return None
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{source}: cannot be read ({exc})") from exc


def _folder_source(root: Path, file: Path) -> str:
    return f"{root.resolve().name}/{file.relative_to(root).as_posix()}"


def detect_format(path: str | Path) -> CorpusFormat:
    """The corpus format of a path: ``gesetze-tar``, ``gesetze-dir`` (a folder read recursively),
    ``gesetze-md`` (one law file), ``jsonl`` or ``text``; CorpusError when missing or unknown."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"corpus path not found: {p}")
    if p.is_dir():
        files = _files(p)
        if any(_is_law_markdown(f) or is_jsonl(f) for f in files):
            return "gesetze-dir"
        if any(is_text(f) for f in files):
            return "text"
        raise CorpusError(f"{p}: folder holds no law Markdown (.md), JSON Lines (.jsonl[.gz]) or text (.txt[.gz])")
    if is_archive(p):
        return "gesetze-tar"
    if _is_law_markdown(p):
        return "gesetze-md"
    if is_jsonl(p):
        return "jsonl"
    if is_text(p):
        return "text"
    raise CorpusError(
        f"{p}: unknown corpus format; expected .tar.gz/.tgz/.tar, .md, .jsonl[.gz], .txt[.gz] or a folder"
    )


def _folder_documents(root: Path, config: CorpusConfig, report: IngestReport) -> Iterator[Document]:
    # sources are named from the folder's own name down, so a folder unpacked from an archive reports
    # the same "gesetze/b/bgb/index.md:12652" as the archive
    _refuse_links(root, report)
    for file in _files(root):
        source = _folder_source(root, file)
        if _is_law_markdown(file):
            data = _read_capped(file, source, config, report)
            if data is not None:
                yield from read_law_bytes(data, source, config, report)
        elif is_jsonl(file):
            yield from read_jsonl(file, source, config, report)
        else:
            log.debug("%s: not a corpus file, ignored", source)


def _documents(path: Path, fmt: CorpusFormat, config: CorpusConfig, report: IngestReport) -> Iterator[Document]:
    if fmt == "gesetze-tar":
        yield from read_archive(path, config, report)
    elif fmt == "gesetze-dir":
        yield from _folder_documents(path, config, report)
    elif fmt == "gesetze-md":
        data = _read_capped(path, str(path), config, report)
        if data is not None:
            yield from read_law_bytes(data, str(path), config, report)
    elif fmt == "jsonl":
        yield from read_jsonl(path, str(path), config, report)
    else:
        raise CorpusError(f"{path}: plain text is extra text for word2vec, not documents; pass it as extra text")


def read_documents(paths: Sequence[str | Path], config: CorpusConfig, report: IngestReport) -> Iterator[Document]:
    """Every Document of the given corpus paths, in a stable order; ids are unique across all of them.

    A later document with an id already read is skipped and reported. A path that is missing, of unknown
    format or without a single usable document raises CorpusError.
    """
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        fmt = detect_format(path)
        skipped_before = len(report.skipped)
        kept = duplicates = 0
        for doc in _documents(path, fmt, config, report):
            if doc.id in seen:
                file, _, line = doc.source.rpartition(":")
                report.skip(file, int(line) if line.isdigit() else 0, "duplicate id")
                duplicates += 1
                continue
            seen.add(doc.id)
            kept += 1
            report.documents += 1
            yield doc
        if not kept:
            skipped = report.skipped[skipped_before:]
            why = (
                f"all {duplicates:,} documents repeat ids read before"
                if duplicates
                else (f"{len(skipped):,} records skipped" if skipped else "no law section or JSON record found")
            )
            raise CorpusError(f"{path}: no usable document ({why})")


def read_extra_text(
    paths: Sequence[str | Path], report: IngestReport, config: CorpusConfig | None = None
) -> Iterator[str]:
    """The non-empty stripped lines of ``.txt`` / ``.txt.gz`` files or folders of them (word2vec only).

    Links inside folders are refused and reported; lines and gzip expansion are capped by ``config``."""
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CorpusError(f"extra text path not found: {path}")
        if path.is_dir():
            _refuse_links(path, report)
            files = [(f, _folder_source(path, f)) for f in _files(path) if is_text(f)]
            if not files:
                raise CorpusError(f"{path}: folder holds no .txt or .txt.gz file")
        elif is_text(path):
            files = [(path, str(path))]
        else:
            raise CorpusError(f"{path}: extra text must be .txt, .txt.gz or a folder of them")
        for file, source in files:
            for line in read_text_lines(file, source, report, config):
                report.extra_lines += 1
                yield line
