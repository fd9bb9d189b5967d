"""Entry point: ``python -m bench.run [--suite training,serving,memory,scale] [--quick] ...``.

Writes ``bench/results/<YYYY-MM-DD>-<git short sha>.json`` with the Markdown table and PNG plots beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, RESULTS_DIR, load_average
from bench.report import machine_info, result_stem, write_report

#: scale-large (IVF-PQ with refine up to 10M streamed vectors, ~30 min) runs only when named
SUITES = ("training", "serving", "memory", "scale", "citations", "scale-large")
DEFAULT_SUITES = SUITES[:-1]
log = logging.getLogger("bench")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=",".join(DEFAULT_SUITES),
                   help="comma-separated suites (default: all but scale-large)")
    p.add_argument("--quick", action="store_true", help="tiny inputs (demo corpus, short loads, few vectors)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per figure; the median is reported")
    p.add_argument("--models-dir", type=Path, default=Path("models"),
                   help="models folder whose current model serving/memory use when --model is not given")
    p.add_argument("--model", type=Path, default=None, help="model (version folder or models folder) to serve")
    p.add_argument("--shared", type=Path,
                   default=Path(os.environ.get("LEGALSEARCH_SHARED") or REPO_ROOT.parent / "shared"))
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where result files go")
    p.add_argument("--stem", default=None, help="file name stem (default <date>-<git short sha>)")
    p.add_argument("--training-model", type=Path, default=None,
                   help="reuse this trained model's manifest timings instead of training (needs --training-cache)")
    p.add_argument("--training-cache", type=Path, default=None, help="cache dir the --training-model used")
    p.add_argument("--preprocess-lines", type=int, default=100000,
                   help="court-sentence lines for the preprocessing measurement (0 = all)")
    p.add_argument("--duration", type=float, default=None, help="seconds per load point (default 8; quick 0.5)")
    p.add_argument("--concurrency", default=None, help="connections, comma-separated (default 1,16,64; quick 1,2)")
    p.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto",
                   help="load generator (auto: wrk when installed, else async httpx)")
    p.add_argument("--in-process-calls", type=int, default=None,
                   help="calls per in-process operation in the serving suite (default 100; quick 20)")
    p.add_argument("--scale-n", type=int, default=None, help="vectors in the scale suite (default 1,000,000)")
    p.add_argument("--scale-dim", type=int, default=200, help="vector dimensions in the scale suite")
    p.add_argument("--scale-hnsw-sizes", default=None,
                   help="sizes at which HNSW is built (default 100000,200000,1000000; quick: the scale-n)")
    p.add_argument("--scale-large-sizes", default=None,
                   help="scale-large: collection sizes (default 1000000,10000000; quick 20000)")
    p.add_argument("--scale-large-queries", type=int, default=None, help="scale-large: queries (default 1000)")
    p.add_argument("--scale-large-nprobe", default="8,16,32,64", help="scale-large: nprobe values of the grid")
    p.add_argument("--scale-large-k-factor", default="1,4,8,16,32", help="scale-large: refine k_factors of the grid")
    p.add_argument("--scale-large-index", default=None,
                   help="scale-large: indexes as NLIST:M[:SQ8|fp16], comma-separated (default: the suite's choice "
                   "per size, bench.scale_large.default_spec)")
    p.add_argument("--faiss-threads", type=int, default=2, help="scale-large: FAISS threads of build and batch")
    p.add_argument("--workers", type=int, default=2,
                   help="uvicorn workers of the served API in the serving suite (default 2, one per core)")
    p.add_argument("--no-balance", action="store_true",
                   help="serve with uvicorn's own workers racing for connections instead of legalsearch's balancer")
    p.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--gensim-epochs", type=int, default=None,
                   help="epochs of the plain gensim baseline (default: the model's); words/s stays comparable")
    p.add_argument("--baseline", default=None,
                   help="original code trained beside this one in the training suite: a git ref or a checkout's "
                   "folder, or none (default: 7f662ea, the code issue 19 measured; none with --quick)")
    p.add_argument("--serving-baseline-code", type=Path, default=None,
                   help="a checkout of the original code (folder with src/) served beside this one in the serving "
                   "suite; default: the original code the training suite trained in the same run, if any")
    p.add_argument("--serving-baseline-model", type=Path, default=None,
                   help="the original code's model (models or version folder) for --serving-baseline-code")
    p.add_argument("--merge", action="store_true",
                   help="keep the sections of an existing <stem>.json that this run does not redo")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _serving_model(args: argparse.Namespace, results: dict[str, Any]) -> Path:
    if args.model is not None:
        return args.model
    trained = results.get("training", {}).get("model")
    return Path(trained) if trained else args.models_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected suites and write the result files; non-zero exit when a suite failed."""
    args = parse_args(argv)
    # a terminated run still stops the uvicorn it started (context managers run on SystemExit)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per warm-up request drowns the log
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(SUITES)}", file=sys.stderr)
        return 2
    stem = args.stem or result_stem()
    started = time.time()
    results: dict[str, Any] = {
        "run": {"stem": stem, "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "load_start": [round(x, 2) for x in load_average()], "repeats": args.repeats, "quick": args.quick,
                "suites": suites, "argv": list(argv) if argv is not None else sys.argv[1:]},
        "machine": machine_info(),
    }
    previous = args.out_dir / f"{stem}.json"
    if args.merge and previous.is_file():
        old = json.loads(previous.read_text(encoding="utf-8"))
        for name in SUITES:
            if name in old and name not in suites:
                results[name] = old[name]
        results["run"]["merged_from_earlier_runs"] = [n for n in SUITES if n in old and n not in suites]
    failed = False
    with tempfile.TemporaryDirectory(prefix="legalsearch-bench-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "training": lambda: _training(args, work),
            "serving": lambda: _serving(args, work, results),
            "memory": lambda: _memory(args, work, results),
            "scale": lambda: _scale(args),
            "citations": lambda: _citations(args),
            "scale-large": lambda: _scale_large(args),
        }
        for name in SUITES:
            if name not in suites:
                continue
            load_before = [round(x, 2) for x in load_average()]
            log.info("suite %s: started (load %s)", name, load_before)
            t0 = time.perf_counter()
            try:
                results[name] = runners[name]()
            except Exception as exc:  # one broken suite must not lose the others' figures
                log.error("suite %s failed: %s", name, exc)
                results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                failed = True
            results[name]["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            results[name]["load_before"] = load_before
            results[name]["suite_seconds"] = round(time.perf_counter() - t0, 1)
            results[name]["load_after"] = [round(x, 2) for x in load_average()]
    results["run"]["load_end"] = [round(x, 2) for x in load_average()]
    results["run"]["wall_seconds"] = round(time.time() - started, 1)
    files = write_report(results, args.out_dir, stem)
    print(f"wrote {files.json}, {files.markdown}" + "".join(f", {p}" for p in files.plots))
    return 1 if failed else 0


def _training(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench.training import TrainingOptions, run_training
    from bench.trainrun import BASELINE_REF

    out = run_training(TrainingOptions(
        shared=args.shared, work_dir=work / "training", repeats=args.repeats, quick=args.quick,
        reuse_model=args.training_model, reuse_cache=args.training_cache,
        preprocess_lines=args.preprocess_lines, gensim_epochs=args.gensim_epochs,
        baseline=args.baseline or ("none" if args.quick else BASELINE_REF),
    ))
    return out


def _serving(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> dict[str, Any]:
    from bench.serving import CONCURRENCY, ServingOptions, run_serving

    duration = args.duration if args.duration is not None else (0.5 if args.quick else 8.0)
    conc = _ints(args.concurrency) if args.concurrency else ((1, 2) if args.quick else CONCURRENCY)
    return run_serving(ServingOptions(
        model=_serving_model(args, results), work_dir=work / "serving", repeats=args.repeats,
        duration_s=duration, concurrency=conc, client=args.client,
        in_process_calls=args.in_process_calls or (20 if args.quick else 100), workers=args.workers,
        balance=not args.no_balance, **_serving_baseline(args, results),
    ))


def _serving_baseline(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Path]:
    """The original code and model to serve beside this code: given, or the training suite's of this run."""
    if args.serving_baseline_code is not None:
        if args.serving_baseline_model is None:
            raise SystemExit("--serving-baseline-code needs --serving-baseline-model")
        return {"baseline_code": args.serving_baseline_code, "baseline_model": args.serving_baseline_model}
    original = results.get("training", {}).get("code_comparison", {}).get("original", {})
    if not original.get("model"):
        return {}
    # bench.trainrun exports the original code beside the models folder it trains into
    code = Path(original["model"]).parent / f"code-{original.get('commit')}"
    return {"baseline_code": code, "baseline_model": Path(original["model"])} if code.is_dir() else {}


def _memory(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> dict[str, Any]:
    from bench.memory import run_memory

    # quick: only the two-worker case, the one with sharing to show (each server start costs seconds)
    return run_memory(_serving_model(args, results), work / "memory", worker_counts=(2,) if args.quick else (1, 2),
                      warm_rounds=1)


def _scale(args: argparse.Namespace) -> dict[str, Any]:
    from bench.scale import run_scale

    n = args.scale_n or (500 if args.quick else 1_000_000)
    default_hnsw = (n,) if args.quick else (100_000, 200_000, n)
    hnsw = _ints(args.scale_hnsw_sizes) if args.scale_hnsw_sizes else default_hnsw
    return run_scale(n=n, d=args.scale_dim, hnsw_sizes=hnsw, queries=20 if args.quick else 500)


def _scale_large(args: argparse.Namespace) -> dict[str, Any]:
    from bench.scale_large import IndexSpec, run_scale_large

    sizes = _ints(args.scale_large_sizes) if args.scale_large_sizes else ((20_000,) if args.quick else
                                                                          (1_000_000, 10_000_000))
    specs = None
    if args.scale_large_index:
        specs = [IndexSpec(int(f[0]), int(f[1]), *(f[2:3])) for f in
                 (item.split(":") for item in args.scale_large_index.split(",") if item.strip())]
    queries = args.scale_large_queries or (50 if args.quick else 1000)
    return run_scale_large(sizes, d=args.scale_dim, queries=queries, nprobes=_ints(args.scale_large_nprobe),
                           k_factors=_ints(args.scale_large_k_factor), threads=args.faiss_threads, specs=specs,
                           chunk=20_000 if args.quick else 200_000)


def _citations(args: argparse.Namespace) -> dict[str, Any]:
    from bench.citations import run_citations

    return run_citations(args.shared, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
