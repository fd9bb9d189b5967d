"""The training pipeline: the only module that chains the stages.

corpus -> documents -> tokens (cached) -> phrases -> keywords (TF-IDF) -> word2vec -> document vectors
-> FAISS index + BM25 index -> model folder (written aside, renamed into place, then ``current`` moves).

A run holds the models folder's lock and its token-cache entry's lock from start to end (see ``locks.py``), so
two runs never share half-written files; ``current`` moves only if it still names what it named at the start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import resource
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from legalsearch import docstore
from legalsearch.citegraph import build_graph
from legalsearch.config import CorpusConfig, TrainConfig
from legalsearch.corpus import IngestReport, read_documents, read_extra_text
from legalsearch.docvectors import document_vectors
from legalsearch.embeddings import save_vectors, thesaurus_seeds, train_seed_variants, train_word2vec
from legalsearch.errors import CorpusError, StorageError
from legalsearch.expansion import build_expansions, save_expansions
from legalsearch.index import build_index, choose_index_type, load_index, write_index
from legalsearch.keywords import PhraseModel, extract_keywords, iter_token_lines, learn_phrases
from legalsearch.lexical import build_lexical_index, save_lexical_index
from legalsearch.locks import FileLock, describe_os_error
from legalsearch.model import TRAIN_LOCK, ModelWriter, compare_and_set_current, current_version, remove_leftovers
from legalsearch.neighbours import precompute_neighbours
from legalsearch.snippets import index_snippets
from legalsearch.suggest import SUGGEST_DIR, build_suggestions
from legalsearch.text import Preprocessor, split_groups
from legalsearch.tokencache import CACHE_FORMAT as CACHE_FORMAT  # re-exported: bench/training.py reads it here
from legalsearch.tokencache import DONE, MANIFEST_KEY, cache_key, clean_leftovers, entry_lock, mark_used
from legalsearch.types import Document

log = logging.getLogger(__name__)

FIELD_SEP = "\t"
TOKENS_DOCS = "docs.tokens"
TOKENS_EXTRA = "extra.tokens"
PHRASES_FILE = "phrases.tsv"
VOCABULARY_FILE = "vocabulary.tsv"
DOCVECTORS_FILE = "docvectors.npy"
LEXICAL_DIR = "lexical"
THESAURUS_DIR = "thesaurus"


@dataclass(frozen=True)
class StageStats:
    """Time, throughput and peak memory of one stage."""

    name: str
    seconds: float
    items: int
    unit: str
    peak_rss_mb: float

    @property
    def per_second(self) -> float:
        """Items per second."""
        return self.items / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    version: str
    path: Path
    manifest: dict[str, Any]
    stages: tuple[StageStats, ...]
    report: IngestReport
    #: whether ``current`` now names this version
    made_current: bool = False
    #: why ``current`` was not moved although the run was asked to move it; empty otherwise
    current_note: str = ""


def io_failure(exc: OSError, doing: str, folders: Sequence[Path]) -> StorageError:
    """A one-line StorageError for an I/O failure; says so when a folder the run writes to has no space left
    (numpy and faiss report a short write without the system's reason)."""
    message = describe_os_error(exc, doing)
    for folder in folders:
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        if free < 1 << 20:
            message += f" ({free:,} bytes free in {folder}: the disk is full)"
            break
    return StorageError(message)


@dataclass
class _Timer:
    stages: list[StageStats] = field(default_factory=list)
    #: folders the run writes to, named in the error when one of them is full
    folders: tuple[Path, ...] = ()

    @contextmanager
    def stage(self, name: str, unit: str) -> Iterator[list[int]]:
        counter = [0]
        start = time.perf_counter()
        log.info("stage %s: started", name)
        try:
            yield counter
        except OSError as exc:
            raise io_failure(exc, f"training stopped in stage {name} by an I/O error on", self.folders) from exc
        stats = StageStats(name, time.perf_counter() - start, counter[0], unit, peak_rss_mb())
        self.stages.append(stats)
        log.info("stage %s: %.1f s, %d %s (%.0f/s), peak %.0f MB", name, stats.seconds, stats.items, unit,
                 stats.per_second, stats.peak_rss_mb)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and finished children) so far, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def _hash_documents(documents: Sequence[Document]) -> str:
    digest = hashlib.sha256()
    for doc in documents:
        record = [doc.id, doc.title, doc.type, doc.text, sorted(doc.metadata.items())]
        digest.update(json.dumps(record, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def corpus_hash(documents: Sequence[Document], extra_lines_digest: str) -> str:
    """Hash of everything the model is trained on: every document field and the extra text."""
    return hashlib.sha256(f"{_hash_documents(documents)}:{extra_lines_digest}".encode()).hexdigest()


def _hash_extra(paths: Sequence[Path], report: IngestReport, config: CorpusConfig) -> tuple[str, int]:
    # Hashing the lines we would read (not the files) makes the key independent of compression and paths.
    digest = hashlib.sha256()
    count = 0
    for line in read_extra_text(paths, report, config):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
        count += 1
    return digest.hexdigest(), count


def lexical_fields(doc: Document) -> tuple[str, str, str]:
    """The three texts preprocessed per document: title (with the section citation), heading path, body.

    The citation ("§ 573 BGB") goes with the title so that a question citing a section finds it.
    """
    heading = doc.metadata.get("heading_path")
    section, law = doc.metadata.get("section"), doc.metadata.get("law")
    cite = f"{section} {law} " if isinstance(section, str) and isinstance(law, str) else ""
    return cite + doc.title, strip_heading_labels(heading) if isinstance(heading, str) else "", doc.text


_HEADING_LABEL = re.compile(
    r"\b(?:(?:Erst|Zweit|Dritt|Viert|Fünft|Sechst|Siebt|Siebent|Acht|Neunt|Zehnt|Elft|Zwölft)er\s+)?"
    r"(?:Buch|Teil|Abschnitt|Unterabschnitt|Titel|Untertitel|Kapitel|Unterkapitel|Abteilung|Unterabteilung)"
    r"(?:\s+[0-9IVXLC]+[a-z]?\b)?\s*[-–:.]?\s*"
)


def strip_heading_labels(heading_path: str) -> str:
    """The heading path without its structural labels ("Buch 2 -", "Untertitel 1 -", "Zweiter Abschnitt"):
    they are in every section's path and would only make phrases such as "pachtvertrag_untertitel"."""
    return _HEADING_LABEL.sub(" ", heading_path.replace(" > ", ". "))


def _fields_of(line: str, every: bool = False) -> tuple[list[str], list[str], list[str]]:
    """The three token fields of a cache line: the words themselves, or (every=True) with compound parts."""
    title, heading, text = line.rstrip("\n").split(FIELD_SEP)
    pick = 1 if every else 0
    return (split_groups(title.split())[pick], split_groups(heading.split())[pick],
            split_groups(text.split())[pick])


def _preprocess_cached(
    documents: Sequence[Document],
    extra_paths: Sequence[Path],
    preprocessor: Preprocessor,
    folder: Path,
    progress: bool,
    counter: list[int],
    corpus_config: CorpusConfig,
) -> None:
    if (folder / DONE).exists():
        log.info("preprocessing: using cached tokens in %s", folder)
        counter[0] = int((folder / DONE).read_text())
        mark_used(folder)
        return
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        counter[0] = _preprocess_into(tmp, documents, extra_paths, preprocessor, progress, corpus_config)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _preprocess_into(
    tmp: Path,
    documents: Sequence[Document],
    extra_paths: Sequence[Path],
    preprocessor: Preprocessor,
    progress: bool,
    corpus_config: CorpusConfig,
) -> int:

    def texts() -> Iterator[str]:
        for doc in documents:
            yield from lexical_fields(doc)

    tokens = 0
    with (tmp / TOKENS_DOCS).open("w", encoding="utf-8") as out:
        stream = preprocessor.pipe_grouped(texts())
        bar = tqdm(total=len(documents), desc="preprocess documents", unit="doc", disable=not progress)
        for _ in documents:
            parts = [next(stream), next(stream), next(stream)]
            tokens += sum(len(p) for p in parts)  # words, not counting compound parts
            out.write(FIELD_SEP.join(" ".join(p) for p in parts) + "\n")
            bar.update()
        bar.close()
    with (tmp / TOKENS_EXTRA).open("w", encoding="utf-8") as out:
        bar = tqdm(desc="preprocess extra text", unit="line", disable=not progress or not extra_paths)
        for toks in preprocessor.pipe_grouped(read_extra_text(extra_paths, IngestReport(), corpus_config)):
            tokens += len(toks)
            if toks:
                out.write(" ".join(toks) + "\n")
            bar.update()
        bar.close()
    (tmp / DONE).write_text(str(tokens))
    return tokens


def _extra_words(token_dir: Path) -> Iterator[list[str]]:
    for groups in iter_token_lines(token_dir / TOKENS_EXTRA):
        yield split_groups(groups)[0]


def _phrase_sentences(token_dir: Path) -> Iterator[list[str]]:
    for line in (token_dir / TOKENS_DOCS).open(encoding="utf-8"):
        yield from _fields_of(line)
    yield from _extra_words(token_dir)


def _write_training_text(token_dir: Path, phrases: PhraseModel, out_path: Path) -> int:
    """Write phrased tokens: first one line per document (all fields), then the extra text; returns words.

    Written to a file of this run's own and renamed into place: a reader of ``out_path`` (word2vec reads it
    once per epoch) always sees one complete file, never one that another run is rewriting.
    """
    tmp = out_path.with_name(f"{out_path.name}.tmp-{os.getpid()}")
    try:
        words = _write_phrased(token_dir, phrases, tmp)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return words


def _write_phrased(token_dir: Path, phrases: PhraseModel, out_path: Path) -> int:
    words = 0
    with out_path.open("w", encoding="utf-8") as out:
        for line in (token_dir / TOKENS_DOCS).open(encoding="utf-8"):
            toks: list[str] = []
            for part in _fields_of(line):
                toks.extend(phrases.apply(part))
            words += len(toks)
            out.write(" ".join(toks) + "\n")
        for toks in _extra_words(token_dir):
            phrased = phrases.apply(toks)
            words += len(phrased)
            out.write(" ".join(phrased) + "\n")
    return words


def _lexical_tokens(token_dir: Path, title_weight: int, heading_path: bool) -> Iterator[list[str]]:
    for line in (token_dir / TOKENS_DOCS).open(encoding="utf-8"):
        title, heading, text = _fields_of(line, every=True)
        yield title * title_weight + (heading if heading_path else []) + text


def _first_lines(path: Path, n: int) -> Iterator[list[str]]:
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            yield line.split()


def train(
    corpus: Sequence[str | Path],
    config: TrainConfig,
    models_dir: Path,
    extra_text: Sequence[str | Path] = (),
    cache_dir: Path | None = None,
    make_current: bool = True,
    progress: bool = True,
    on_stage: Callable[[StageStats], None] | None = None,
    lock_timeout_s: float = 0.0,
) -> TrainResult:
    """Train a model from corpora and write it as a new version folder under ``models_dir``.

    The run holds the models folder's lock, then its token-cache entry's lock, until it ends; when another run
    holds one, this one waits up to ``lock_timeout_s`` seconds for each, then raises BusyError. Leftovers of
    killed runs are removed under the locks first. ``current`` moves to the new version only if it still names
    what it named when the run started (else the result says why in ``current_note``). I/O failures (disk
    full, no permission) raise StorageError with one line.
    """
    if not corpus:
        raise CorpusError("no corpus given: pass at least one --corpus path")
    models_dir = Path(models_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else models_dir.parent / "cache"
    try:
        with ExitStack() as locks:
            models_dir.mkdir(parents=True, exist_ok=True)
            locks.enter_context(
                FileLock(models_dir / TRAIN_LOCK, f"models folder {models_dir}").acquire(lock_timeout_s)
            )
            remove_leftovers(models_dir)
            clean_leftovers(cache_dir / "tokens")
            expected = current_version(models_dir)

            def lock_entry(key: str) -> None:
                (cache_dir / "tokens").mkdir(parents=True, exist_ok=True)
                locks.enter_context(entry_lock(cache_dir / "tokens", key).acquire(lock_timeout_s))

            result = _train_locked(corpus, config, models_dir, extra_text, cache_dir, progress, lock_entry)
            if make_current:
                result = _move_current(result, models_dir, expected)
    except OSError as exc:
        raise io_failure(exc, "training stopped by an I/O error on", (models_dir, cache_dir)) from exc
    if on_stage:
        for stage in result.stages:
            on_stage(stage)
    return result


def _move_current(result: TrainResult, models_dir: Path, expected: str | None) -> TrainResult:
    now = compare_and_set_current(models_dir, result.version, expected)
    if now is None:
        return replace(result, made_current=True)
    note = (f"model {result.version} was kept but 'current' was not moved: it named {expected or '(none)'} when "
            f"this run started and names {now} now; `legalsearch models` lists both")
    log.warning("%s", note)
    return replace(result, current_note=note)


def _train_locked(
    corpus: Sequence[str | Path],
    config: TrainConfig,
    models_dir: Path,
    extra_text: Sequence[str | Path],
    cache_dir: Path,
    progress: bool,
    lock_entry: Callable[[str], None],
) -> TrainResult:
    timer = _Timer(folders=(models_dir, cache_dir))
    extra_paths = [Path(p) for p in extra_text]
    report = IngestReport()
    started = time.perf_counter()

    with timer.stage("ingest", "documents") as count:
        documents = list(
            tqdm(read_documents([Path(p) for p in corpus], config.corpus, report),
                 desc="ingest", unit="doc", disable=not progress)
        )
        count[0] = len(documents)
        if not documents:
            raise CorpusError(f"no usable document in {', '.join(map(str, corpus))}: {report.summary()}")
        extra_digest, extra_lines = _hash_extra(extra_paths, report, config.corpus)
        chash = corpus_hash(documents, extra_digest)
    log.info("ingest: %s", report.summary())

    preprocessor = Preprocessor(config.preprocess)
    key = cache_key(chash, preprocessor.fingerprint)
    lock_entry(key)
    token_dir = cache_dir / "tokens" / key
    with timer.stage("preprocess", "tokens") as count:
        _preprocess_cached(documents, extra_paths, preprocessor, token_dir, progress, count, config.corpus)

    with ModelWriter(models_dir) as writer:
        out = writer.path
        with timer.stage("phrases", "phrases") as count:
            phrases = learn_phrases(_phrase_sentences(token_dir), config.phrases)
            phrases.save(out / PHRASES_FILE)
            count[0] = len(phrases)

        phrase_key = hashlib.sha256(json.dumps(asdict(config.phrases), sort_keys=True).encode()).hexdigest()[:12]
        train_file = token_dir / f"train-{phrase_key}.txt"
        train_words = _write_training_text(token_dir, phrases, train_file)

        with timer.stage("keywords", "documents") as count:
            kw = extract_keywords(
                tqdm(_first_lines(train_file, len(documents)), total=len(documents), desc="keywords",
                     unit="doc", disable=not progress),
                config.keywords,
            )
            kw.model.save(out / VOCABULARY_FILE)
            kw.documents.save(out)
            count[0] = len(documents)

        with timer.stage("word2vec", "words") as count:
            bar = tqdm(total=config.word2vec.epochs, desc="word2vec", unit="epoch", disable=not progress)
            kv = train_word2vec(train_file, config.word2vec, on_epoch=lambda _e: bar.update())
            bar.close()
            save_vectors(kv, out)
            count[0] = train_words * config.word2vec.epochs

        if config.word2vec.intersection_models > 0:
            with timer.stage("thesaurus", "words") as count:
                for variant, seed_kv in enumerate(
                    train_seed_variants(train_file, config.word2vec, thesaurus_seeds(config.word2vec)), 1
                ):
                    folder = out / THESAURUS_DIR / f"seed-{variant}"
                    folder.mkdir(parents=True)
                    save_vectors(seed_kv, folder)
                count[0] = train_words * config.word2vec.epochs * config.word2vec.intersection_models

        with timer.stage("expansion", "words") as count:
            rows, sims = build_expansions(
                kv, kw.model, config.search.expansion_precomputed, config.search.expansion_terms + 1
            )
            save_expansions(rows, sims, out)
            count[0] = rows.shape[0]

        with timer.stage("docvectors", "documents") as count:
            vectors = document_vectors(kw.tfidf, kw.model.vocabulary, kv, config.docvectors, config.keywords.top_k)
            np.save(out / DOCVECTORS_FILE, vectors)
            count[0] = vectors.shape[0]
            empty_docs = int((np.abs(vectors).sum(axis=1) == 0).sum())

        with timer.stage("index", "documents") as count:
            index_type = choose_index_type(len(documents), config.index)
            index = build_index(vectors, config.index)
            write_index(index, [d.id for d in documents], out)
            count[0] = len(documents)

        if config.index.precomputed_neighbours > 0:
            with timer.stage("neighbours", "documents") as count:
                # the index as written and as the server reads it, so that the table answers what a search would
                width = config.index.precomputed_neighbours
                precompute_neighbours(load_index(out, mmap=False), vectors, width).save(out)
                count[0] = len(documents)

        with timer.stage("lexical", "documents") as count:
            lexical = build_lexical_index(
                _lexical_tokens(token_dir, config.lexical.title_weight, config.lexical.heading_path),
                config.lexical,
            )
            (out / LEXICAL_DIR).mkdir()
            save_lexical_index(lexical, out / LEXICAL_DIR)
            count[0] = len(documents)

        with timer.stage("documents", "documents") as count:
            count[0] = docstore.write_documents(documents, out)

        with timer.stage("suggestions", "entries") as count:
            store = docstore.DocumentStore(out)
            try:
                suggestions = build_suggestions(kw.model, store, [d.id for d in documents])
            finally:
                store.close()
            suggestions.save(out / SUGGEST_DIR)
            count[0] = len(suggestions)

        citation_stats: dict[str, Any] = {}
        if config.citations.enabled:
            with timer.stage("citations", "documents") as count:
                citation_stats = build_graph(documents, config.citations, out, report.withheld)
                count[0] = len(documents)

        with timer.stage("snippets", "documents") as count:
            snippets = index_snippets(
                tqdm((d.text for d in documents), total=len(documents), desc="snippets", unit="doc",
                     disable=not progress),
                preprocessor, lexical.vocab, config.search.snippet_chars,
            )
            snippets.save(out)
            count[0] = len(snippets)

        total = time.perf_counter() - started
        counts = {
            "documents": len(documents),
            "vocabulary": len(kw.model.vocabulary),
            "word_vectors": len(kv),
            "phrases": len(phrases),
            "empty_document_vectors": empty_docs,
            "citation_edges": int(citation_stats.get("edges", 0)),
        }
        manifest = {
            "config": config.to_dict(),
            "corpus_hash": chash,
            MANIFEST_KEY: key,
            "corpus": {
                "paths": [str(p) for p in corpus],
                "extra_text": [str(p) for p in extra_paths],
                "extra_lines": extra_lines,
                "read": report.documents,
                "skipped": report.reasons(),
            },
            "index_type": index_type,
            "vector_size": kv.vector_size,
            "training_words": train_words,
            "timings": {
                s.name: {"seconds": round(s.seconds, 3), "items": s.items, "unit": s.unit,
                         "per_second": round(s.per_second, 1), "peak_rss_mb": round(s.peak_rss_mb, 1)}
                for s in timer.stages
            },
            "citations": citation_stats,
            "total_seconds": round(total, 3),
            "evaluation": {},
        }
        path = writer.commit(manifest, counts, make_current=False)
    final = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return TrainResult(path.name, path, final, tuple(timer.stages), report)


def iter_stage_rows(stages: Iterable[StageStats]) -> Iterator[tuple[str, str, str, str]]:
    """Rows for a summary table: stage, seconds, throughput, peak memory."""
    for s in stages:
        yield s.name, f"{s.seconds:.1f}", f"{s.per_second:,.0f} {s.unit}/s", f"{s.peak_rss_mb:,.0f} MB"
