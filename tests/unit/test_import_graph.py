"""Serving never imports training: the API, the engine and the ranking load without the pipeline's modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
#: what serving imports: the app, and what it calls to load a model and answer requests
SERVING = ("legalsearch.api.app", "legalsearch.engine", "legalsearch.model", "legalsearch.ranking",
           "legalsearch.relatedness")
#: training and evaluation modules (gensim's word2vec trainer itself cannot be kept out: ``gensim.models``, the
#: package KeyedVectors comes from, imports it)
TRAINING = ("legalsearch.pipeline", "legalsearch.sidelane", "legalsearch.tokencache", "legalsearch.stages",
            "legalsearch.manifest", "legalsearch.feedback_fit", "legalsearch.recommend_eval",
            "legalsearch.evaluate", "legalsearch.analysis", "legalsearch.cli")


def test_serving_modules_do_not_import_training_modules() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {SERVING!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('legalsearch'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert set(SERVING) <= loaded
    assert not loaded & set(TRAINING), sorted(loaded & set(TRAINING))
