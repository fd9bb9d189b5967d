"""The ``legalsearch`` command: train, serve, evaluate, operate model versions, and quick looks at a model.

Package errors and usage errors become a one-line reason on stderr and a non-zero exit code (see ``errors.py``);
so do I/O errors (disk full, no permission) that reach the command, with exit code 8. ``--json`` makes a command
print its results as one JSON document on stdout.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from legalsearch.config import ServiceSettings, load_config
from legalsearch.errors import ConfigError, CurrentMovedError, LegalSearchError, StorageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="legalsearch: search and recommendations for German legal content.",
)
F = TypeVar("F", bound=Callable[..., Any])

DEMO_CORPUS = Path("corpora/demo")
DEMO_EXTRA = Path("corpora/demo/extra")
DEMO_CONFIG = Path("configs/demo.toml")

ModelsOpt = Annotated[
    Path | None,
    typer.Option("--models-dir", help="Models folder (default: LEGALSEARCH_MODELS_DIR or ./models)."),
]
ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="A model version folder (default: the current model).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
_CorpusOpt = Annotated[
    list[Path] | None,
    typer.Option("--corpus", help="Corpus to index: law Markdown (.tar.gz or folder), JSON Lines. Repeatable."),
]
_ExtraTextOpt = Annotated[
    list[Path] | None,
    typer.Option("--extra-text", help="Plain text (.txt, .txt.gz, folder) for embeddings only. Repeatable."),
]
_ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config (default: built-in).")]
_CacheDirOpt = Annotated[
    Path | None, typer.Option("--cache-dir", help="Token cache (default: <models-dir>/../cache).")
]
_NoCurrentOpt = Annotated[bool, typer.Option("--no-current", help="Do not point models/current at the new model.")]
_LockTimeoutOpt = Annotated[
    float | None,
    typer.Option("--lock-timeout", min=0, max=86_400,
                 help="Seconds to wait when another run holds the models folder or the token-cache entry "
                 "(default: LEGALSEARCH_TRAIN_LOCK_TIMEOUT_S, 0 = exit at once with code 7)."),
]
_FeedbackFilesOpt = Annotated[
    list[Path] | None,
    typer.Option("--feedback", help="JSON Lines of labelled questions {query, relevant: [ids]} or clicks "
                 "{query, clicked: id, count}: /search and /recommend learn from them. Repeatable."),
]
_ModeOpt = Annotated[
    list[str] | None,
    typer.Option("--mode", help="reference-bm25, lexical, embedding, hybrid; with a feedback model also votes, "
                 "prior, hybrid-without-votes, hybrid-without-prior, hybrid-without-feedback (repeatable; "
                 "default: all)."),
]
_RunFileOpt = Annotated[
    Path | None,
    typer.Option("--run-file", help="Write TREC run files here, one per mode (runs/x.run -> runs/x.<mode>.run), "
                 "each with its per-query scores beside it (runs/x.<mode>.tsv), and the qrels (runs/x.qrels)."),
]
_SplitOpt = Annotated[
    str, typer.Option("--split", help="Queries to report on: test (default), tune (for fitting) or all.")
]
_NoManifestOpt = Annotated[
    bool, typer.Option("--no-manifest", help="Do not record the scores in the model's manifest.")
]
_FeedbackSplitOpt = Annotated[
    str, typer.Option("--feedback-split", help="Feedback questions used: tune or test (the halves of "
                      "`legalsearch eval`, by sha1 of the question id) or all.")
]


def _version_callback(value: bool) -> None:
    if value:
        import legalsearch

        typer.echo(f"legalsearch {legalsearch.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version_callback, help="Print the version and exit."),
    ] = False,
) -> None:
    """legalsearch: search and recommendations for German legal content."""


def _print_json(data: Any) -> None:
    from legalsearch.model import _json_default

    typer.echo(json.dumps(_plain(data), ensure_ascii=False, indent=2, default=_json_default))


def _settings() -> ServiceSettings:
    """The LEGALSEARCH_* settings; a value out of its range is a one-line ConfigError, not a traceback."""
    from pydantic import ValidationError

    try:
        return ServiceSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "LEGALSEARCH_" + "_".join(str(part) for part in first["loc"]).upper()
        raise ConfigError(f"{name}: {first['msg']} (got {first.get('input')!r})") from None


def _models_dir(value: Path | None) -> Path:
    return value if value is not None else _settings().models_dir


def _fail_cleanly(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LegalSearchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            from legalsearch.locks import describe_os_error

            typer.echo(f"error: {describe_os_error(exc, 'I/O error on')}", err=True)
            raise typer.Exit(StorageError.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _load(model: Path | None, models_dir: Path | None) -> Any:
    from legalsearch.engine import Model
    from legalsearch.model import resolve_model_dir

    return Model.load(model if model is not None else resolve_model_dir(_models_dir(models_dir)))


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
@_fail_cleanly
def train(
    corpus: _CorpusOpt = None,
    extra_text: _ExtraTextOpt = None,
    config: _ConfigOpt = None,
    models_dir: ModelsOpt = None,
    cache_dir: _CacheDirOpt = None,
    no_current: _NoCurrentOpt = False,
    quiet: QuietOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each stage.")] = False,
    lock_timeout: _LockTimeoutOpt = None,
    feedback: _FeedbackFilesOpt = None,
    feedback_split: _FeedbackSplitOpt = "all",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray", help="Build on a Ray cluster: its address, or 'local' for one started on this machine "
                     "bound to 127.0.0.1 and stopped at the end. Writes a sharded model (docs/scale.md); needs "
                     "the scale extra (make install-scale)."),
    ] = None,
    shards: Annotated[int, typer.Option("--shards", min=1, help="With --ray: the number of document shards.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Train a model and write it as a new version under the models folder.

    One run at a time per models folder and per token-cache entry. Exit codes: 7 another run holds a lock,
    8 I/O error (disk full, no permission), 9 model kept but 'current' not moved (it was moved meanwhile).
    """
    from legalsearch.pipeline import iter_stage_rows
    from legalsearch.pipeline import train as run_training

    _logging(verbose)
    corpora = list(corpus or [])
    extras = list(extra_text or [])
    if not corpora:
        corpora, extras = [DEMO_CORPUS], extras or [DEMO_EXTRA]
        if config is None and DEMO_CONFIG.exists():
            config = DEMO_CONFIG
        typer.echo(f"no --corpus given: training on the demo corpus in {DEMO_CORPUS} ({config or 'defaults'})",
                   err=True)
    timeout = lock_timeout if lock_timeout is not None else _settings().train_lock_timeout_s
    if feedback_split not in ("tune", "test", "all"):
        raise typer.BadParameter("--feedback-split must be tune, test or all")
    if ray_address is not None:
        if feedback:
            raise typer.BadParameter("--feedback is not supported with --ray yet")
        _train_sharded(ray_address, corpora, extras, config, models_dir, cache_dir, shards,
                       make_current=not no_current, lock_timeout_s=timeout, as_json=as_json)
        return
    result = run_training(
        corpora, load_config(config), _models_dir(models_dir), extra_text=extras, cache_dir=cache_dir,
        make_current=not no_current, progress=not quiet and not as_json, lock_timeout_s=timeout,
        feedback=list(feedback or []), feedback_split=feedback_split,  # type: ignore[arg-type]
    )
    _print_training(result, as_json, iter_stage_rows, current=not no_current and not result.current_note)
    if result.current_note:
        raise CurrentMovedError(result.current_note)


def _train_sharded(ray_address: str, corpora: list[Path], extras: list[Path], config: Path | None,
                   models_dir: Path | None, cache_dir: Path | None, shards: int, *, make_current: bool,
                   lock_timeout_s: float, as_json: bool) -> None:
    """`train --ray`: the sharded build on a Ray cluster, and its summary."""
    from legalsearch.scale.build import train_on_ray

    sharded = train_on_ray(ray_address, corpora, load_config(config), _models_dir(models_dir), shards,
                           extra_text=extras, cache_dir=cache_dir, make_current=make_current,
                           lock_timeout_s=lock_timeout_s)
    summary = {"version": sharded.version, "path": str(sharded.path), "current": sharded.made_current,
               "shards": [list(b) for b in sharded.shards], "seconds": sharded.seconds}
    if as_json:
        _print_json(summary)
    else:
        typer.echo(f"sharded model {sharded.version}: {len(sharded.shards)} shards "
                   f"{[list(b) for b in sharded.shards]} -> {sharded.path}")
    if sharded.current_note:
        raise CurrentMovedError(sharded.current_note)


def _print_training(result: Any, as_json: bool, stage_rows: Callable[[Any], Any], current: bool) -> None:
    """A training run's summary: ingest, feedback, the stage table and the model (or all of it as JSON)."""
    read = result.feedback
    counts = result.manifest["counts"]
    size = sum(f["bytes"] for f in result.manifest["files"].values())
    if as_json:
        _print_json({"version": result.version, "path": str(result.path),
                     "current": current, "counts": counts, "bytes": size,
                     "total_seconds": result.manifest["total_seconds"], "ingest": result.report.summary(),
                     "feedback": read.summary() if read else None, "stages": list(result.stages)})
    else:
        typer.echo(f"ingest: {result.report.summary()}")
        if read is not None:
            typer.echo(f"feedback: {read.summary()}")
        typer.echo(f"{'stage':<12} {'seconds':>8}  {'throughput':>24}  {'peak memory':>12}")
        for name, secs, rate, mem in stage_rows(result.stages):
            typer.echo(f"{name:<12} {secs:>8}  {rate:>24}  {mem:>12}")
        typer.echo(
            f"model {result.version}: {counts['documents']:,} documents, {counts['vocabulary']:,} keywords, "
            f"{counts['word_vectors']:,} word vectors, {counts['phrases']:,} phrases, "
            f"{size / 2**20:,.1f} MiB, {result.manifest['total_seconds']:.1f} s -> {result.path}"
        )


@app.command()
@_fail_cleanly
def gc(
    models_dir: ModelsOpt = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Token cache (default: <models-dir>/../cache).")
    ] = None,
    older_than_days: Annotated[
        float | None,
        typer.Option("--older-than-days", min=0, max=3_650,
                     help="Remove only entries unused this long (default: LEGALSEARCH_CACHE_MAX_AGE_DAYS)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove token-cache entries no kept model uses, and leftovers of killed training runs."""
    from legalsearch.locks import FileLock
    from legalsearch.model import TRAIN_LOCK, remove_leftovers
    from legalsearch.tokencache import gc as collect

    directory = _models_dir(models_dir)
    cache = cache_dir if cache_dir is not None else directory.parent / "cache"
    days = older_than_days if older_than_days is not None else _settings().cache_max_age_days
    verb = "would remove" if dry_run else "removed"
    lock = FileLock(directory / TRAIN_LOCK, f"models folder {directory}")
    run_leftovers: list[Path] = []
    if directory.is_dir() and lock.try_acquire():  # a running training owns what it left there
        with lock:
            run_leftovers = remove_leftovers(directory, dry_run=dry_run)
    report = collect(directory, cache, days, dry_run=dry_run)
    if as_json:
        _print_json({"dry_run": dry_run, "run_leftovers": [str(p) for p in run_leftovers], **_plain(report),
                     "removed": [str(p) for p in report.removed], "leftovers": [str(p) for p in report.leftovers]})
        return
    for path in run_leftovers:
        typer.echo(f"{verb} {path} (left by a killed run)")
    for path in report.leftovers:
        typer.echo(f"{verb} {path} (left by a killed run)")
    for path in report.removed:
        typer.echo(f"{verb} {path}")
    typer.echo(
        f"{verb} {len(report.removed)} token-cache entries ({report.removed_bytes / 2**20:,.1f} MiB); kept "
        f"{report.kept_in_use} used by kept models, {report.kept_recent} used within {days:g} days, "
        f"{report.kept_locked} in use by a running training"
    )


models_app = typer.Typer(
    no_args_is_help=False,
    help="Model versions: list them (the default), choose the current one, prune old ones.",
)
app.add_typer(models_app, name="models")


def _group_dir(ctx: typer.Context, value: Path | None) -> Path:
    """A subcommand's --models-dir, else the group's (``legalsearch models --models-dir X use V``)."""
    if value is not None:
        return value
    return _models_dir((ctx.obj or {}).get("models_dir"))


@models_app.callback(invoke_without_command=True)
@_fail_cleanly
def models(ctx: typer.Context, models_dir: ModelsOpt = None, as_json: JsonOpt = False) -> None:
    """List model versions; the current one is marked with '*', those a live server serves name its PIDs."""
    ctx.obj = {"models_dir": models_dir}
    if ctx.invoked_subcommand is None:
        _list_models(_models_dir(models_dir), as_json)


@models_app.command("list")
@_fail_cleanly
def models_list(ctx: typer.Context, models_dir: ModelsOpt = None, as_json: JsonOpt = False) -> None:
    """List model versions (as `legalsearch models` does)."""
    _list_models(_group_dir(ctx, models_dir), as_json)


def _list_models(directory: Path, as_json: bool) -> None:
    from legalsearch.model import list_models, serving_markers

    found = list_models(directory)
    serving: dict[str, list[int]] = {}
    for marker in serving_markers(directory):
        serving.setdefault(marker.version, []).append(marker.pid)
    if as_json:
        _print_json([{**_plain(info), "serving_pids": sorted(serving.get(info.version, []))} for info in found])
        return
    if not found:
        typer.echo(f"no model in {directory}: run `legalsearch train` first")
        return
    for info in found:
        mark = "*" if info.current else " "
        pids = serving.get(info.version)
        served = f"  served by pid {', '.join(map(str, sorted(pids)))}" if pids else ""
        typer.echo(f"{mark} {info.version}  {info.created_at}  {info.documents:,} documents  "
                   f"{info.vocabulary:,} keywords{served}")


@models_app.command("use")
@_fail_cleanly
def models_use(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The model version to make current (a folder name).")],
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds to wait until every live server process serves VERSION "
                     "(0: do not wait). Servers follow through their watcher or POST /admin/reload."),
    ] = 0.0,
    models_dir: ModelsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make VERSION the current model (roll back or forward), once it verifies and loads completely."""
    from legalsearch.engine import Model
    from legalsearch.model import current_version, resolve_model_dir, set_current

    directory = _group_dir(ctx, models_dir)
    path = resolve_model_dir(directory, version)
    previous = current_version(directory)
    model = Model.load(path)  # checks every file's hash and that every artifact loads
    set_current(directory, path.name, verify=False)
    behind = _wait_for_servers(directory, path.name, wait) if wait > 0 else []
    result = {"current": path.name, "previous": previous, "changed": previous != path.name,
              "model": model.version, "servers_behind": behind}
    if as_json:
        _print_json(result)
    else:
        typer.echo(f"current model: {path.name} (was {previous or 'none'})")
    if behind:
        from legalsearch.errors import ArtifactError

        raise ArtifactError(
            f"after {wait:g} s, server process(es) {', '.join(behind)} still serve another version "
            "(watcher off? POST /admin/reload; refused? see /readyz)"
        )


def _wait_for_servers(directory: Path, version: str, seconds: float) -> list[str]:
    """Poll the serving markers until every live server serves ``version``; those still behind at the end."""
    from legalsearch.model import serving_markers

    deadline = time.monotonic() + seconds
    while True:
        behind = [f"{m.pid}@{m.host} ({m.version})" for m in serving_markers(directory) if m.version != version]
        if not behind or time.monotonic() >= deadline:
            return behind
        time.sleep(0.2)


@models_app.command("prune")
@_fail_cleanly
def models_prune(
    ctx: typer.Context,
    keep: Annotated[int, typer.Option("--keep", min=0, help="How many of the newest versions to keep.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    models_dir: ModelsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete all but the KEEP newest versions; the current one and any a live server serves always stay."""
    from legalsearch.model import prune_models

    result = prune_models(_group_dir(ctx, models_dir), keep, dry_run=dry_run)
    if as_json:
        _print_json(result)
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {len(result.removed)} version(s){': ' if result.removed else ''}{', '.join(result.removed)}")
    for version, why in result.kept.items():
        typer.echo(f"kept {version} ({why})")


@app.command()
@_fail_cleanly
def keywords(
    doc_id: Annotated[str, typer.Argument(help="Document id, e.g. 'BGB § 573'.")],
    k: Annotated[int, typer.Option("-k", help="How many.")] = 20,
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The TF-IDF keywords of one document."""
    m = _load(model, models_dir)
    found = m.keywords(doc_id, k)
    if as_json:
        _print_json({"model": m.version, "doc_id": doc_id, "keywords": list(found)})
        return
    for kw in found:
        typer.echo(f"{kw.weight:.4f}  {kw.term}")


@app.command("similar-terms")
@_fail_cleanly
def similar_terms(
    term: Annotated[str, typer.Argument(help="A term, e.g. 'kündigung' or 'ordentliche kündigung'.")],
    k: Annotated[int, typer.Option("-k", help="How many.")] = 10,
    intersection: Annotated[
        bool, typer.Option("--intersection", help="Keep only neighbours all seed variants agree on.")
    ] = False,
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Related terms from the keyword vocabulary (thesaurus suggestions)."""
    from legalsearch.ranking import similar_terms as lookup

    m = _load(model, models_dir)
    found = lookup(m, term, k, intersection=intersection)
    if as_json:
        _print_json({"model": m.version, "term": term, "similar": list(found)})
        return
    for t in found:
        typer.echo(f"{t.score:.4f}  {t.term}")


@app.command()
@_fail_cleanly
def recommend(
    doc_id: Annotated[str | None, typer.Argument(help="Seed document id, e.g. 'BGB § 573'.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Recommend for a free text instead.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
) -> None:
    """Documents related to a document or a text, with the shared keywords that explain them."""
    from legalsearch.ranking import recommend as run

    if (doc_id is None) == (text is None):
        raise typer.BadParameter("give a DOC_ID or --text, not both")
    m = _load(model, models_dir)
    result = run(m, positive=[doc_id] if doc_id else [], text=text, k=k)
    if as_json:
        typer.echo(json.dumps([_plain(r) for r in result.results], ensure_ascii=False, indent=2))
        return
    for r in result.results:
        why = ", ".join(kw.term for kw in r.keywords[:5])
        typer.echo(f"{r.score:.3f}  {r.doc_id:<24} {r.title[:60]}")
        if why:
            typer.echo(f"       shares: {why}")


@app.command()
@_fail_cleanly
def search(
    query: Annotated[str, typer.Argument(help="A question or keywords.")],
    k: Annotated[int, typer.Option("-k", help="How many.")] = 10,
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search (BM25 + embeddings with query expansion)."""
    from legalsearch.ranking import search as run

    result = run(_load(model, models_dir), query, k=k)
    if as_json:
        _print_json(result)
        return
    if result.expanded_terms:
        typer.echo("expanded: " + ", ".join(f"{e.term} ({e.similarity:.2f})" for e in result.expanded_terms))
    for h in result.results:
        typer.echo(f"{h.score:7.3f}  {h.doc_id:<24} {h.title[:60]}")


@app.command()
@_fail_cleanly
def citations(
    doc_id: Annotated[str, typer.Argument(help="Citing document id, e.g. 'BGB § 573'.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
) -> None:
    """What a document cites: resolved citations with titles, then the unresolved ones as written."""
    from legalsearch.citegraph import outgoing

    out = outgoing(_load(model, models_dir), doc_id)
    if as_json:
        typer.echo(json.dumps({"id": out.doc_id, "citations": [_plain(link) for link in out.links],
                               "unresolved": list(out.unresolved)}, ensure_ascii=False, indent=2))
        return
    for link in out.links:
        typer.echo(f"{link.count:>3}x  {link.id:<28} {link.title[:50]:<50}  [{link.surface}]")
    for item in out.unresolved:
        typer.echo(f"  -   {item['surface']:<28} unresolved: {item['reason']}")
    if not out.links and not out.unresolved:
        typer.echo(f"{doc_id} cites nothing")


@app.command("cited-by")
@_fail_cleanly
def cited_by(
    doc_id: Annotated[str, typer.Argument(help="Cited document id, e.g. 'BGB § 573'.")],
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only citing documents of this type (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many.")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="How many to skip.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
) -> None:
    """Which documents cite a document, most citations first."""
    from legalsearch.citegraph import incoming

    page = incoming(_load(model, models_dir), doc_id, types or (), offset, limit)
    if as_json:
        typer.echo(json.dumps({"id": page.doc_id, "total": page.total,
                               "cited_by": [_plain(link) for link in page.links]}, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{page.total} document(s) cite {doc_id}")
    for link in page.links:
        typer.echo(f"{link.count:>3}x  {link.id:<28} {link.type:<9} [{link.surface}]")


@app.command("eval")
@_fail_cleanly
def eval_(
    queries: Annotated[Path, typer.Option("--queries", help="JSON Lines {id, query, relevant: [doc ids]}.")],
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="Restrict the collection, FIELD=VALUE (e.g. law=BGB).")
    ] = None,
    mode: _ModeOpt = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write the scores as JSON here.")] = None,
    run_file: _RunFileOpt = None,
    split: _SplitOpt = "test",
    no_manifest: _NoManifestOpt = False,
    quiet: QuietOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each mode.")] = False,
    as_json: JsonOpt = False,
    task: Annotated[
        str, typer.Option("--task", help="search (questions -> documents) or recommend (seed -> co-relevant).")
    ] = "search",
    seeds_output: Annotated[
        Path | None, typer.Option("--seeds-output", help="recommend: write per-seed figures as JSON Lines here.")
    ] = None,
    feedback: Annotated[
        bool, typer.Option("--feedback", help="recommend: also fuse co-relevance from the tune half's answers.")
    ] = False,
) -> None:
    """Measure retrieval quality (nDCG@10, MRR@10, R@10, R@100) against the fixed reference BM25, with paired
    significance tests between the modes on per-query nDCG@10.

    With --task recommend: recommendations by seed document against More-Like-This and the neighbouring
    sections (docs/evaluation.md)."""
    from legalsearch.evaluate import evaluate, load_queries, parse_filters
    from legalsearch.model import read_manifest, update_manifest

    _logging(verbose)
    if split not in ("tune", "test", "all"):
        raise typer.BadParameter("--split must be tune, test or all")
    if task not in ("search", "recommend"):
        raise typer.BadParameter("--task must be search or recommend")
    m = _load(model, models_dir)
    if task == "recommend":
        _eval_recommend(m, queries, filters or [], split, output, seeds_output, feedback, quiet, no_manifest)
        return
    report = evaluate(
        m, load_queries(queries), modes=mode or None, filters=parse_filters(filters or []),
        split=split, progress=not quiet and not as_json,  # type: ignore[arg-type]
    )
    data = report.to_dict()
    written = _write_eval_files(report, data, output, run_file)
    if as_json:
        _print_json({**data, "written": [str(w) for w in written]})
    else:
        typer.echo(report.table())
        for path in written:
            typer.echo(f"written to {path}")
    if not no_manifest:
        key = ",".join(sorted(filters or [])) or "all"
        evaluation = dict(read_manifest(m.path).get("evaluation") or {})
        evaluation[f"{queries.name}:{key}:{split}"] = data
        update_manifest(m.path, evaluation=evaluation)


def _write_eval_files(report: Any, data: dict[str, Any], output: Path | None, run_file: Path | None) -> list[Path]:
    """The scores as JSON (``--output``) and the TREC run files (``--run-file``); the files written."""
    from legalsearch.evaluate import write_run_files

    written: list[Path] = []
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(output)
    if run_file is not None:
        written += write_run_files(report, run_file)
    return written


def _eval_recommend(m: Any, queries: Path, filters: list[str], split: str, output: Path | None,
                    seeds_output: Path | None, feedback: bool, quiet: bool, no_manifest: bool) -> None:
    from legalsearch.evaluate import load_queries, parse_filters
    from legalsearch.model import read_manifest, update_manifest
    from legalsearch.recommend_eval import evaluate_recommend

    report = evaluate_recommend(m, load_queries(queries), parse_filters(filters), split,  # type: ignore[arg-type]
                                progress=not quiet, feedback=feedback)
    typer.echo(report.table())
    data = report.to_dict()
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"written to {output}")
    if seeds_output is not None:
        report.write_seeds(seeds_output)
        typer.echo(f"per-seed figures written to {seeds_output}")
    if not no_manifest:
        key = ",".join(sorted(filters)) or "all"
        evaluation = dict(read_manifest(m.path).get("evaluation") or {})
        evaluation[f"{queries.name}:recommend{'+feedback' if feedback else ''}:{key}:{split}"] = {
            name: scores for name, scores in data["systems"].items()}
        update_manifest(m.path, evaluation=evaluation)


@app.command("fit-recommend")
@_fail_cleanly
def fit_recommend(
    queries: Annotated[Path, typer.Option("--queries", help="JSON Lines {id, query, relevant}: its tune half fits.")],
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="Seeds and candidates from this collection (law=BGB).")
    ] = None,
    feedback: Annotated[
        bool, typer.Option("--feedback", help="Store the tune half's co-relevance in the model and fuse it too.")
    ] = False,
    width: Annotated[
        int, typer.Option("--width", min=0, help="Related documents precomputed per document (0: none).")
    ] = 64,
    quiet: QuietOpt = False,
) -> None:
    """Fit /recommend's fusion of relatedness signals on the tune half of labelled questions and store it in
    the model (recommend_fusion.json, the related table for one-seed requests; listed in the manifest)."""
    from legalsearch.evaluate import load_queries, parse_filters
    from legalsearch.recommend_eval import fit_model_fusion

    m = _load(model, models_dir)
    fusion, written = fit_model_fusion(m, load_queries(queries), parse_filters(filters or []), feedback, width,
                                       progress=not quiet)
    typer.echo(f"fusion of {', '.join(fusion.signals)} fitted on {fusion.info.get('fitted_on')} tune seeds "
               f"({fusion.info.get('kind')}):")
    if fusion.trees is not None:
        typer.echo(f"  {fusion.trees.roots.size} trees, {fusion.trees.feature.size} nodes, depth {fusion.trees.depth}")
    for name, w in fusion.weights.items():
        typer.echo(f"  {name:<16} {w:+.4f}")
    typer.echo(f"written: {', '.join(p.name for p in written)}")


@app.command()
@_fail_cleanly
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="uvicorn worker processes.")] = 1,
    balance: Annotated[
        bool,
        typer.Option(
            "--balance/--no-balance",
            help="With several workers: the main process hands each new connection to the worker with fewest open "
            "ones (default), instead of letting uvicorn's workers race for them.",
        ),
    ] = True,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log one line per request (uvicorn's access log).")
    ] = True,
    models_dir: ModelsOpt = None,
    train_if_missing: Annotated[
        bool, typer.Option("--train-if-missing", help="Train on the demo corpus first when there is no model.")
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray", help="Serve a sharded model (train --ray --shards K) as a Ray Serve application on "
                     "this cluster address, or 'local' for one started here bound to 127.0.0.1 (docs/scale.md)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="With --ray: the sharded version folder (default: the models folder's "
                     "current one)."),
    ] = None,
    shard_replicas: Annotated[
        int, typer.Option("--shard-replicas", min=1, help="With --ray: replicas per shard deployment.")
    ] = 2,
) -> None:
    """Serve the HTTP API (FastAPI under uvicorn) from the current model; with --ray, a sharded model on Ray
    Serve (one deployment per shard, an ingress with today's routes)."""
    from legalsearch.model import current_version

    directory = _models_dir(models_dir)
    if ray_address is not None:
        _serve_on_ray(ray_address, model or directory, host, port, shard_replicas)
        return
    if train_if_missing and current_version(directory) is None:
        typer.echo(f"no model in {directory}: training on the demo corpus first", err=True)
        train(corpus=None, extra_text=None, config=None, models_dir=directory, cache_dir=None,
              no_current=False, quiet=True, verbose=False)
    _serve_uvicorn(directory, host, port, workers, balance=balance, access_log=access_log)


def _serve_uvicorn(directory: Path, host: str, port: int, workers: int, *, balance: bool, access_log: bool) -> None:
    """The single-node server: uvicorn with one process, or several workers (balanced by default)."""
    import os

    import uvicorn

    from legalsearch.api.app import create_app
    from legalsearch.api.http import PROTOCOL

    settings = _settings().model_copy(update={"models_dir": directory})
    options: dict[str, Any] = {
        # the settings travel to each worker as the factory's argument (pickled for spawned workers)
        "app": functools.partial(create_app, settings), "factory": True, "host": host, "port": port,
        "log_level": settings.log_level, "access_log": access_log,
        # JSON 414/431/408 and a deadline for request heads (legalsearch.api.http), idle and concurrency limits
        "http": PROTOCOL, "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.limit_concurrency or None,
    }
    if workers > 1 and balance:
        from legalsearch.api.workers import run_workers

        status = run_workers(options, workers)
        if status:
            raise typer.Exit(status)
        return
    if workers > 1:
        # uvicorn's own worker pool imports the app by name in each worker, so the settings go by environment
        os.environ["LEGALSEARCH_MODELS_DIR"] = str(directory)
        options["app"] = "legalsearch.api.app:create_app"
    uvicorn.run(**options, workers=workers)


def _serve_on_ray(address: str, model: Path, host: str, port: int, replicas: int) -> None:
    """``serve --ray``: deploy the sharded model's Serve application and keep it up until interrupted."""
    import time

    from legalsearch.scale import serve as served
    from legalsearch.scale.cluster import ray_session

    served.sharded_version(model)  # a clear error before any cluster starts
    with ray_session(address, nodes=2):
        from ray import serve

        served.run(model, host=host, port=port, replicas=replicas)
        typer.echo(f"serving the sharded model {model} on http://{host}:{port} (Ray Serve; Ctrl-C stops it)",
                   err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            serve.shutdown()


def _plain(obj: Any) -> Any:
    """Dataclasses (nested in lists and dicts too) as dicts, for JSON."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: usage errors are one line on stderr too (click would print a box with the usage)."""
    try:
        status = app(args=list(argv) if argv is not None else sys.argv[1:], standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # click's (or typer's vendored click's) usage errors; duck-typed, as typer moved them between versions
        format_message = getattr(exc, "format_message", None)
        if not callable(format_message):
            raise
        code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(format_message(), err=True)
            sys.exit(code)
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {' '.join(str(format_message()).split())}{where}", err=True)
        sys.exit(code)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
