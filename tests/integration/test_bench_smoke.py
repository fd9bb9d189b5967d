"""Smoke test of the benchmarks: every suite runs with --quick on tiny inputs and writes the expected keys.

No timed assertions: figures depend on the machine; this only proves that ``make bench`` can run end to end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.run import main  # noqa: E402


@pytest.fixture(scope="module")
def quick_results(demo_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-results")
    code = main(["--quick", "--repeats", "1", "--client", "httpx", "--model", str(demo_models_dir),
                 "--out-dir", str(out), "--stem", "smoke", "--shared", str(ROOT / "does-not-exist")])
    data = json.loads((out / "smoke.json").read_text(encoding="utf-8"))
    data["_exit_code"] = code
    data["_files"] = sorted(p.name for p in out.iterdir())
    return data


def test_every_suite_ran_without_error(quick_results: dict) -> None:
    for suite in ("training", "serving", "memory", "scale"):
        assert "error" not in quick_results[suite], quick_results[suite].get("traceback")
    assert quick_results["_exit_code"] == 0


def test_files_json_markdown_and_plots(quick_results: dict) -> None:
    assert {"smoke.json", "smoke.md", "smoke-latency.png", "smoke-training.png"} <= set(quick_results["_files"])


def test_run_records_machine_and_load(quick_results: dict) -> None:
    assert quick_results["machine"]["logical_cores"] >= 1
    assert "gensim" in quick_results["machine"]["libraries"]
    assert len(quick_results["run"]["load_start"]) == 3
    assert len(quick_results["run"]["load_end"]) == 3


def test_training_section(quick_results: dict) -> None:
    tr = quick_results["training"]
    names = [s["name"] for s in tr["stages"]]
    assert names[:2] == ["ingest", "preprocess"] and "word2vec" in names
    assert tr["word2vec_vs_gensim_ratio"] > 0
    assert tr["preprocess_tokens_per_s"]["n_process_1"] > 0
    assert tr["preprocess_tokens_per_s"]["n_process_2"] > 0
    assert tr["preprocess_tokens_per_s"]["input_tokens"] > 0


def test_serving_section(quick_results: dict) -> None:
    sv = quick_results["serving"]
    assert sv["client"] == "httpx"
    points = {(r["endpoint"], r["connections"]) for r in sv["load"]}
    # the three workloads at every concurrency, and the framework floor (/livez) once, at the middle one
    endpoints = ("recommend_id", "recommend_text", "search", "search_facets", "suggest")
    assert points == {(e, c) for e in endpoints for c in (1, 2)} | {("livez", 2)}
    for row in sv["load"]:
        assert row["requests"] > 0 and row["errors"] == 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["server_cpu_ms_per_request"] is not None and row["server_cpu_ms_per_request"] >= 0, row
    assert {"faiss_search_k31", "bm25_scores", "ranking.search", "ranking.search_facets", "suggest"} <= set(
        sv["in_process"])
    assert {"search_facets / ranking.search_facets", "suggest / suggest"} <= set(sv["overhead_ratio"])


def test_memory_section(quick_results: dict) -> None:
    runs = {r["workers"]: r for r in quick_results["memory"]["runs"]}
    assert set(runs) == {2}  # --quick measures only the two-worker case
    workers = [p for p in runs[2]["processes"] if p["role"] == "worker"]
    assert len(workers) == 2
    for p in workers:
        assert 0 < p["pss_mb"] <= p["rss_mb"]


def test_scale_section(quick_results: dict) -> None:
    sc = quick_results["scale"]
    kinds = {r["index"] for r in sc["rows"]}
    assert kinds == {"flat", "hnsw", "ivfpq"}
    flat = next(r for r in sc["rows"] if r["index"] == "flat")
    assert flat["recall_at_10"] == 1.0  # exact search is its own ground truth
    assert "recommended_exact_max_docs" in sc["rule"]


def test_a_version_folder_is_served_through_a_verified_current(demo_models_dir: Path, tmp_path: Path) -> None:
    from bench.serving import models_dir_for
    from legalsearch.engine import Model
    from legalsearch.model import current_version, resolve_model_dir

    version = resolve_model_dir(demo_models_dir, None)
    folder = models_dir_for(version, tmp_path)
    assert current_version(folder) == version.name
    assert Model.load(folder).version == version.name


def test_targets_scale_by_the_slowest_original_endpoint(tmp_path: Path) -> None:
    from bench.serving import LoadResult, ServingOptions, _against_original

    def row(endpoint: str, p99: float) -> LoadResult:
        return LoadResult(endpoint, 16, p99 / 2, p99, 100.0, 800, 0, "wrk", 2.0)

    original = [row("recommend_id", 30.0), row("recommend_text", 60.0), row("search", 150.0)]
    new = [row("recommend_id", 40.0), row("search", 140.0), row("search_facets", 160.0), row("suggest", 20.0)]
    out = _against_original(new, original, ServingOptions(tmp_path, tmp_path))
    # search is the slowest against its target (150 / 60 = 2.5), so every target is scaled by 2.5
    assert out["machine_scale"] == 2.5
    met = {t["target"].split(":")[0]: t["met"] for t in out["scaled_targets"]}
    assert met == {"recommend_id": True, "search": True, "search_facets": False, "suggest": True}
    assert [r["endpoint"] for r in out["against_original"]] == ["recommend_id", "search"]
    assert out["against_original"][1]["p99_ratio"] == round(140 / 150, 3)


def test_two_codes_take_turns_at_each_point() -> None:
    import subprocess

    from bench.serving import LoadResult, ServerProcess, _median_runs

    calls: list[str] = []

    def once(name: str, p99s: list[float]):  # type: ignore[no-untyped-def]
        def run() -> LoadResult:
            calls.append(name)
            return LoadResult("search", 16, 1.0, p99s[calls.count(name) - 1], 100.0, 10, 0, "wrk", None)
        return run

    fake = ServerProcess(subprocess.Popen(["true"]), "http://127.0.0.1:1", Path("/dev/null"))
    fake.process.wait()
    new, old = _median_runs([(fake, once("new", [5.0, 1.0, 3.0])), (fake, once("old", [9.0, 7.0, 8.0]))], 3)
    # alternating, so that a drift of the machine's speed meets both codes alike
    assert calls == ["new", "old"] * 3
    assert (new.p99_ms, old.p99_ms, new.requests, old.requests) == (3.0, 8.0, 30, 30)
