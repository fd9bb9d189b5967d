"""The ``legalsearch`` command: train, serve, evaluate, and quick looks at a model.

Package errors become a one-line reason on stderr and a non-zero exit code (see ``errors.py``); so do I/O errors
(disk full, no permission) that reach the command, with exit code 8.
"""

from __future__ import annotations

import json
import logging
import sys
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
    corpus: Annotated[
        list[Path] | None,
        typer.Option("--corpus", help="Corpus to index: law Markdown (.tar.gz or folder), JSON Lines. Repeatable."),
    ] = None,
    extra_text: Annotated[
        list[Path] | None,
        typer.Option("--extra-text", help="Plain text (.txt, .txt.gz, folder) for embeddings only. Repeatable."),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config (default: built-in).")] = None,
    models_dir: ModelsOpt = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Token cache (default: <models-dir>/../cache).")
    ] = None,
    no_current: Annotated[
        bool, typer.Option("--no-current", help="Do not point models/current at the new model.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each stage.")] = False,
    lock_timeout: Annotated[
        float | None,
        typer.Option("--lock-timeout", min=0, max=86_400,
                     help="Seconds to wait when another run holds the models folder or the token-cache entry "
                     "(default: LEGALSEARCH_TRAIN_LOCK_TIMEOUT_S, 0 = exit at once with code 7)."),
    ] = None,
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
    result = run_training(
        corpora, load_config(config), _models_dir(models_dir), extra_text=extras, cache_dir=cache_dir,
        make_current=not no_current, progress=not quiet, lock_timeout_s=timeout,
    )
    typer.echo(f"ingest: {result.report.summary()}")
    typer.echo(f"{'stage':<12} {'seconds':>8}  {'throughput':>24}  {'peak memory':>12}")
    for name, secs, rate, mem in iter_stage_rows(result.stages):
        typer.echo(f"{name:<12} {secs:>8}  {rate:>24}  {mem:>12}")
    counts = result.manifest["counts"]
    size = sum(f["bytes"] for f in result.manifest["files"].values())
    typer.echo(
        f"model {result.version}: {counts['documents']:,} documents, {counts['vocabulary']:,} keywords, "
        f"{counts['word_vectors']:,} word vectors, {counts['phrases']:,} phrases, "
        f"{size / 2**20:,.1f} MiB, {result.manifest['total_seconds']:.1f} s -> {result.path}"
    )
    if result.current_note:
        raise CurrentMovedError(result.current_note)


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
    if directory.is_dir() and lock.try_acquire():  # a running training owns what it left there
        with lock:
            for path in remove_leftovers(directory, dry_run=dry_run):
                typer.echo(f"{verb} {path} (left by a killed run)")
    report = collect(directory, cache, days, dry_run=dry_run)
    for path in report.leftovers:
        typer.echo(f"{verb} {path} (left by a killed run)")
    for path in report.removed:
        typer.echo(f"{verb} {path}")
    typer.echo(
        f"{verb} {len(report.removed)} token-cache entries ({report.removed_bytes / 2**20:,.1f} MiB); kept "
        f"{report.kept_in_use} used by kept models, {report.kept_recent} used within {days:g} days, "
        f"{report.kept_locked} in use by a running training"
    )


@app.command()
@_fail_cleanly
def models(models_dir: ModelsOpt = None) -> None:
    """List model versions; the current one is marked with '*'."""
    from legalsearch.model import list_models

    found = list_models(_models_dir(models_dir))
    if not found:
        typer.echo(f"no model in {_models_dir(models_dir)}: run `legalsearch train` first")
        return
    for info in found:
        mark = "*" if info.current else " "
        typer.echo(f"{mark} {info.version}  {info.created_at}  {info.documents:,} documents  "
                   f"{info.vocabulary:,} keywords")


@app.command()
@_fail_cleanly
def keywords(
    doc_id: Annotated[str, typer.Argument(help="Document id, e.g. 'BGB § 573'.")],
    k: Annotated[int, typer.Option("-k", help="How many.")] = 20,
    model: ModelOpt = None,
    models_dir: ModelsOpt = None,
) -> None:
    """The TF-IDF keywords of one document."""
    m = _load(model, models_dir)
    for kw in m.keywords(doc_id, k):
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
) -> None:
    """Related terms from the keyword vocabulary (thesaurus suggestions)."""
    from legalsearch.ranking import similar_terms as lookup

    for t in lookup(_load(model, models_dir), term, k, intersection=intersection):
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
) -> None:
    """Hybrid search (BM25 + embeddings with query expansion)."""
    from legalsearch.ranking import search as run

    result = run(_load(model, models_dir), query, k=k)
    if result.expanded_terms:
        typer.echo("expanded: " + ", ".join(f"{e.term} ({e.similarity:.2f})" for e in result.expanded_terms))
    for h in result.hits:
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
    mode: Annotated[
        list[str] | None,
        typer.Option("--mode", help="reference-bm25, lexical, embedding, hybrid (repeatable; default: all)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write the scores as JSON here.")] = None,
    split: Annotated[
        str, typer.Option("--split", help="Queries to report on: test (default), tune (for fitting) or all.")
    ] = "test",
    no_manifest: Annotated[
        bool, typer.Option("--no-manifest", help="Do not record the scores in the model's manifest.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each mode.")] = False,
) -> None:
    """Measure retrieval quality (nDCG@10, MRR@10, R@10, R@100) against the fixed reference BM25."""
    from legalsearch.evaluate import MODES, evaluate, load_queries, parse_filters
    from legalsearch.model import read_manifest, update_manifest

    _logging(verbose)
    if split not in ("tune", "test", "all"):
        raise typer.BadParameter("--split must be tune, test or all")
    m = _load(model, models_dir)
    report = evaluate(
        m, load_queries(queries), modes=mode or MODES, filters=parse_filters(filters or []),
        split=split, progress=not quiet,  # type: ignore[arg-type]
    )
    typer.echo(report.table())
    data = report.to_dict()
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"written to {output}")
    if not no_manifest:
        key = ",".join(sorted(filters or [])) or "all"
        evaluation = dict(read_manifest(m.path).get("evaluation") or {})
        evaluation[f"{queries.name}:{key}:{split}"] = data
        update_manifest(m.path, evaluation=evaluation)


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
) -> None:
    """Serve the HTTP API (FastAPI under uvicorn) from the current model."""
    import os

    import uvicorn

    from legalsearch.model import current_version

    directory = _models_dir(models_dir)
    if train_if_missing and current_version(directory) is None:
        typer.echo(f"no model in {directory}: training on the demo corpus first", err=True)
        train(corpus=None, extra_text=None, config=None, models_dir=directory, cache_dir=None,
              no_current=False, quiet=True, verbose=False)
    os.environ["LEGALSEARCH_MODELS_DIR"] = str(directory)
    from legalsearch.config import ServiceSettings

    options: dict[str, Any] = {"app": "legalsearch.api.app:create_app", "factory": True, "host": host, "port": port,
                               "log_level": ServiceSettings().log_level, "access_log": access_log}
    if workers > 1 and balance:
        from legalsearch.api.workers import run_workers

        status = run_workers(options, workers)
        if status:
            raise typer.Exit(status)
        return
    uvicorn.run(**options, workers=workers)


def _plain(obj: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return obj


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    app(args=list(argv) if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
