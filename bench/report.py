"""Machine description and the result files: JSON, a Markdown table and small PNG plots."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

import legalsearch
from bench import REPO_ROOT

_LIBRARIES = ("numpy", "scipy", "scikit-learn", "gensim", "spacy", "faiss-cpu", "bm25s", "fastapi", "uvicorn",
              "httpx", "legalsearch")


@dataclass(frozen=True)
class ReportFiles:
    """Paths of one run's result files."""

    json: Path
    markdown: Path
    plots: tuple[Path, ...]


def git_short_sha() -> str:
    """Short commit of the working tree ("unknown" outside git); "-dirty" when tracked files changed."""
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha or "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _wrk_version() -> str | None:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=5, check=False)
    except OSError:
        return None
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else None


def machine_info() -> dict[str, Any]:
    """CPU, cores, RAM, Python and library versions of this machine."""
    versions: dict[str, str] = {}
    for lib in _LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "absent"
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": versions,
        "wrk": _wrk_version(),
        "legalsearch_imported_from": str(Path(legalsearch.__file__).parent),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
    }


def result_stem(now: datetime | None = None) -> str:
    """``<YYYY-MM-DD>-<git short sha>``: the file name of a run's results."""
    now = now or datetime.now(UTC)
    return f"{now:%Y-%m-%d}-{git_short_sha()}"


def _fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "–" if value is None else str(value)


def markdown(results: dict[str, Any]) -> str:
    """The run as Markdown tables (one per suite that ran)."""
    m = results.get("machine", {})
    lines = [f"# legalsearch benchmarks {results.get('run', {}).get('stem', '')}", ""]
    run = results.get("run", {})
    lines += [
        f"Machine: {m.get('cpu_model')}, {m.get('logical_cores')} logical cores, {m.get('ram_gib')} GiB RAM, "
        f"Python {m.get('python')}. Load average (1/5/15 min) at start {run.get('load_start')}, "
        f"at end {run.get('load_end')}. Repeats: {run.get('repeats')}; quick: {run.get('quick')}.",
        "",
    ]
    if run.get("merged_from_earlier_runs"):
        lines += [f"Sections kept from earlier runs of this file (`--merge`): "
                  f"{', '.join(run['merged_from_earlier_runs'])}. {run.get('merge_note', '')}".rstrip(), ""]
    tr = results.get("training")
    if tr and "error" not in tr:
        lines += [f"## Training ({tr.get('source')})", "", "| stage | seconds | items | throughput | peak RSS MB |",
                  "|---|---:|---:|---:|---:|"]
        for s in tr.get("stages", []):
            lines.append(f"| {s['name']} | {_fmt(s['seconds'])} | {_fmt(s['items'])} | "
                         f"{_fmt(s['per_second'], 0)} {s['unit']}/s | {_fmt(s['peak_rss_mb'], 0)} |")
        lines += _code_comparison(tr.get("code_comparison") or {})
        pre = tr.get("preprocess_tokens_per_s", {})
        lines += [
            "",
            f"- word2vec: project {_fmt(tr.get('word2vec_words_per_s'), 0)} words/s, plain gensim "
            f"{_fmt(tr.get('gensim_words_per_s'), 0)} words/s → ratio **{_fmt(tr.get('word2vec_vs_gensim_ratio'), 3)}**"
            " (target ≥ 0.9)",
            f"- preprocessing (Preprocessor.pipe, input whitespace tokens/s over {_fmt(pre.get('input_tokens'))} "
            f"tokens): n_process=1 **{_fmt(pre.get('n_process_1'), 0)}**, n_process=2 "
            f"**{_fmt(pre.get('n_process_2'), 0)}** (target ≥ 200,000)",
            "",
        ]
    sv = results.get("serving")
    if sv and "error" not in sv:
        lines += [f"## Serving ({sv.get('client')}, {sv.get('duration_s')} s per point, model "
                  f"{sv.get('model_documents'):,} documents)", "",
                  f"{sv.get('server', '')}. Server CPU = CPU time of all server processes per request.", "",
                  "| endpoint | connections | p50 ms | p99 ms | req/s | server CPU ms/request | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for row in sv.get("load", []):
            cpu = _fmt(row.get("server_cpu_ms_per_request"), 2)
            if row["p50_ms"] is None:
                lines.append(f"| {row['endpoint']} | {row['connections']} | none completed | none completed | "
                             f"{_fmt(row['requests_per_s'], 1)} | {cpu} | {row['errors']} |")
                continue
            lines.append(f"| {row['endpoint']} | {row['connections']} | {_fmt(row['p50_ms'], 2)} | "
                         f"{_fmt(row['p99_ms'], 2)} | {_fmt(row['requests_per_s'], 0)} | {cpu} | {row['errors']} |")
        if sv.get("paced"):
            lines += ["", "Paced: 16 connections offering a set rate (random think time between a response and the "
                      "next request), i.e. the latency at that load rather than at saturation.", "",
                      "| endpoint | offered req/s | achieved req/s | p50 ms | p99 ms | server CPU ms/request "
                      "| errors |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for row in sv["paced"]:
                lines.append(f"| {row['endpoint']} | {_fmt(row['offered_per_s'], 0)} | "
                             f"{_fmt(row['requests_per_s'], 0)} | {_fmt(row['p50_ms'], 2)} | "
                             f"{_fmt(row['p99_ms'], 2)} | "
                             f"{_fmt(row.get('server_cpu_ms_per_request'), 2)} | {row['errors']} |")
        lines += ["", "| in-process operation | p50 ms | p99 ms |", "|---|---:|---:|"]
        for name, row in sv.get("in_process", {}).items():
            lines.append(f"| {name} | {_fmt(row['p50_ms'], 3)} | {_fmt(row['p99_ms'], 3)} |")
        lines += ["", "| API overhead (HTTP p50 at 1 connection ÷ in-process p50) | ratio |", "|---|---:|"]
        for name, value in sv.get("overhead_ratio", {}).items():
            lines.append(f"| {name} | {_fmt(value, 2)} |")
        lines += ["", "| target (16 connections) | measured | met |", "|---|---|---|"]
        for t in sv.get("targets", []):
            lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
        lines.append("")
        lines += _against_original_lines(sv)
    mem = results.get("memory")
    if mem and "error" not in mem:
        lines += ["## Memory per process after warm-up", "", "| workers | process | RSS MB | PSS MB | private MB |",
                  "|---:|---|---:|---:|---:|"]
        for run_ in mem.get("runs", []):
            for p in run_["processes"]:
                lines.append(f"| {run_['workers']} | {p['role']} | {_fmt(p['rss_mb'], 0)} | {_fmt(p['pss_mb'], 0)} "
                             f"| {_fmt(p['private_mb'], 0)} |")
        lines.append("")
    sc = results.get("scale")
    if sc and "error" not in sc:
        lines += [f"## Scale (synthetic clustered vectors, d={sc.get('dimensions')}, {sc.get('queries')} queries, "
                  f"faiss threads {sc.get('faiss_threads')})", "",
                  "| n | index | build s | disk MB | RSS Δ MB | recall@10 | p50 ms | p99 ms | note |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in sc.get("rows", []):
            lines.append(f"| {_fmt(r['n'])} | {r['index']} | {_fmt(r['build_s'], 1)} | {_fmt(r['disk_mb'], 0)} | "
                         f"{_fmt(r['rss_delta_mb'], 0)} | {_fmt(r['recall_at_10'], 3)} | {_fmt(r['p50_ms'], 2)} | "
                         f"{_fmt(r['p99_ms'], 2)} | {r.get('note', '')} |")
        rule = sc.get("rule", {})
        lines += ["", f"Rule: {rule.get('description')}; recommendation: {rule.get('recommendation')}", ""]
    lines += _citations_markdown(results.get("citations"))
    lines += _scale_large_markdown(results.get("scale-large"))
    for name in ("training", "serving", "memory", "scale", "citations", "scale-large"):
        section = results.get(name)
        if section and "error" in section:
            lines += [f"## {name}: FAILED", "", f"    {section['error']}", ""]
    return "\n".join(lines)


def _citations_markdown(ci: dict[str, Any] | None) -> list[str]:
    if not ci or "error" in ci:
        return []
    g = ci["graph"]
    lines = [f"## Citation graph ({ci['corpus']})", "",
             f"Built in **{_fmt(g['build_seconds'], 1)} s** over {_fmt(g['documents'])} documents "
             f"({_fmt(g['artifact_bytes'] / 2**20, 1)} MiB): {_fmt(g['citations'])} citations, {_fmt(g['resolved'])} "
             f"resolved, unresolved {g['unresolved']}, {_fmt(g['self_citations'])} self-citations, "
             f"{_fmt(g['capped_ranges'])} capped ranges; {_fmt(g['edges'])} edges {g['edges_by_kind']}. Statute "
             f"sections citing another document: {g['share_statutes_citing']:.1%}; cited: "
             f"{g['share_statutes_cited']:.1%}.", "",
             "| most cited | citations | citing documents |", "|---|---:|---:|"]
    lines += [f"| {m['id']} | {_fmt(m['citations'])} | {_fmt(m['citing'])} |" for m in g["most_cited"][:15]]
    sample = ci.get("sample")
    if isinstance(sample, dict):
        lines += ["", f"Labelled sample ({sample['passages']} passages):", "",
                  "| extractor | labelled | predicted | precision | recall | resolution accuracy |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key in ("ours", "refex"):
            s = sample[key]
            if isinstance(s, str):
                lines.append(f"| {key} | {s} | | | | |")
            else:
                lines.append(f"| {s['name']} | {s['labelled']} | {s['predicted']} | {s['precision']:.3f} | "
                             f"{s['recall']:.3f} | {s['resolution_accuracy']:.3f} |")
    elif sample:
        lines += ["", f"Labelled sample: {sample}"]
    return [*lines, ""]


def _figure(height: float) -> tuple[Any, Any]:
    """A figure 6 inches wide at 80 dpi and its axes, drawn without a display (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, height), dpi=80)


def _save(fig: Any, path: Path) -> bool:
    """Write ``fig`` to ``path`` and free it; True (a plot was written)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _plot_citations(results: dict[str, Any], path: Path) -> bool:
    top = results.get("citations", {}).get("graph", {}).get("most_cited", [])
    if not top:
        return False
    top = top[:15][::-1]
    fig, ax = _figure(4)
    ax.barh(range(len(top)), [m["citations"] for m in top])
    ax.set_yticks(range(len(top)), [m["id"] for m in top], fontsize=6)
    ax.set_xlabel("citations resolved to the section")
    ax.set_title("most cited sections")
    return _save(fig, path)


def _plot_latency(results: dict[str, Any], path: Path) -> bool:
    rows = results.get("serving", {}).get("load", [])
    if not rows:
        return False
    fig, ax = _figure(3.6)
    for endpoint in dict.fromkeys(r["endpoint"] for r in rows):
        pts = sorted((r["connections"], r["p50_ms"], r["p99_ms"]) for r in rows
                     if r["endpoint"] == endpoint and r["p50_ms"] is not None)
        line = ax.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", label=f"{endpoint} p99")[0]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", linestyle="--", color=line.get_color(),
                label=f"{endpoint} p50")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent connections")
    ax.set_ylabel("latency ms")
    ax.set_title("latency against concurrency")
    ax.legend(fontsize=6)
    return _save(fig, path)


def _plot_stages(results: dict[str, Any], path: Path) -> bool:
    stages = results.get("training", {}).get("stages", [])
    if not stages:
        return False
    fig, ax = _figure(3.6)
    labels = [f"{s['name']}\n({s['unit']}/s)" for s in stages]
    ax.bar(range(len(stages)), [max(s["per_second"], 1e-9) for s in stages])
    ax.set_xticks(range(len(stages)), labels, fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("items per second (log)")
    ax.set_title("training throughput per stage")
    return _save(fig, path)


def write_report(results: dict[str, Any], out_dir: Path, stem: str) -> ReportFiles:
    """Write ``<stem>.json``, ``<stem>.md`` and the PNG plots into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(markdown(results) + "\n", encoding="utf-8")
    plots = []
    latency_png = out_dir / f"{stem}-latency.png"
    if _plot_latency(results, latency_png):
        plots.append(latency_png)
    stages_png = out_dir / f"{stem}-training.png"
    if _plot_stages(results, stages_png):
        plots.append(stages_png)
    citations_png = out_dir / f"{stem}-citations.png"
    if _plot_citations(results, citations_png):
        plots.append(citations_png)
    return ReportFiles(json_path, md_path, tuple(plots))


def _code_comparison(cmp: dict[str, Any]) -> list[str]:
    """The original code's training run beside this one's (wall, CPU, peak memory, per stage)."""
    if "original" not in cmp:
        return []
    old, new = cmp["original"], cmp["new"]
    lines = ["", f"Original code (`{old['commit']}`) and this code (`{new['commit']}`), trained one after the other "
             "in this run:", "",
             "| code | wall s | CPU s | peak RSS MB (largest process) | peak RSS MB (all processes) |",
             "|---|---:|---:|---:|---:|"]
    for row in (old, new):
        lines.append(f"| {row['label']} `{row['commit']}` | {_fmt(row['wall_s'])} | {_fmt(row['cpu_s'])} | "
                     f"{_fmt(row['peak_rss_mb'], 0)} | {_fmt(row['peak_tree_rss_mb'], 0)} |")
    lines.append(f"| new ÷ original | **{_fmt(cmp['wall_ratio'], 3)}** | {_fmt(cmp['cpu_ratio'], 3)} | "
                 f"{_fmt(cmp['peak_rss_ratio'], 3)} | |")
    lines += ["", "| stage | original s | new s |", "|---|---:|---:|"]
    lines += [f"| {s['name']} | {_fmt(s['original_s'])} | {_fmt(s['new_s'])} |" for s in cmp["stages"]]
    return lines


def _against_original_lines(sv: dict[str, Any]) -> list[str]:
    """The serving suite's old/new rows and the targets scaled to this machine, when the original was served."""
    rows = sv.get("against_original")
    if not rows:
        return []
    lines = [f"Original code ({sv['original']['code']}) served with its own model in the same run, 16 connections:",
             "", "| endpoint | original p99 ms | new p99 ms | new ÷ original | original req/s | new req/s "
             "| original CPU ms | new CPU ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['endpoint']} | {_fmt(r['original_p99_ms'], 1)} | {_fmt(r['new_p99_ms'], 1)} | "
                     f"{_fmt(r['p99_ratio'], 2)} | {_fmt(r['original_req_s'], 0)} | {_fmt(r['new_req_s'], 0)} | "
                     f"{_fmt(r['original_cpu_ms'], 2)} | {_fmt(r['new_cpu_ms'], 2)} |")
    lines += ["", f"Targets scaled to this machine (× {sv['machine_scale']:.2f}: the largest original p99 ÷ its "
              "target, a lower bound of how much slower this machine is than the issues' one):", "",
              "| target (16 connections) | measured | met |", "|---|---|---|"]
    for t in sv.get("scaled_targets", []):
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    return [*lines, ""]


def _scale_large_markdown(sl: dict[str, Any] | None) -> list[str]:
    """The scale-large suite: one line per build, then each build's (nprobe, k_factor) grid."""
    if not sl or "error" in sl:
        return []
    lines = [f"## Scale, streamed (IVF-PQ with a refine step, d={sl['dimensions']}, {sl['queries']} queries, "
             f"build at {sl['build_threads']} FAISS threads)", "", f"Data: {sl['data']}. Goal: {sl['goal']}.", "",
             *([f"Note: {sl['note']}.", ""] if sl.get("note") else []),
             "| n | index | train s | add s | disk MB | RSS after build MB | peak RSS MB | chosen nprobe/k_factor | "
             "recall@10 | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms | batch q/s |",
             "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for b in sl["builds"]:
        c = b.get("chosen") or {}
        pick = f"{c['nprobe']}/{c['k_factor']}" if c else "none meets the goal"
        lines.append(f"| {_fmt(b['n'])} | {b['index']} | {_fmt(b['train_s'], 1)} | {_fmt(b['add_s'], 1)} | "
                     f"{_fmt(b['disk_mb'], 0)} | {_fmt(b['rss_after_build_mb'], 0)} | {_fmt(b['peak_rss_mb'], 0)} | "
                     f"{pick} | {_fmt(c.get('recall_at_10'), 3)} | {_fmt(c.get('p50_ms'), 2)} | "
                     f"{_fmt(c.get('p99_ms'), 2)} | {_fmt(c.get('cpu_p50_ms'), 2)} | {_fmt(c.get('cpu_p99_ms'), 2)} | "
                     f"{_fmt(b['batch'].get('queries_per_s'), 0)} |")
    for b in sl["builds"]:
        lines += ["", f"{_fmt(b['n'])} vectors, {b['index']}: single queries at one FAISS thread", "",
                  "| nprobe | k_factor | recall@10 | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in b["searches"]:
            lines.append(f"| {r['nprobe']} | {r['k_factor']} | {_fmt(r['recall_at_10'], 3)} | {_fmt(r['p50_ms'], 2)} | "
                         f"{_fmt(r['p99_ms'], 2)} | {_fmt(r['cpu_p50_ms'], 2)} | {_fmt(r['cpu_p99_ms'], 2)} |")
    return [*lines, ""]
