"""The token cache (``cache/tokens/<key>/``): keys, locks, leftovers of killed runs, ``legalsearch gc``, and the
entries' layout (writing an entry, reading its tokens per stage, the phrased training files).

Each entry holds one corpus preprocessed with one preprocessing setup; a run holds ``<key>.lock`` while it
reads or writes the entry, so an entry whose lock can be taken is in nobody's hands.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from legalsearch.config import CorpusConfig, PhrasesConfig, PreprocessConfig
from legalsearch.corpus import IngestReport, read_extra_text
from legalsearch.corpus.gesetze import strip_heading_labels
from legalsearch.keywords import PhraseModel
from legalsearch.locks import FileLock
from legalsearch.model import list_models, read_manifest
from legalsearch.parallel import ordered_map
from legalsearch.snippets import span_line
from legalsearch.text import GROUP_SEP, Preprocessor, split_groups
from legalsearch.types import Document

log = logging.getLogger(__name__)

#: bump when the token cache's layout changes, so old caches are not misread
CACHE_FORMAT = 2
DONE = "COMPLETE"
LOCK_SUFFIX = ".lock"
TMP_MARK = ".tmp-"
MANIFEST_KEY = "token_cache_key"


def cache_key(corpus_hash: str, preprocessor_fingerprint: str) -> str:
    """The entry name for a corpus preprocessed with one preprocessing setup."""
    return hashlib.sha256(f"{CACHE_FORMAT}:{corpus_hash}:{preprocessor_fingerprint}".encode()).hexdigest()[:24]


def entry_lock(tokens_dir: Path, key: str) -> FileLock:
    """The (not yet taken) lock of one cache entry."""
    return FileLock(tokens_dir / f"{key}{LOCK_SUFFIX}", f"token cache entry {tokens_dir / key}")


def mark_used(entry: Path) -> None:
    """Record that a run used the entry now (its COMPLETE marker's mtime), for gc's age rule."""
    try:
        os.utime(entry / DONE)
    except OSError as exc:  # a read-only cache still serves; gc then sees the entry as older than it is
        log.warning("cannot mark %s as used: %s", entry, exc)


def _key_of(name: str) -> str:
    return name.split(".", 1)[0]


def _leftovers(tokens_dir: Path) -> dict[str, list[Path]]:
    """Temporary folders and files of unfinished runs, by the key whose lock their owner held."""
    found: dict[str, list[Path]] = {}
    if not tokens_dir.is_dir():
        return found
    for entry in tokens_dir.iterdir():
        if TMP_MARK in entry.name:
            found.setdefault(_key_of(entry.name), []).append(entry)
        elif entry.is_dir() and not entry.is_symlink():
            inner = [p for p in entry.iterdir() if TMP_MARK in p.name]
            if inner:
                found.setdefault(entry.name, []).extend(inner)
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean_leftovers(tokens_dir: Path, dry_run: bool = False) -> list[Path]:
    """Remove what killed runs left in the cache (``<key>.tmp-<pid>/``, ``<key>/train-*.tmp-*``).

    Only leftovers of keys whose lock is free are touched: a live run holds its key's lock, a dead one does not.
    """
    removed: list[Path] = []
    for key, paths in sorted(_leftovers(tokens_dir).items()):
        lock = entry_lock(tokens_dir, key)
        if not lock.try_acquire():
            log.info("token cache entry %s is in use; its temporary files are left alone", key)
            continue
        with lock:
            for path in paths:
                if not dry_run:
                    _remove(path)
                    log.warning("removed %s, left by a training run that did not finish", path)
                removed.append(path)
    return removed


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def keys_in_use(models_dir: Path) -> set[str]:
    """The cache keys of the kept models (recorded in their manifests at training)."""
    keys = set()
    for info in list_models(models_dir):
        key = read_manifest(info.path).get(MANIFEST_KEY)
        if isinstance(key, str):
            keys.add(key)
        else:
            log.warning("model %s records no token cache key (trained before gc existed)", info.version)
    return keys


@dataclass
class GcReport:
    """What ``gc`` removed (or, in a dry run, would remove) and what it kept, and why."""

    removed: list[Path] = field(default_factory=list)
    removed_bytes: int = 0
    leftovers: list[Path] = field(default_factory=list)
    kept_in_use: int = 0
    kept_recent: int = 0
    kept_locked: int = 0


def _entries(tokens_dir: Path) -> Iterable[Path]:
    if not tokens_dir.is_dir():
        return []
    return sorted(p for p in tokens_dir.iterdir()
                  if p.is_dir() and not p.is_symlink() and "." not in p.name)


def gc(models_dir: Path, cache_dir: Path, older_than_days: float, dry_run: bool = False) -> GcReport:
    """Remove the token cache entries no kept model uses and no run used in ``older_than_days`` days."""
    tokens_dir = Path(cache_dir) / "tokens"
    report = GcReport(leftovers=clean_leftovers(tokens_dir, dry_run))
    in_use = keys_in_use(models_dir)
    cutoff = time.time() - older_than_days * 86400
    for entry in _entries(tokens_dir):
        if entry.name in in_use:
            report.kept_in_use += 1
            continue
        marker = entry / DONE
        if (marker.stat() if marker.exists() else entry.stat()).st_mtime > cutoff:
            report.kept_recent += 1
            continue
        lock = entry_lock(tokens_dir, entry.name)
        if not lock.try_acquire():
            report.kept_locked += 1
            continue
        with lock:
            size = _size(entry)
            if not dry_run:
                shutil.rmtree(entry)
                # deleted while held: a run that opened the old file notices the swap (see FileLock) and retries
                lock.path.unlink(missing_ok=True)
            report.removed.append(entry)
            report.removed_bytes += size
    return report


# ---------------------------------------------------------------------------------------------------- entry layout
# An entry holds the corpus preprocessed once: TOKENS_DOCS has one line per document with its three fields
# (lexical_fields) separated by FIELD_SEP, each a space-separated list of grouped tokens (text.GROUP_SEP joins a
# word with its compound parts); TOKENS_EXTRA one line per extra-text line that produced tokens; DONE the token
# count. Training files (phrased tokens for keywords and word2vec) are written beside them, one per phrase setup.

FIELD_SEP = "\t"
TOKENS_DOCS = "docs.tokens"
TOKENS_EXTRA = "extra.tokens"


def lexical_fields(doc: Document) -> tuple[str, str, str]:
    """The three texts preprocessed per document: title (with the section citation), heading path, body.

    The citation ("§ 573 BGB") goes with the title so that a question citing a section finds it.
    """
    heading = doc.metadata.get("heading_path")
    section, law = doc.metadata.get("section"), doc.metadata.get("law")
    cite = f"{section} {law} " if isinstance(section, str) and isinstance(law, str) else ""
    return cite + doc.title, strip_heading_labels(heading) if isinstance(heading, str) else "", doc.text


def spans_file(entry: Path, head: int) -> Path:
    """The entry's snippet spans of each document's first ``head`` characters (``snippets.span_line``), one
    line per document; written beside the tokens when ``fill`` is asked for them."""
    return entry / f"snippets-{head}.spans"


def fill(
    entry: Path,
    documents: Sequence[Document],
    extra_paths: Sequence[Path],
    preprocessor: Preprocessor,
    corpus_config: CorpusConfig,
    progress: bool = False,
    snippet_head: int = 0,
    lines_of: LinesOf | None = None,
) -> int:
    """Make sure ``entry`` holds the corpus's tokens (preprocessing it unless a complete entry is there); returns
    the token count. Written into a folder of this run's own and renamed into place when complete.

    ``snippet_head`` > 0: the snippet spans of each document's first that many characters go to ``spans_file``
    too, found while the text's words are fresh in the tokenizer's caches (a complete entry without them is
    used as it is: the snippet stage then tokenizes the texts itself).

    ``lines_of`` preprocesses the batches elsewhere (``scale.preprocess.ray_lines``: Ray Data), in order."""
    if (entry / DONE).exists():
        log.info("preprocessing: using cached tokens in %s", entry)
        mark_used(entry)
        return int((entry / DONE).read_text())
    tmp = entry.with_name(entry.name + f"{TMP_MARK}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tokens = _write_tokens(tmp, _batches(documents, extra_paths, corpus_config, preprocessor.config.batch_size),
                               preprocessor, len(documents), progress, snippet_head, lines_of)
        (tmp / DONE).write_text(str(tokens))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(tmp, entry)
    return tokens


#: a batch of texts to preprocess: ("docs", three texts per document, see ``lexical_fields``) or ("extra", lines)
_Batch = tuple[str, list[str]]


@dataclass(frozen=True)
class _Lines:
    """A preprocessed batch as the lines it adds to its file: what a worker process sends back (one string)."""

    kind: str
    text: str
    #: words (a word with its compound parts counts once)
    tokens: int
    documents: int
    #: the documents' snippet spans, one ``snippets.span_line`` per document (empty when not asked for)
    spans: str = ""


#: where ``fill(lines_of=...)`` preprocesses elsewhere: (batches, config, snippet_head) -> their lines, in order
LinesOf = Callable[[Iterator[_Batch], PreprocessConfig, int], Iterator[_Lines]]


def _batches(documents: Sequence[Document], extra_paths: Sequence[Path], corpus_config: CorpusConfig,
             size: int) -> Iterator[_Batch]:
    per = max(1, size // 3)
    for lo in range(0, len(documents), per):
        yield "docs", [text for doc in documents[lo:lo + per] for text in lexical_fields(doc)]
    lines = read_extra_text(extra_paths, IngestReport(), corpus_config)
    while chunk := list(islice(lines, size)):
        yield "extra", chunk


def _lines(preprocessor: Preprocessor, batch: _Batch, snippet_head: int = 0) -> _Lines:
    kind, texts = batch
    groups = preprocessor.batch(texts, grouped=True)
    if kind == "docs":
        lines = [FIELD_SEP.join(" ".join(part) for part in groups[i:i + 3]) + "\n" for i in range(0, len(groups), 3)]
        spans = ""
        if snippet_head > 0:
            # the bodies were just tokenized: spaCy's chunk cache answers their openings again at little cost
            heads = (texts[i][:snippet_head] for i in range(2, len(texts), 3))
            spans = "".join(span_line(found) + "\n" for found in preprocessor.pipe_spans(heads))
        return _Lines(kind, "".join(lines), sum(map(len, groups)), len(lines), spans)
    return _Lines(kind, "".join(" ".join(g) + "\n" for g in groups if g), sum(map(len, groups)), 0)


_worker: tuple[Preprocessor, int] | None = None


def _init_worker(config: PreprocessConfig, snippet_head: int = 0) -> None:
    global _worker
    _worker = (Preprocessor(replace(config, n_process=1)), snippet_head)


def _lines_remote(batch: _Batch) -> _Lines:
    assert _worker is not None  # set by the pool initializer
    return _lines(_worker[0], batch, _worker[1])


def _same(lines: _Lines) -> _Lines:
    return lines


def _write_tokens(folder: Path, batches: Iterator[_Batch], preprocessor: Preprocessor, n_docs: int,
                  progress: bool, snippet_head: int = 0, lines_of: LinesOf | None = None) -> int:
    """Preprocess the batches (with ``n_process`` > 1: in worker processes beside this one, which send back the
    finished lines, so that this process only writes them) into the entry's files, in order."""
    config = preprocessor.config
    if lines_of is not None:
        done: Iterator[_Lines] = lines_of(batches, config, snippet_head)
    elif config.n_process > 1:
        done = ordered_map(batches, functools.partial(_lines, preprocessor, snippet_head=snippet_head),
                           _lines_remote, _same, config.n_process, _init_worker, (config, snippet_head))
    else:
        done = (_lines(preprocessor, batch, snippet_head) for batch in batches)
    tokens = 0
    bar = tqdm(total=n_docs, desc="preprocess", unit="doc", disable=not progress)
    with ExitStack() as files:
        docs = files.enter_context((folder / TOKENS_DOCS).open("w", encoding="utf-8"))
        extra = files.enter_context((folder / TOKENS_EXTRA).open("w", encoding="utf-8"))
        spans = (files.enter_context(spans_file(folder, snippet_head).open("w", encoding="utf-8"))
                 if snippet_head > 0 else None)
        for lines in done:
            (docs if lines.kind == "docs" else extra).write(lines.text)
            if spans is not None and lines.kind == "docs":
                spans.write(lines.spans)
            tokens += lines.tokens
            bar.update(lines.documents)
    bar.close()
    return tokens


#: a group's compound parts and variants, after its first token (see ``text.split_groups``)
_GROUP_TAIL = re.compile(re.escape(GROUP_SEP) + r"\S*")


def words_of(field: str) -> list[str]:
    """``split_groups(field.split())[0]``: each group's first token, by one regex pass instead of a loop."""
    if f" {GROUP_SEP}" in field or field.startswith(GROUP_SEP):
        return split_groups(field.split())[0]  # a group starting with the separator gives an empty word
    return _GROUP_TAIL.sub("", field).split()


def every_token_of(field: str) -> list[str]:
    """``split_groups(field.split())[1]``: every token of every group, by one replace instead of a loop."""
    sep = GROUP_SEP
    if f" {sep}" in field or f"{sep} " in field or sep * 2 in field or field.startswith(sep) or field.endswith(sep):
        return split_groups(field.split())[1]  # empty parts, which the replace would drop
    return field.replace(sep, " ").split()


def _fields_of(line: str, every: bool = False) -> tuple[list[str], list[str], list[str]]:
    """The three token fields of a document line: the words themselves, or (every=True) with compound parts."""
    title, heading, text = line.rstrip("\n").split(FIELD_SEP)
    pick = every_token_of if every else words_of
    return pick(title), pick(heading), pick(text)


def _extra_words(entry: Path) -> Iterator[list[str]]:
    with (entry / TOKENS_EXTRA).open(encoding="utf-8") as fh:
        for line in fh:
            yield words_of(line.rstrip("\n"))


def phrase_sentences(entry: Path) -> Iterator[list[str]]:
    """What phrases are learnt from: each document field's words, then each extra-text line's."""
    with (entry / TOKENS_DOCS).open(encoding="utf-8") as fh:
        for line in fh:
            yield from _fields_of(line)
    yield from _extra_words(entry)


def lexical_tokens(entry: Path, title_weight: int, heading_path: bool) -> Iterator[list[str]]:
    """Each document's tokens for BM25, compound parts included: the title ``title_weight`` times, the heading
    path (if ``heading_path``), the body."""
    with (entry / TOKENS_DOCS).open(encoding="utf-8") as fh:
        for line in fh:
            title, heading, text = _fields_of(line, every=True)
            yield title * title_weight + (heading if heading_path else []) + text


def training_file(entry: Path, phrases_config: PhrasesConfig) -> Path:
    """The entry's phrased training file for one phrase setup (see ``write_training_text``)."""
    phrase_key = hashlib.sha256(json.dumps(asdict(phrases_config), sort_keys=True).encode()).hexdigest()[:12]
    return entry / f"train-{phrase_key}.txt"


def write_training_text(entry: Path, phrases: PhraseModel, out_path: Path) -> int:
    """Write phrased tokens: first one line per document (all fields), then the extra text; returns words.

    Written to a file of this run's own and renamed into place: a reader of ``out_path`` (word2vec reads it
    once per epoch) always sees one complete file, never one that another run is rewriting.
    """
    tmp = out_path.with_name(f"{out_path.name}{TMP_MARK}{os.getpid()}")
    try:
        words = _write_phrased(entry, phrases, tmp)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return words


def _write_phrased(entry: Path, phrases: PhraseModel, out_path: Path) -> int:
    words = 0
    with out_path.open("w", encoding="utf-8") as out, (entry / TOKENS_DOCS).open(encoding="utf-8") as fh:
        for line in fh:
            toks: list[str] = []
            for part in _fields_of(line):
                toks.extend(phrases.apply(part))
            words += len(toks)
            out.write(" ".join(toks) + "\n")
        for toks in _extra_words(entry):
            phrased = phrases.apply(toks)
            words += len(phrased)
            out.write(" ".join(phrased) + "\n")
    return words


def snippet_spans(entry: Path, head: int) -> Iterator[str] | None:
    """The lines of the entry's ``spans_file`` for ``head``, without line ends; None when it has none."""
    path = spans_file(entry, head)
    if not path.is_file():
        return None
    return _span_lines(path)


def _span_lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", newline="\n") as fh:
        for line in fh:
            yield line[:-1]


def first_lines(path: Path, n: int) -> Iterator[list[str]]:
    """The tokens of a training file's first ``n`` lines (its documents)."""
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            yield line.split()
