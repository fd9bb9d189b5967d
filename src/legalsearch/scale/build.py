"""``legalsearch train --ray ADDRESS|local --shards K``: one sharded model version.

What runs where:
- the driver runs the collection-wide stages once, as the single-node pipeline does (``pipeline.STAGES``):
  ingest, preprocessing (token cache; on a cluster its batches are mapped by Ray Data actors), phrases,
  training text, TF-IDF keywords (vocabulary, df, idf over the collection), word2vec (one gensim job: gensim
  has no distributed training), thesaurus, expansions, document vectors. They are written to ``global/``.
- Ray tasks, one per shard, count each shard's lexical statistics; the driver merges them once (term ids in
  collection order, df, N, total length) so that every shard scores BM25 with the collection's statistics.
- Ray tasks, one per shard, write ``shards/<k>/``: the shard's documents, document vectors, FAISS index, BM25
  postings (global statistics), keywords and snippet index, beside the global artifacts the loader needs, so
  that each shard is a model folder that ``Model.load`` reads and verifies as today.
- an IVF-PQ index is trained once, on the driver, on the collection's sample (as one node trains it) and written
  to ``global/``; each shard task adds its rows to a copy, so every shard's codes come from the same codebooks.

Shards are contiguous row ranges of the single-node order, so a shard row plus its shard's first row is the
single-node row, and ties break as they do on one node. The version folder is written aside and published as
a whole: its manifest lists every file (so every shard manifest's hash) and ``shards``; ``current`` moves only
after the global folder and every shard verified. A failed shard task fails the run, and nothing is published.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from legalsearch import docstore, tokencache
from legalsearch.citegraph import CITATIONS_DIR
from legalsearch.config import TrainConfig, config_from_dict
from legalsearch.docvectors import DOCVECTORS_FILE
from legalsearch.errors import ArtifactError, CorpusError
from legalsearch.index import (
    TRAINED_IVFPQ_FILE,
    add_to_ivfpq,
    build_index,
    choose_index_type,
    read_trained_ivfpq,
    train_ivfpq,
    write_index,
    write_trained_ivfpq,
)
from legalsearch.keywords import DocumentKeywords
from legalsearch.lexical import LEXICAL_DIR, LexicalProfile, default_profiles, save_lexical_index
from legalsearch.locks import FileLock
from legalsearch.model import (
    MANIFEST_NAME,
    TRAIN_LOCK,
    ModelWriter,
    compare_and_set_current,
    current_version,
    remove_leftovers,
    sha256_file,
    verify_model,
)
from legalsearch.pipeline import STAGES, Run
from legalsearch.scale.bm25 import LexicalStats, ShardCounts, build_shard_lexical, count_shard, merge_counts
from legalsearch.snippets import head_chars, index_snippets, index_span_lines
from legalsearch.text import Preprocessor
from legalsearch.tokencache import cache_key, clean_leftovers, entry_lock
from legalsearch.types import Document

log = logging.getLogger(__name__)

GLOBAL_DIR = "global"
SHARDS_DIR = "shards"
LAYOUT = "sharded-1"
#: the single-node stages that make the collection's statistics and models (run once, on the driver)
GLOBAL_STAGES = ("ingest", "preprocess", "documents", "citations", "phrases", "training_text", "keywords",
                 "word2vec", "thesaurus", "expansion", "docvectors")
#: files of global/ that hold one row per document: shards get their rows, not the file
_PER_DOCUMENT = frozenset({DOCVECTORS_FILE, "keywords_indptr.npy", "keywords_terms.npy", "keywords_weights.npy",
                           docstore.DOCS_FILE, docstore.OFFSETS_FILE, docstore.TEXT_HASH_FILE})
#: folders of global/ that only the front reads (the collection's citation graph and facet columns)
_FRONT_ONLY = (f"{CITATIONS_DIR}/", f"{docstore.FACETS_DIR}/")
#: files of global/ that only the build reads (each shard's index holds the trained IVF-PQ's codebooks)
_BUILD_ONLY = frozenset({TRAINED_IVFPQ_FILE})

#: runs ``fn`` over ``items`` (in order) somewhere: in this process, or as Ray tasks (``ray_map``)
Executor = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def local_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """The executor without Ray: one item after the other in this process."""
    return [fn(item) for item in items]


def ray_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """One Ray task per item (one CPU each), results in order; a failed task raises here."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(fn)
    return list(ray.get([remote.remote(item) for item in items]))


@dataclass(frozen=True)
class ShardedResult:
    """What a sharded training run produced."""

    version: str
    path: Path
    shards: tuple[tuple[int, int], ...]
    made_current: bool
    current_note: str
    seconds: dict[str, float]


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous row ranges of ``n`` rows, sizes differing by at most one."""
    if shards < 1:
        raise CorpusError(f"--shards must be at least 1, got {shards}")
    if shards > n:
        raise CorpusError(f"--shards {shards} exceeds the {n} documents")
    step, extra = divmod(n, shards)
    bounds, lo = [], 0
    for k in range(shards):
        hi = lo + step + (1 if k < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


@dataclass(frozen=True)
class _CountTask:
    token_dir: str
    lo: int
    hi: int
    title_weight: int
    heading_path: bool


def _count(task: _CountTask) -> ShardCounts:
    tokens = tokencache.lexical_tokens(Path(task.token_dir), task.title_weight, task.heading_path)
    return count_shard(islice(tokens, task.lo, task.hi))


@dataclass(frozen=True)
class _ShardTask:
    index: int
    lo: int
    hi: int
    #: the version folder being written (its shards/ folder receives the shard)
    version_tmp: str
    global_dir: str
    token_dir: str
    config: dict[str, Any]
    documents: list[Document]
    stats: LexicalStats
    #: the collection's lexical profiles (``lexical.default_profiles`` over every document's type)
    profiles: list[LexicalProfile]
    index_type: str
    #: tests: the shard whose task raises (a failed build publishes nothing)
    fail: bool = False


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _shard_index(task: _ShardTask, config: TrainConfig, docvectors: np.ndarray) -> Any:
    """The shard's FAISS index: IVF-PQ as a copy of global/'s trained index (the collection's coarse centroids
    and PQ codebooks) holding the shard's rows; flat and HNSW built over the shard's rows."""
    if task.index_type == "ivfpq":
        return add_to_ivfpq(read_trained_ivfpq(Path(task.global_dir)), docvectors)
    index_config = dataclasses.replace(config.index, type=task.index_type)  # type: ignore[arg-type]
    return build_index(docvectors, index_config)


def _build_shard(task: _ShardTask) -> str:
    """Write ``shards/<k>/`` as a model folder of the shard's rows; returns its manifest's sha256."""
    if task.fail:
        raise ArtifactError(f"shard {task.index}: failure injected for a test")
    config = config_from_dict(task.config)
    gdir = Path(task.global_dir)
    lo, hi = task.lo, task.hi
    started = time.perf_counter()
    with ModelWriter(Path(task.version_tmp) / SHARDS_DIR, version=str(task.index)) as writer:
        out = writer.path
        for path in sorted(gdir.rglob("*")):
            rel = path.relative_to(gdir).as_posix()
            if (path.is_file() and rel != MANIFEST_NAME and rel not in _PER_DOCUMENT | _BUILD_ONLY
                    and not rel.startswith(_FRONT_ONLY)):
                _link_or_copy(path, out / rel)
        docvectors = np.load(gdir / DOCVECTORS_FILE, mmap_mode="r")[lo:hi]
        np.save(out / DOCVECTORS_FILE, np.ascontiguousarray(docvectors))
        kw = DocumentKeywords.load(gdir, mmap=True)
        start, end = int(kw.indptr[lo]), int(kw.indptr[hi])
        DocumentKeywords(np.asarray(kw.indptr[lo:hi + 1] - start), np.asarray(kw.terms[start:end]),
                         np.asarray(kw.weights[start:end])).save(out)
        write_index(_shard_index(task, config, np.asarray(docvectors)), [d.id for d in task.documents], out)
        lex = config.lexical
        tokens = islice(tokencache.lexical_tokens(Path(task.token_dir), lex.title_weight, lex.heading_path), lo, hi)
        lexical = build_shard_lexical(tokens, task.stats, lex, task.profiles, [d.type for d in task.documents],
                                      config.search.query_term_weighting)
        (out / LEXICAL_DIR).mkdir()
        save_lexical_index(lexical, out / LEXICAL_DIR)
        docstore.write_documents(task.documents, out)
        preprocessor = Preprocessor(dataclasses.replace(config.preprocess, n_process=1))
        chars = config.search.snippet_chars
        texts = (d.text for d in task.documents)
        spans = tokencache.snippet_spans(Path(task.token_dir), head_chars(chars))
        if spans is None:  # a cache entry written without them
            snippets = index_snippets(texts, preprocessor, lexical.vocab, chars)
        else:
            snippets = index_span_lines(islice(spans, lo, hi), texts, preprocessor, lexical.vocab, chars)
        snippets.save(out)
        manifest = {"config": task.config, "shard": {"index": task.index, "rows": [lo, hi]},
                    "seconds": round(time.perf_counter() - started, 3)}
        path = writer.commit(manifest, {"documents": hi - lo}, make_current=False)
    verify_model(path)
    return sha256_file(path / MANIFEST_NAME)


def _preprocess_with(run: Run, lines_of: tokencache.LinesOf) -> int:
    """The pipeline's preprocessing stage (``pipeline._preprocess``) with the batches preprocessed by
    ``lines_of`` (Ray Data on a cluster): the same cache key, lock and entry."""
    run.parallel = False
    run.preprocessor = Preprocessor(dataclasses.replace(run.config.preprocess, n_process=1))
    run.cache_key = cache_key(run.corpus_hash, run.preprocessor.fingerprint)
    run.lock_entry(run.cache_key)
    run.token_dir = run.cache_dir / "tokens" / run.cache_key
    return tokencache.fill(run.token_dir, run.documents, run.extra_paths, run.preprocessor, run.config.corpus,
                           False, head_chars(run.config.search.snippet_chars), lines_of=lines_of)


def _run_global(run: Run, lines_of: tokencache.LinesOf | None) -> None:
    for stage in STAGES:
        if stage.name in GLOBAL_STAGES and stage.enabled(run.config) and stage.wanted(run):
            if stage.name == "preprocess" and lines_of is not None:
                _preprocess_with(run, lines_of)
            else:
                stage.run(run)


def _verify_shards(top: Path, gpath: Path, bounds: Sequence[tuple[int, int]], hashes: Sequence[str]) -> None:
    """Every folder verified, each shard's manifest the one its task reported and covering its rows."""
    verify_model(gpath)
    for k, digest in enumerate(hashes):
        manifest = verify_model(top / SHARDS_DIR / str(k))
        if sha256_file(top / SHARDS_DIR / str(k) / MANIFEST_NAME) != digest:
            raise ArtifactError(f"shard {k}: its manifest changed after the shard was built")
        if manifest["shard"]["rows"] != list(bounds[k]):
            raise ArtifactError(f"shard {k}: rows {manifest['shard']['rows']} instead of {bounds[k]}")


def _top_manifest(config: TrainConfig, corpus_hash: str, gpath: Path, bounds: Sequence[tuple[int, int]],
                  hashes: Sequence[str], seconds: dict[str, float]) -> dict[str, Any]:
    """The version folder's manifest: the global folder's and each shard manifest's hash."""
    return {
        "layout": LAYOUT,
        "config": config.to_dict(),
        "corpus_hash": corpus_hash,
        "global": {"path": GLOBAL_DIR, "manifest_sha256": sha256_file(gpath / MANIFEST_NAME)},
        "shards": [{"path": f"{SHARDS_DIR}/{k}", "rows": list(b), "manifest_sha256": h}
                   for k, (b, h) in enumerate(zip(bounds, hashes, strict=True))],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def _write_global(top: Path, config: TrainConfig, corpus: Sequence[str | Path], extra_text: Sequence[str | Path],
                  cache_dir: Path, entries: _EntryLocks, lines_of: tokencache.LinesOf | None) -> tuple[Run, Path]:
    """``global/``: the collection-wide stages, and an IVF-PQ index's training (once, on the collection's sample,
    as one node trains it: every shard adds its rows to a copy, so all codes come from the same codebooks)."""
    with ModelWriter(top, version=GLOBAL_DIR) as gwriter:
        run = Run(config, [Path(p) for p in corpus], [Path(p) for p in extra_text], gwriter.path,
                  cache_dir, False, entries.take)
        _run_global(run, lines_of)
        n = len(run.documents)
        if choose_index_type(n, config.index) == "ivfpq":
            write_trained_ivfpq(train_ivfpq(run.docvectors, config.index), gwriter.path)
        global_manifest = {"config": config.to_dict(), "corpus_hash": run.corpus_hash, "cache_key": run.cache_key}
        counts = {"documents": n, "vocabulary": len(run.keywords.model.vocabulary), "word_vectors": len(run.vectors)}
        return run, gwriter.commit(global_manifest, counts, make_current=False)


def train_sharded(corpus: Sequence[str | Path], config: TrainConfig, models_dir: Path, shards: int,
                  executor: Executor = local_map, extra_text: Sequence[str | Path] = (),
                  cache_dir: Path | None = None, make_current: bool = True, fail_shard: int | None = None,
                  lock_timeout_s: float = 0.0, lines_of: tokencache.LinesOf | None = None) -> ShardedResult:
    """Train one sharded model version under ``models_dir`` (see the module's docstring); ``executor`` runs
    the per-shard tasks (``ray_map`` on a cluster), ``lines_of`` the preprocessing (``scale.preprocess.ray_lines``
    on a cluster; the pipeline's own stage otherwise)."""
    if not corpus:
        raise CorpusError("no corpus given: pass at least one --corpus path")
    models_dir = Path(models_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else models_dir.parent / "cache"
    models_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    with FileLock(models_dir / TRAIN_LOCK, f"models folder {models_dir}").acquire(lock_timeout_s) as _lock, \
            _EntryLocks(cache_dir, lock_timeout_s) as entries:
        del _lock
        remove_leftovers(models_dir)
        clean_leftovers(cache_dir / "tokens")
        expected = current_version(models_dir)
        with ModelWriter(models_dir) as top:
            t0 = time.perf_counter()
            run, gpath = _write_global(top.path, config, corpus, extra_text, cache_dir, entries, lines_of)
            n = len(run.documents)
            seconds["global"] = time.perf_counter() - t0
            bounds = shard_bounds(n, shards)
            lex = config.lexical
            t0 = time.perf_counter()
            counted = executor(_count, [_CountTask(str(run.token_dir), lo, hi, lex.title_weight, lex.heading_path)
                                        for lo, hi in bounds])
            stats = merge_counts(counted)
            seconds["lexical_statistics"] = time.perf_counter() - t0
            index_type = choose_index_type(n, config.index)
            profiles = default_profiles([d.type for d in run.documents], lex, config.search.query_term_weighting)
            t0 = time.perf_counter()
            tasks = [_ShardTask(k, lo, hi, str(top.path), str(gpath), str(run.token_dir), config.to_dict(),
                                run.documents[lo:hi], stats, profiles, index_type, fail=(k == fail_shard))
                     for k, (lo, hi) in enumerate(bounds)]
            hashes = executor(_build_shard, tasks)
            seconds["shards"] = time.perf_counter() - t0
            _verify_shards(top.path, gpath, bounds, hashes)
            top_manifest = _top_manifest(config, run.corpus_hash, gpath, bounds, hashes, seconds)
            path = top.commit(top_manifest, {"documents": n, "shards": len(bounds)}, make_current=False)
        verify_model(path)
        made, note = False, ""
        if make_current:
            now = compare_and_set_current(models_dir, path.name, expected)
            made = now is None
            if not made:
                note = f"'current' was not moved: it named {expected or '(none)'} at the start and names {now} now"
    return ShardedResult(path.name, path, tuple(bounds), made, note, seconds)


def train_on_ray(address: str, corpus: Sequence[str | Path], config: TrainConfig, models_dir: Path, shards: int,
                 **kwargs: Any) -> ShardedResult:
    """``train --ray ADDRESS|local --shards K``: ``train_sharded`` with its shard tasks on a Ray cluster (one
    started here bound to 127.0.0.1 for ``local``, with one node per shard up to two)."""
    from legalsearch.scale.cluster import ray_session
    from legalsearch.scale.preprocess import ray_lines

    with ray_session(address, nodes=min(shards, 2)):
        return train_sharded(corpus, config, models_dir, shards, executor=ray_map, lines_of=ray_lines, **kwargs)


class _EntryLocks:
    """The token-cache entry's lock, taken when the preprocessing stage knows the entry (``Run.lock_entry``)."""

    def __init__(self, cache_dir: Path, timeout_s: float) -> None:
        self.cache_dir = cache_dir
        self.timeout_s = timeout_s
        self.held: list[Any] = []

    def take(self, key: str) -> None:
        (self.cache_dir / "tokens").mkdir(parents=True, exist_ok=True)
        lock = entry_lock(self.cache_dir / "tokens", key).acquire(self.timeout_s)
        lock.__enter__()
        self.held.append(lock)

    def __enter__(self) -> _EntryLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        for lock in reversed(self.held):
            lock.__exit__(None, None, None)
