"""The training pipeline: the only module that chains the stages. ``STAGES`` below is the run, in order.

corpus -> documents -> tokens (cached) -> phrases -> keywords (TF-IDF) -> word2vec -> document vectors
-> FAISS index + BM25 index -> model folder (written aside, renamed into place, then ``current`` moves).

A run holds the models folder's lock and its token-cache entry's lock from start to end (see ``locks.py``), so
two runs never share half-written files; ``current`` moves only if it still names what it named at the start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from gensim.models import KeyedVectors
from tqdm import tqdm

from legalsearch import docstore, tokencache
from legalsearch.citegraph import build_graph
from legalsearch.config import CorpusConfig, TrainConfig
from legalsearch.corpus import IngestReport, read_documents, read_extra_text
from legalsearch.docvectors import document_vectors, save_docvectors
from legalsearch.embeddings import (
    save_vectors,
    thesaurus_folder,
    thesaurus_seeds,
    train_seed_variants,
    train_word2vec,
)
from legalsearch.errors import CorpusError
from legalsearch.expansion import build_expansions, save_expansions
from legalsearch.feedback import FeedbackRead, FeedbackSplit, read_feedback
from legalsearch.index import build_index, choose_index_type, load_index, write_index
from legalsearch.keywords import KeywordResult, PhraseModel, extract_keywords, learn_phrases
from legalsearch.lexical import (
    LEXICAL_DIR,
    LexicalIndex,
    build_lexical_index,
    default_profiles,
    profiles_of,
    retune_folder,
    save_lexical_index,
)
from legalsearch.locks import FileLock
from legalsearch.manifest import TrainingFacts, corpus_hash, counts, training_manifest
from legalsearch.model import (
    MANIFEST_NAME,
    TRAIN_LOCK,
    ModelWriter,
    compare_and_set_current,
    current_version,
    remove_leftovers,
)
from legalsearch.neighbours import precompute_neighbours
from legalsearch.sidelane import SideLane
from legalsearch.snippets import head_chars, index_snippets, index_span_lines
from legalsearch.stages import StageStats, StageTimer, io_failure, iter_stage_rows, peak_rss_mb
from legalsearch.suggest import build_suggestions
from legalsearch.text import Preprocessor, split_groups
from legalsearch.tokencache import CACHE_FORMAT as CACHE_FORMAT  # re-exported: older bench code reads it here
from legalsearch.tokencache import cache_key, clean_leftovers, entry_lock
from legalsearch.types import Document

__all__ = ["STAGES", "STAGE_NAMES", "Stage", "StageStats", "TrainResult", "iter_stage_rows", "peak_rss_mb", "train"]

log = logging.getLogger(__name__)


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
    #: the feedback read (None without ``--feedback``)
    feedback: FeedbackRead | None = None


class Run:
    """What the stages of one run hand each other. The attributes below the first block are set by the stage
    named beside them; a stage reads only what stages before it in ``STAGES`` set."""

    def __init__(self, config: TrainConfig, corpus: Sequence[Path], extra_paths: Sequence[Path], out: Path,
                 cache_dir: Path, progress: bool, lock_entry: Callable[[str], None]) -> None:
        self.config = config
        self.corpus = tuple(corpus)
        self.extra_paths = tuple(extra_paths)
        #: the model's folder while it is written (renamed into place at the end)
        self.out = out
        self.cache_dir = cache_dir
        self.progress = progress
        #: takes the token-cache entry's lock (held until the run ends)
        self.lock_entry = lock_entry
        self.report = IngestReport()
        self.citation_stats: dict[str, Any] = {}
        #: feedback files and the half of them used (``train(feedback=, feedback_split=)``)
        self.feedback_paths: tuple[Path, ...] = ()
        self.feedback_split: FeedbackSplit = "all"
        self.feedback: FeedbackRead | None = None  # ingest
        self.feedback_stats: dict[str, Any] = {}  # feedback

    documents: list[Document]  # ingest
    corpus_hash: str  # ingest
    extra_lines: int  # ingest
    preprocessor: Preprocessor  # preprocess
    #: whether worker processes help (preprocessing, the side lane): n_process > 1 and more than one batch
    parallel: bool  # preprocess
    cache_key: str  # preprocess
    token_dir: Path  # preprocess
    phrases: PhraseModel  # phrases
    train_file: Path  # training_text
    train_words: int  # training_text
    keywords: KeywordResult  # keywords
    vectors: KeyedVectors  # word2vec
    docvectors: np.ndarray  # docvectors
    index_type: str  # index
    lexical: LexicalIndex  # lexical

    def bar(self, items: Any, total: int | None, desc: str, unit: str = "doc") -> Any:
        """A progress bar over ``items`` (none when the run is quiet)."""
        return tqdm(items, total=total, desc=desc, unit=unit, disable=not self.progress)


# ---------------------------------------------------------------------------------------------------- the stages
# Each takes the run and returns how many items (the stage's unit) it handled.

def _ingest(run: Run) -> int:
    run.documents = list(run.bar(read_documents(list(run.corpus), run.config.corpus, run.report), None, "ingest"))
    if not run.documents:
        raise CorpusError(f"no usable document in {', '.join(map(str, run.corpus))}: {run.report.summary()}")
    extra_digest, run.extra_lines = _hash_extra(run.extra_paths, run.report, run.config.corpus)
    run.corpus_hash = corpus_hash(run.documents, extra_digest)
    log.info("ingest: %s", run.report.summary())
    run.feedback = _read_feedback(run)
    return len(run.documents)


def _read_feedback(run: Run) -> FeedbackRead | None:
    """The run's feedback questions, read at ingest so that a bad file stops the run before the long stages."""
    if not run.feedback_paths:
        return None
    known = {d.id: row for row, d in enumerate(run.documents)}
    read = read_feedback(run.feedback_paths, known, run.feedback_split, run.config.corpus)
    log.info("feedback: %s", read.summary())
    if not read.questions:
        raise CorpusError(f"no usable feedback question in {', '.join(map(str, run.feedback_paths))} "
                          f"(split {run.feedback_split}): {read.summary()}")
    return read


def _hash_extra(paths: Sequence[Path], report: IngestReport, config: CorpusConfig) -> tuple[str, int]:
    # Hashing the lines we would read (not the files) makes the key independent of compression and paths.
    digest = hashlib.sha256()
    count = 0
    for line in read_extra_text(paths, report, config):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
        count += 1
    return digest.hexdigest(), count


def _preprocess(run: Run) -> int:
    pre = run.config.preprocess
    # a corpus of one batch or less would pay the helper processes' start-up (seconds) many times over
    run.parallel = pre.n_process > 1 and len(run.documents) > pre.batch_size
    run.preprocessor = Preprocessor(pre if run.parallel else replace(pre, n_process=1))
    run.cache_key = cache_key(run.corpus_hash, run.preprocessor.fingerprint)
    run.lock_entry(run.cache_key)
    run.token_dir = run.cache_dir / "tokens" / run.cache_key
    return tokencache.fill(run.token_dir, run.documents, run.extra_paths, run.preprocessor, run.config.corpus,
                           run.progress, head_chars(run.config.search.snippet_chars))


def _phrases(run: Run) -> int:
    run.phrases = learn_phrases(tokencache.phrase_sentences(run.token_dir), run.config.phrases)
    run.phrases.save(run.out)
    return len(run.phrases)


def _training_text(run: Run) -> int:
    run.train_file = tokencache.training_file(run.token_dir, run.config.phrases)
    run.train_words = tokencache.write_training_text(run.token_dir, run.phrases, run.train_file)
    return run.train_words


def _keywords(run: Run) -> int:
    n = len(run.documents)
    run.keywords = extract_keywords(run.bar(tokencache.first_lines(run.train_file, n), n, "keywords"),
                                    run.config.keywords)
    run.keywords.model.save(run.out)
    run.keywords.documents.save(run.out)
    return n


def _word2vec(run: Run) -> int:
    w2v = run.config.word2vec
    bar = run.bar(None, w2v.epochs, "word2vec", "epoch")
    run.vectors = train_word2vec(run.train_file, w2v, on_epoch=lambda _e: bar.update())
    bar.close()
    save_vectors(run.vectors, run.out)
    return run.train_words * w2v.epochs


def _thesaurus(run: Run) -> int:
    w2v = run.config.word2vec
    for variant, seed_kv in enumerate(train_seed_variants(run.train_file, w2v, thesaurus_seeds(w2v)), 1):
        folder = run.out / thesaurus_folder(variant)
        folder.mkdir(parents=True)
        save_vectors(seed_kv, folder)
    return run.train_words * w2v.epochs * w2v.intersection_models


def _expansion(run: Run) -> int:
    search = run.config.search
    rows, sims = build_expansions(run.vectors, run.keywords.model, search.expansion_precomputed,
                                  search.expansion_width)
    save_expansions(rows, sims, run.out)
    return int(rows.shape[0])


def _docvectors(run: Run) -> int:
    kw = run.keywords
    run.docvectors = document_vectors(kw.tfidf, kw.model.vocabulary, run.vectors, run.config.docvectors,
                                      run.config.keywords.top_k)
    save_docvectors(run.docvectors, run.out)
    return int(run.docvectors.shape[0])


def _index(run: Run) -> int:
    run.index_type = choose_index_type(len(run.documents), run.config.index)
    index = build_index(run.docvectors, run.config.index)
    write_index(index, [d.id for d in run.documents], run.out)
    return len(run.documents)


def _neighbours(run: Run) -> int:
    # the index as written and as the server reads it, so that the table answers what a search would
    width = run.config.index.precomputed_neighbours
    precompute_neighbours(load_index(run.out, mmap=False), run.docvectors, width).save(run.out)
    return len(run.documents)


def _lexical(run: Run) -> int:
    lex = run.config.lexical
    # one profile per document type: statutes keep the statute-tuned parameters, the others plain BM25's
    types = [d.type for d in run.documents]
    weighting = run.config.search.query_term_weighting
    run.lexical = build_lexical_index(tokencache.lexical_tokens(run.token_dir, lex.title_weight, lex.heading_path),
                                      lex, default_profiles(types, lex, weighting), types, weighting)
    (run.out / LEXICAL_DIR).mkdir()
    save_lexical_index(run.lexical, run.out / LEXICAL_DIR)
    return len(run.documents)


def _lexical_profiles(run: Run) -> int:
    """Tune the lexical profiles of document types with enough feedback questions on them (the lexical stage's
    index, rewritten in place: ``lexical.retune_folder``)."""
    read = run.feedback
    assert read is not None  # the stage is wanted only then
    rows = {d.id: i for i, d in enumerate(run.documents)}
    questions = []
    with run.preprocessor.transient():
        for q in read.questions:
            _, tokens = split_groups(next(run.preprocessor.pipe_grouped([q.query])))
            questions.append((tokens, frozenset(rows[d] for d, _ in q.docs if d in rows)))
    lex = run.config.lexical
    retune_folder(run.out / LEXICAL_DIR, tokencache.lexical_tokens(run.token_dir, lex.title_weight, lex.heading_path),
                  [d.type for d in run.documents], questions, lex)
    return len(questions)


def _documents(run: Run) -> int:
    return docstore.write_documents(run.documents, run.out)


def _suggestions(run: Run) -> int:
    store = docstore.DocumentStore(run.out)
    try:
        suggestions = build_suggestions(run.keywords.model, store, [d.id for d in run.documents])
    finally:
        store.close()
    suggestions.save(run.out)
    return len(suggestions)


def _citations(run: Run) -> int:
    run.citation_stats = build_graph(run.documents, run.config.citations, run.out, run.report.withheld)
    return len(run.documents)


def _snippets(run: Run) -> int:
    texts = run.bar((d.text for d in run.documents), len(run.documents), "snippets")
    chars = run.config.search.snippet_chars
    spans = tokencache.snippet_spans(run.token_dir, head_chars(chars))
    if spans is None:  # a cache entry written without them
        snippets = index_snippets(texts, run.preprocessor, run.lexical.vocab, chars)
    else:
        snippets = index_span_lines(spans, texts, run.preprocessor, run.lexical.vocab, chars)
    snippets.save(run.out)
    return len(snippets)


def _feedback(run: Run) -> int:
    """The feedback stage over the folder written so far: its artifacts, the co-relevance, manifest figures."""
    # the engine imports this module's file names; the model's other files are all written by now
    from legalsearch.engine import Model
    from legalsearch.feedback_fit import build_feedback

    read = run.feedback
    assert read is not None  # the stage is wanted only then
    out = run.out
    listing: dict[str, Any] = {p.relative_to(out).as_posix(): {} for p in out.rglob("*") if p.is_file()}
    provisional: dict[str, Any] = {"version": out.name, "config": run.config.to_dict(), "files": listing,
                                   "counts": {"documents": len(run.documents)}}
    model = Model.open(out, provisional)
    try:
        built = build_feedback(model, read.questions, run.config.feedback, read.report)
    finally:
        model.close()
    if built is None:
        raise CorpusError(f"no feedback question has a usable term: {read.summary()}")
    built.index.save(out)
    built.corelevance.save(out)
    log.info("feedback: %s", read.summary())
    run.feedback_stats = {"paths": list(read.paths), "split": read.split, "sha256": read.sha256,
                          "records": read.records, "other_split": read.other_split,
                          "skipped": read.report.reasons(), **built.stats}
    return int(built.stats["questions"])


def _always(_config: TrainConfig) -> bool:
    return True


def _always_run(_run: Run) -> bool:
    return True


def _has_feedback(run: Run) -> bool:
    return run.feedback is not None


@dataclass(frozen=True)
class Stage:
    """One step of a training run: its name (in timings and logs), the unit it counts, what it does."""

    name: str
    unit: str
    run: Callable[[Run], int]
    #: whether the config asks for the stage at all
    enabled: Callable[[TrainConfig], bool] = _always
    #: run in the helper process beside the main stages when there is one (``preprocess.n_process`` > 1): a
    #: one-core stage that needs only the documents, the token cache and earlier side stages
    side: bool = False
    #: side stages whose files this stage reads: it waits for them
    needs: tuple[str, ...] = ()
    #: whether the run's inputs ask for the stage (known once the stages before it ran)
    wanted: Callable[[Run], bool] = _always_run
    #: keeps every core busy itself: the side process is paused while it runs (``SideLane.paused``)
    alone: bool = False


def _citations_enabled(config: TrainConfig) -> bool:
    return config.citations.enabled


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "documents", _ingest),
    Stage("preprocess", "tokens", _preprocess),
    # the side lane: one-core Python stages, in a helper process while the stages below run
    Stage("lexical", "documents", _lexical, side=True),
    Stage("documents", "documents", _documents, side=True),
    Stage("citations", "documents", _citations, _citations_enabled, side=True),
    Stage("snippets", "documents", _snippets, side=True),
    # the main lane
    Stage("phrases", "phrases", _phrases),
    Stage("training_text", "words", _training_text),
    Stage("keywords", "documents", _keywords),
    Stage("word2vec", "words", _word2vec, alone=True),
    Stage("thesaurus", "words", _thesaurus, lambda c: c.word2vec.intersection_models > 0, alone=True),
    Stage("expansion", "words", _expansion),
    Stage("docvectors", "documents", _docvectors),
    Stage("index", "documents", _index),
    Stage("neighbours", "documents", _neighbours, lambda c: c.index.precomputed_neighbours > 0),
    Stage("suggestions", "entries", _suggestions, needs=("documents",)),
    # tunes the lexical profiles on the feedback before the feedback stage ranks its questions with them
    Stage("lexical_profiles", "questions", _lexical_profiles, lambda c: c.lexical.profiles, needs=("lexical",),
          wanted=_has_feedback),
    # reads the model as written so far (ranks the feedback questions with it): after every other stage
    Stage("feedback", "questions", _feedback, needs=("lexical", "documents", "citations", "snippets"),
          wanted=_has_feedback),
)
STAGE_NAMES: Mapping[str, Stage] = {stage.name: stage for stage in STAGES}


# ---------------------------------------------------------------------------------------------------- the run

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
    feedback: Sequence[str | Path] = (),
    feedback_split: FeedbackSplit = "all",
) -> TrainResult:
    """Train a model from corpora and write it as a new version folder under ``models_dir``.

    The run holds the models folder's lock, then its token-cache entry's lock, until it ends; when another run
    holds one, this one waits up to ``lock_timeout_s`` seconds for each, then raises BusyError. Leftovers of
    killed runs are removed under the locks first. ``current`` moves to the new version only if it still names
    what it named when the run started (else the result says why in ``current_note``). I/O failures (disk
    full, no permission) raise StorageError with one line.

    ``feedback``: JSON Lines of labelled questions or clicks (``feedback.read_feedback``), of which the questions of
    ``feedback_split`` train the feedback signals of /search and the co-relevance of /recommend.
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

            inputs = _Inputs(tuple(Path(p) for p in corpus), tuple(Path(p) for p in extra_text),
                             tuple(Path(p) for p in feedback), feedback_split)
            result = _train_locked(inputs, config, models_dir, cache_dir, progress, lock_entry)
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


@dataclass(frozen=True)
class _Inputs:
    """What a run trains on: corpora, extra text, feedback files and the feedback split."""

    corpus: tuple[Path, ...]
    extra_text: tuple[Path, ...]
    feedback: tuple[Path, ...] = ()
    feedback_split: FeedbackSplit = "all"


def _train_locked(inputs: _Inputs, config: TrainConfig, models_dir: Path, cache_dir: Path, progress: bool,
                  lock_entry: Callable[[str], None]) -> TrainResult:
    timer = StageTimer(folders=(models_dir, cache_dir))
    started = time.perf_counter()
    with ModelWriter(models_dir) as writer:
        run = Run(config, inputs.corpus, inputs.extra_text, writer.path, cache_dir, progress, lock_entry)
        run.feedback_paths, run.feedback_split = inputs.feedback, inputs.feedback_split
        with SideLane(timer) as side:
            for stage in STAGES:
                if not stage.enabled(config) or not stage.wanted(run):
                    continue
                if stage.side and run.parallel:
                    side.submit(run, stage.name)
                    continue
                side.wait_for(stage.needs, run)
                side.reap(run)
                with side.paused() if stage.alone else nullcontext(), timer.stage(stage.name, stage.unit) as count:
                    count[0] = stage.run(run)
            side.wait_for(tuple(side.pending), run)
        facts = _facts(run)
        # in table order, wherever they ran
        stages = sorted(timer.stages, key=lambda s: list(STAGE_NAMES).index(s.name))
        manifest = training_manifest(facts, stages, time.perf_counter() - started)
        path = writer.commit(manifest, counts(facts), make_current=False)
    final = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    return TrainResult(path.name, path, final, tuple(stages), run.report, feedback=run.feedback)


def _facts(run: Run) -> TrainingFacts:
    return TrainingFacts(
        config=run.config, corpus=run.corpus, extra_text=run.extra_paths, extra_lines=run.extra_lines,
        report=run.report, corpus_hash=run.corpus_hash, cache_key=run.cache_key, documents=len(run.documents),
        vocabulary=len(run.keywords.model.vocabulary), word_vectors=len(run.vectors),
        vector_size=run.vectors.vector_size, phrases=len(run.phrases), training_words=run.train_words,
        empty_document_vectors=int((np.abs(run.docvectors).sum(axis=1) == 0).sum()), index_type=run.index_type,
        citations=run.citation_stats, feedback=run.feedback_stats,
        lexical_profiles=profiles_of(run.out / LEXICAL_DIR),
    )
