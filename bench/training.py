"""Training suite: per-stage time, throughput and peak memory of one full training run (beside a run of the original
code, see ``bench.trainrun``), plain gensim on the same phrased training file, and preprocessing throughput.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gensim.models import Word2Vec

from bench import REPO_ROOT, median
from bench.trainrun import MeasuredRun, checkout_at, comparison, existing_checkout, this_checkout, train_measured
from legalsearch.config import TrainConfig, config_from_dict, load_config
from legalsearch.corpus import IngestReport, read_extra_text
from legalsearch.embeddings import stable_hash, train_word2vec
from legalsearch.errors import ArtifactError
from legalsearch.model import read_manifest, resolve_model_dir
from legalsearch.text import Preprocessor
from legalsearch.tokencache import MANIFEST_KEY, cache_key
from legalsearch.tokencache import training_file as entry_training_file

log = logging.getLogger(__name__)

DEMO_CORPUS = REPO_ROOT / "corpora" / "demo"


@dataclass(frozen=True)
class TrainingOptions:
    """What the training suite runs on."""

    shared: Path
    work_dir: Path
    repeats: int = 3
    quick: bool = False
    #: reuse the timings of an already trained model (its manifest) and its token cache instead of training
    reuse_model: Path | None = None
    reuse_cache: Path | None = None
    #: court-sentence lines for the separate preprocessing measurement (0 = all; the set has ~67,000 lines,
    #: ~2.1M tokens): enough that the worker pool's start-up is amortised roughly as in a real training run
    preprocess_lines: int = 100000
    gensim_repeats: int = 1
    #: epochs of the gensim baseline (None: the model's); fewer keep a loaded machine free, words/s compare
    gensim_epochs: int | None = None
    #: the original code trained beside this one in the same run: a git ref, a checkout's folder, or "none"
    baseline: str = "none"


@dataclass(frozen=True)
class Inputs:
    """Corpus, extra text and config of the run."""

    corpus: tuple[Path, ...]
    extra: tuple[Path, ...]
    config: TrainConfig
    config_path: Path


def _inputs(opts: TrainingOptions) -> Inputs:
    if opts.quick:
        path = REPO_ROOT / "configs" / "demo.toml"
        return Inputs((DEMO_CORPUS,), (DEMO_CORPUS / "extra",), load_config(path), path)
    corpora = opts.shared / "corpora"
    path = REPO_ROOT / "configs" / "default.toml"
    return Inputs((corpora / "gesetze-markdown.tar.gz",), (corpora / "court-sentences",), load_config(path), path)


def _train_original(opts: TrainingOptions, inputs: Inputs) -> MeasuredRun | None:
    """The original code's run on the same inputs, with its own copy of the config file (it refuses settings it
    does not know); None when ``baseline`` is "none"."""
    if opts.baseline == "none":
        return None
    where = Path(opts.baseline)
    checkout = existing_checkout(where) if where.is_dir() else checkout_at(opts.baseline, opts.work_dir)
    config = checkout.root / inputs.config_path.relative_to(REPO_ROOT)
    return train_measured(checkout, inputs.corpus, inputs.extra, config, opts.work_dir)


def training_file(manifest: dict[str, Any], cache_dir: Path) -> Path:
    """The phrased word2vec training file the pipeline wrote for this model (same keys as pipeline.train)."""
    config = config_from_dict(manifest["config"])
    # models since legalsearch gc record their key; older ones: recompute it as pipeline.train did
    key = manifest.get(MANIFEST_KEY) or cache_key(manifest["corpus_hash"], Preprocessor(config.preprocess).fingerprint)
    path = entry_training_file(cache_dir / "tokens" / key, config.phrases)
    if path.is_file():
        return path
    # a model trained by an older checkout has another preprocessor fingerprint: accept its only training file
    found = sorted((cache_dir / "tokens").glob(f"*/{path.name}"))
    if len(found) == 1:
        log.warning("training file %s not found; using the cache's only one with these phrase settings: %s",
                    path, found[0])
        return found[0]
    raise ArtifactError(f"training file {path} not found (was the model trained with cache dir {cache_dir}?)")


@dataclass(frozen=True)
class GensimTiming:
    """Seconds plain gensim spent building the vocabulary and training."""

    vocab_s: float
    train_s: float
    epochs: int


def gensim_seconds(corpus_file: Path, config: TrainConfig) -> GensimTiming:
    """Time plain gensim ``Word2Vec`` on ``corpus_file`` with the project's settings (vocabulary, then training)."""
    w = config.word2vec
    model = Word2Vec(vector_size=w.vector_size, window=w.window, sg=int(w.sg), epochs=w.epochs,
                     min_count=w.min_count, negative=w.negative, sample=w.sample, alpha=w.alpha, seed=w.seed,
                     workers=w.workers, hashfxn=stable_hash)
    start = time.perf_counter()
    model.build_vocab(corpus_file=str(corpus_file))
    vocab_s = time.perf_counter() - start
    start = time.perf_counter()
    model.train(corpus_file=str(corpus_file), total_examples=model.corpus_count,
                total_words=model.corpus_total_words, epochs=w.epochs)
    return GensimTiming(vocab_s, time.perf_counter() - start, w.epochs)


def project_word2vec_seconds(corpus_file: Path, config: TrainConfig) -> float:
    """Time the project's own word2vec stage (``train_word2vec``: vocabulary, training, normalising) on the file."""
    start = time.perf_counter()
    train_word2vec(corpus_file, config.word2vec)
    return time.perf_counter() - start


def preprocess_throughput(lines: Sequence[str], config: TrainConfig, n_process: int, repeats: int) -> float:
    """Input whitespace tokens per second of ``Preprocessor.pipe`` (median over repeats; pool start included).

    Each repeat builds a fresh preprocessor, so its memos and spaCy's tokenizer cache start empty: the first
    sighting of every distinct word is paid in every repeat, as in a training run.
    """
    tokens = sum(len(line.split()) for line in lines)
    rates = []
    for _ in range(repeats):
        pre = Preprocessor(replace(config.preprocess, n_process=n_process))
        start = time.perf_counter()
        for _toks in pre.pipe(lines):
            pass
        rates.append(tokens / (time.perf_counter() - start))
    log.info("preprocessing, n_process %d: %s tokens/s", n_process, ", ".join(f"{r:,.0f}" for r in rates))
    return median(rates)


def run_training(opts: TrainingOptions) -> dict[str, Any]:
    """The training section of the results."""
    inputs = _inputs(opts)
    if opts.reuse_model is not None:
        if opts.reuse_cache is None:
            raise ArtifactError("--training-model needs --training-cache (the cache dir it was trained with)")
        model_dir = opts.reuse_model
        if (model_dir / "current").exists():
            model_dir = resolve_model_dir(model_dir)
        manifest = read_manifest(model_dir)
        model_path = model_dir
        cache_dir = opts.reuse_cache
        source = f"timings reused from the manifest of {model_dir} (trained {manifest.get('created_at')})"
        compared: dict[str, Any] = {}
    else:
        log.info("training on %s (this is the long part)", ", ".join(map(str, inputs.corpus)))
        beside = _train_original(opts, inputs)
        new = train_measured(this_checkout(), inputs.corpus, inputs.extra, inputs.config_path, opts.work_dir)
        cache_dir = opts.work_dir / "cache-new"
        model_dir = resolve_model_dir(Path(new.model))
        manifest = read_manifest(model_dir)
        model_path = model_dir
        source = "trained in this run (fresh token cache)"
        compared = comparison(beside, new) if beside else {"new": new.row()}
    config = config_from_dict(manifest["config"])
    timings: dict[str, dict[str, Any]] = manifest["timings"]
    stages = [{"name": name, **t} for name, t in timings.items()]

    train_file = training_file(manifest, cache_dir)
    repeats = opts.repeats if opts.quick else opts.gensim_repeats
    g_epochs = opts.gensim_epochs or config.word2vec.epochs
    g_config = replace(config, word2vec=replace(config.word2vec, epochs=g_epochs))
    log.info("project word2vec and plain gensim on %s, alternately (%d epoch(s), %d repeat(s))",
             train_file, g_epochs, repeats)
    timings_g: list[GensimTiming] = []
    timings_p: list[float] = []
    for _ in range(repeats):
        # both in this run, one after the other: the pipeline's own stage timing may come from another run
        # (--training-model) under another load, and a ratio across runs measures the load, not the code
        timings_p.append(project_word2vec_seconds(train_file, g_config))
        timings_g.append(gensim_seconds(train_file, g_config))
    vocab_s = median([t.vocab_s for t in timings_g])
    train_s = median([t.train_s for t in timings_g])
    g_seconds = vocab_s + train_s
    g_words = int(manifest["training_words"]) * g_epochs
    gensim_wps = g_words / g_seconds
    project_wps = g_words / median(timings_p)

    lines = list(read_extra_text(list(inputs.extra), IngestReport()))
    if opts.preprocess_lines:
        lines = lines[: opts.preprocess_lines]
    log.info("preprocessing %d lines with n_process 1 and 2", len(lines))
    rate_1 = round(preprocess_throughput(lines, config, 1, opts.repeats), 1)
    rate_2 = round(preprocess_throughput(lines, config, 2, opts.repeats), 1)
    pre: dict[str, Any] = {
        "input_tokens": sum(len(line.split()) for line in lines),
        "lines": len(lines),
        "counting": "whitespace-separated tokens of the input lines (court sentences are pre-tokenized)",
        "repeats": opts.repeats,
        "method": "median over repeats, a fresh Preprocessor per repeat (cold memos), worker pool start included",
        "n_process_1": rate_1,
        "n_process_2": rate_2,
        "target": 200000,
        "target_met": max(rate_1, rate_2) >= 200000,
    }
    return {
        "source": source,
        "model": str(model_path),
        "corpus": [str(p) for p in inputs.corpus],
        "extra_text": [str(p) for p in inputs.extra],
        "documents": manifest.get("counts", {}).get("documents"),
        "training_words": manifest["training_words"],
        "total_seconds": manifest.get("total_seconds"),
        "stages": stages,
        "ingest_documents_per_s": timings["ingest"]["per_second"],
        "preprocess_pipeline_tokens_per_s": timings["preprocess"]["per_second"],
        "word2vec_words_per_s": round(project_wps, 1),
        "word2vec_pipeline_words_per_s": float(timings["word2vec"]["per_second"]),
        "project_word2vec_seconds": round(median(timings_p), 3),
        "peak_rss_mb": max(float(t["peak_rss_mb"]) for t in timings.values()),
        "gensim_seconds": round(g_seconds, 3),
        "gensim_vocab_seconds": round(vocab_s, 3),
        "gensim_train_seconds": round(train_s, 3),
        "gensim_seconds_basis": "measured, same epochs as the project's stage in this run" if
        g_epochs == config.word2vec.epochs else f"both measured with {g_epochs} epoch(s) instead of "
        f"{config.word2vec.epochs}",
        "gensim_words_per_s": round(gensim_wps, 1),
        "gensim_repeats": repeats,
        "gensim_epochs": g_epochs,
        "project_epochs": config.word2vec.epochs,
        "word2vec_vs_gensim_ratio": round(project_wps / gensim_wps, 4),
        "word2vec_ratio_note": "train_word2vec (the pipeline's stage, with normalising) and plain gensim Word2Vec "
                               "on the same phrased file with the same settings, alternately in this run; words/s "
                               "= training words x epochs / seconds (vocabulary pass included) for both",
        "preprocess_tokens_per_s": pre,
        "code_comparison": compared,
    }
