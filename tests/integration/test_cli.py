"""The ``legalsearch`` command as a user runs it: real processes, exit codes, one-line reasons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
