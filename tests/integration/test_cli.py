"""The ``legalsearch`` command as a user runs it: real processes, exit codes, one-line reasons."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import serve_process, wait_for

from legalsearch.model import serving_markers

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, models: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if models is not None:
        env["LEGALSEARCH_MODELS_DIR"] = str(models)
    return subprocess.run([sys.executable, "-m", "legalsearch.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_quick_looks_at_the_demo_model(demo_models_dir: Path, demo_model) -> None:  # type: ignore[no-untyped-def]
    listing = run("models", models=demo_models_dir)
    assert listing.returncode == 0 and "*" in listing.stdout
    doc_id = next(i for i in demo_model.index.ids if "§" in i)
    kw = run("keywords", doc_id, "-k", "5", models=demo_models_dir)
    assert kw.returncode == 0 and len(kw.stdout.strip().splitlines()) == 5
    rec = run("recommend", doc_id, "-k", "3", models=demo_models_dir)
    assert rec.returncode == 0
    listed = [line.split("  ", 1)[1][:24].strip() for line in rec.stdout.splitlines() if not line.startswith(" ")]
    assert len(listed) == 3 and doc_id not in listed
    term = demo_model.keywords(doc_id, 1)[0].term
    sim = run("similar-terms", term.replace("_", " "), "-k", "3", models=demo_models_dir)
    assert sim.returncode == 0, sim.stderr


def test_bad_input_gives_a_one_line_reason_and_nonzero_exit(demo_models_dir: Path, tmp_path: Path) -> None:
    unknown = run("recommend", "KeinG § 999", models=demo_models_dir)
    assert unknown.returncode == 5
    assert unknown.stderr.strip().count("\n") == 0 and "KeinG § 999" in unknown.stderr
    missing = run("train", "--corpus", str(tmp_path / "nowhere"), "--models-dir", str(tmp_path / "m"), "-q")
    assert missing.returncode == 3 and "nowhere" in missing.stderr
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[word2vec]\nepochs = 'many'\n")
    cfg = run("train", "--config", str(bad_config), "--models-dir", str(tmp_path / "m"), "-q")
    assert cfg.returncode == 2 and "epochs" in cfg.stderr
    nomodel = run("recommend", "X", models=tmp_path / "empty")
    assert nomodel.returncode != 0 and "train" in nomodel.stderr


def test_citations_and_cited_by(demo_models_dir: Path) -> None:
    out = run("citations", "DEMO-LG-BERLIN-67-S-22-20", models=demo_models_dir)
    assert out.returncode == 0, out.stderr
    assert "DMietG § 6" in out.stdout and "§ 536c BGB" in out.stdout and "unknown law" in out.stdout
    data = json.loads(run("cited-by", "DMietG § 14", "--type", "decision", "--json", models=demo_models_dir).stdout)
    assert data["total"] == len(data["cited_by"]) >= 3 and {c["type"] for c in data["cited_by"]} == {"decision"}
    for command in ("citations", "cited-by"):
        unknown = run(command, "KeinG § 999", models=demo_models_dir)
        assert unknown.returncode == 5 and unknown.stderr.strip().count("\n") == 0 and "KeinG § 999" in unknown.stderr


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_version_and_json_output(demo_models_dir: Path, demo_model) -> None:  # type: ignore[no-untyped-def]
    import legalsearch

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"legalsearch {legalsearch.__version__}"
    listing = _json(run("models", "--json", models=demo_models_dir))
    assert [(m["version"], m["current"]) for m in listing] == [(demo_model.version, True)]
    assert listing[0]["documents"] == len(demo_model.documents) and listing[0]["serving_pids"] == []
    doc_id = next(i for i in demo_model.index.ids if "§" in i)
    kws = _json(run("keywords", doc_id, "-k", "4", "--json", models=demo_models_dir))
    assert kws["model"] == demo_model.version
    assert [(k["term"], k["weight"]) for k in kws["keywords"]] == [
        (k.term, pytest.approx(k.weight)) for k in demo_model.keywords(doc_id, 4)
    ]
    term = kws["keywords"][0]["term"]
    sim = _json(run("similar-terms", term.replace("_", " "), "-k", "3", "--json", models=demo_models_dir))
    assert sim["term"] == term.replace("_", " ") and len(sim["similar"]) == 3
    assert all(s["term"] != term and 0 < s["score"] <= 1 for s in sim["similar"])
    rec = _json(run("recommend", doc_id, "-k", "3", "--json", models=demo_models_dir))
    assert len(rec) == 3 and doc_id not in {r["doc_id"] for r in rec}
    found = _json(run("search", "Kündigung der Wohnung durch den Vermieter", "-k", "3", "--json",
                      models=demo_models_dir))
    assert found["model"] == demo_model.version and len(found["results"]) == 3
    assert found["results"][0]["score"] >= found["results"][1]["score"] >= found["results"][2]["score"]
    assert {"doc_id", "title", "snippet", "matched_terms"} <= set(found["results"][0])


def test_usage_errors_are_one_line(demo_models_dir: Path) -> None:
    for args in (("search",), ("recommend", "X", "--text", "y"), ("models", "prune"), ("models", "prune", "--keep",
                 "-1"), ("search", "x", "--no-such-option")):
        done = run(*args, models=demo_models_dir)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.strip().count("\n") == 0, (args, done.stderr)
        assert done.stdout == ""


@pytest.fixture(scope="module")
def two_models(demo_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The demo models folder plus a second model trained by the CLI (not current): (folder, old, new)."""
    models = tmp_path_factory.mktemp("two") / "models"
    shutil.copytree(demo_models_dir, models, symlinks=True)
    old = os.readlink(models / "current")
    trained = _json(run("train", "--config", str(ROOT / "configs" / "demo.toml"), "--corpus",
                        str(ROOT / "corpora" / "demo"), "--extra-text", str(ROOT / "corpora" / "demo" / "extra"),
                        "--models-dir", str(models), "--no-current", "-q", "--json"))
    assert trained["current"] is False and trained["counts"]["documents"] > 0
    assert os.readlink(models / "current") == old
    return models, old, trained["version"]


@pytest.fixture
def models_copy(two_models: tuple[Path, str, str], tmp_path: Path) -> tuple[Path, str, str]:
    src, old, new = two_models
    dst = tmp_path / "models"
    shutil.copytree(src, dst, symlinks=True)
    return dst, old, new


def test_models_use_rolls_forward_and_back_and_refuses_damage(models_copy: tuple[Path, str, str]) -> None:
    models, old, new = models_copy
    forward = _json(run("models", "use", new, "--json", models=models))
    assert forward == {"current": new, "previous": old, "changed": True, "model": new, "servers_behind": []}
    assert os.readlink(models / "current") == new
    back = run("models", "--models-dir", str(models), "use", old)
    assert back.returncode == 0 and old in back.stdout and os.readlink(models / "current") == old
    (models / new / "docvectors.npy").write_bytes(b"damaged")
    refused = run("models", "use", new, models=models)
    assert refused.returncode == 4 and refused.stderr.strip().count("\n") == 0 and "docvectors.npy" in refused.stderr
    assert os.readlink(models / "current") == old
    unknown = run("models", "use", "20990101-000000-ffffff", models=models)
    assert unknown.returncode == 4 and old in unknown.stderr


def test_models_prune_keeps_the_current_version(models_copy: tuple[Path, str, str]) -> None:
    models, old, new = models_copy
    preview = _json(run("models", "prune", "--keep", "0", "--dry-run", "--json", models=models))
    assert preview["removed"] == [new] and preview["kept"] == {old: "current"} and (models / new).is_dir()
    pruned = _json(run("models", "prune", "--keep", "0", "--json", models=models))
    assert pruned["removed"] == [new] and not (models / new).exists()
    assert [m["version"] for m in _json(run("models", "--json", models=models))] == [old]


@contextlib.contextmanager
def _server(models: Path, watch: float, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``legalsearch serve`` as a user starts it, on a free port of 127.0.0.1, once every worker serves; stopped by
    its PID."""
    with serve_process(models, "--workers", str(workers), stop_s=20, PYTHONHASHSEED="0",
                       LEGALSEARCH_WATCH_INTERVAL_S=str(watch)) as (base, _, proc):
        wait_for(lambda: len(serving_markers(models)) >= workers, 90, "every worker to serve")
        yield base, proc


def _served(base: str, times: int = 6) -> set[str]:
    """The versions /readyz reports over a few requests (each may reach another worker)."""
    return {httpx.get(f"{base}/readyz", timeout=5).json()["model"] for _ in range(times)}


def test_running_server_follows_models_use(models_copy: tuple[Path, str, str]) -> None:
    models, old, new = models_copy
    with _server(models, watch=0.2, workers=2) as (base, _):
        assert _served(base) == {old}
        started = time.monotonic()
        moved = _json(run("models", "use", new, "--wait", "30", "--json", models=models))
        assert moved["current"] == new and moved["servers_behind"] == []
        assert {m.version for m in serving_markers(models)} == {new}
        assert _served(base) == {new}, "a worker still serves the old version"
        assert httpx.get(f"{base}/models/current", timeout=5).json()["model"] == new
        assert time.monotonic() - started < 30
        back = _json(run("models", "use", old, "--wait", "30", "--json", models=models))
        assert back["servers_behind"] == [] and _served(base) == {old}
    # a worker stopped by force under load leaves its file; a dead PID's marker is stale and counts for nothing
    assert serving_markers(models) == []


def test_prune_spares_what_a_server_serves(models_copy: tuple[Path, str, str]) -> None:
    models, old, new = models_copy
    with _server(models, watch=0, workers=1) as (base, proc):
        (marker,) = serving_markers(models)
        assert marker.version == old and marker.pid == proc.pid  # one worker: uvicorn runs in the CLI process
        behind = run("models", "use", new, "--wait", "1", models=models)
        assert behind.returncode == 4 and behind.stderr.strip().count("\n") == 0
        assert str(marker.pid) in behind.stderr and os.readlink(models / "current") == new
        assert _served(base, 2) == {old}  # the watcher is off: it keeps serving until told to reload
        listing = run("models", models=models)
        assert f"served by pid {marker.pid}" in listing.stdout
        pruned = _json(run("models", "prune", "--keep", "0", "--json", models=models))
        assert pruned["removed"] == [] and pruned["kept"] == {
            new: "current", old: f"serving (pid {marker.pid} on {marker.host})",
        }
        assert httpx.get(f"{base}/search", params={"q": "Kündigung"}, timeout=10).status_code == 200
    assert serving_markers(models, include_stale=True) == []
    pruned = _json(run("models", "prune", "--keep", "0", "--json", models=models))
    assert pruned["removed"] == [old] and not (models / old).exists()


def test_eval_writes_run_files_and_significance(demo_models_dir: Path, demo_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = [demo_model.documents.get(r) for r in range(len(demo_model.documents))]
    decisions = [d for d in docs if d.type == "decision" and d.title][:10]
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"id": f"d{i}", "query": d.title, "relevant": [d.id]}) + "\n"
                               for i, d in enumerate(decisions)), encoding="utf-8")
    manifest_before = (demo_models_dir / "current" / "manifest.json").read_bytes()
    out = _json(run("eval", "--queries", str(queries), "--mode", "lexical", "--mode", "hybrid", "--split", "all",
                    "--run-file", str(tmp_path / "runs" / "demo"), "--output", str(tmp_path / "scores.json"),
                    "--no-manifest", "--json", models=demo_models_dir))
    assert (demo_models_dir / "current" / "manifest.json").read_bytes() == manifest_before
    assert out["queries"] == len(decisions) and set(out["hybrid"]) == {"nDCG@10", "MRR@10", "R@10", "R@100"}
    (pair,) = out["significance"]
    assert (pair["a"], pair["b"], pair["measure"], pair["queries"]) == ("hybrid", "lexical", "nDCG@10", len(decisions))
    assert pair["wins"] + pair["losses"] + pair["ties"] == len(decisions)
    assert pair["t_p"] is None or 0 <= pair["t_p"] <= 1
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [
        "demo.hybrid.run", "demo.hybrid.tsv", "demo.lexical.run", "demo.lexical.tsv", "demo.qrels",
    ]
    assert set(out["written"]) == {str(tmp_path / "scores.json"), *(str(p) for p in runs.iterdir())}
    assert json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))["significance"][0]["a"] == "hybrid"
    first = (runs / "demo.hybrid.run").read_text(encoding="utf-8").splitlines()[0].split()
    assert first[0] in {f"d{i}" for i in range(len(decisions))} and first[1:4:2] == ["Q0", "1"]
    table = run("eval", "--queries", str(queries), "--mode", "lexical", "--mode", "hybrid", "--split", "all",
                "--no-manifest", "-q", models=demo_models_dir)
    assert table.returncode == 0 and "hybrid vs lexical: nDCG@10" in table.stdout


def test_gc_json(models_copy: tuple[Path, str, str]) -> None:
    models, _, _ = models_copy
    (models / ".tmp-20260101-000000-abcdef").mkdir()  # what a killed training run leaves
    preview = _json(run("gc", "--dry-run", "--json", "--models-dir", str(models)))
    assert preview["dry_run"] is True and preview["run_leftovers"] == [str(models / ".tmp-20260101-000000-abcdef")]
    assert {"removed", "removed_bytes", "kept_in_use", "kept_recent", "kept_locked"} <= set(preview)
    done = _json(run("gc", "--json", "--models-dir", str(models)))
    assert done["run_leftovers"] == preview["run_leftovers"] and not (models / ".tmp-20260101-000000-abcdef").exists()


def test_eval_recommend_and_fit_recommend(models_copy: tuple[Path, str, str], tmp_path: Path) -> None:
    models, _, _ = models_copy
    questions = ROOT / "tests" / "fixtures" / "recommend" / "questions.jsonl"
    seeds = tmp_path / "seeds.jsonl"
    table = run("eval", "--task", "recommend", "--queries", str(questions), "--filter", "type=statute",
                "--seeds-output", str(seeds), "--output", str(tmp_path / "rec.json"), "-q", "--models-dir", str(models))
    assert table.returncode == 0, table.stderr
    for system in ("mlt-reference", "position", "rrf-baselines", "word2vec", "fused", "fused-without-word2vec"):
        assert system in table.stdout
    summary = json.loads((tmp_path / "rec.json").read_text(encoding="utf-8"))
    assert summary["task"] == "recommend" and summary["seeds"] == len(seeds.read_text(encoding="utf-8").splitlines())
    manifest = json.loads((models / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert "questions.jsonl:recommend:type=statute:test" in manifest["evaluation"]
    fitted = run("fit-recommend", "--queries", str(questions), "--filter", "type=statute", "--width", "8", "-q",
                 "--models-dir", str(models))
    assert fitted.returncode == 0, fitted.stderr
    assert "(ranker)" in fitted.stdout and " trees, " in fitted.stdout
    manifest = json.loads((models / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert {"recommend_fusion.json", "related_rows.npy", "related_scores.npy"} <= set(manifest["files"])
    again = run("fit-recommend", "--queries", str(questions), "--filter", "type=statute", "--width", "4", "-q",
                "--models-dir", str(models))  # over the first fit's read-only files
    assert again.returncode == 0, again.stderr
    listing = run("models", "--models-dir", str(models))
    assert listing.returncode == 0, listing.stderr
    bad = run("eval", "--task", "suggest", "--queries", str(questions), "--models-dir", str(models))
    assert bad.returncode != 0 and "--task" in bad.stderr
