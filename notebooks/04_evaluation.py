# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Evaluation results
#
# The results of `make eval` / `legalsearch eval` (files `bench/results/eval-*.json`): nDCG@10, MRR@10,
# R@10 and R@100 per search mode, next to the fixed reference BM25; and, when a results file holds
# per-query measures, the queries each mode misses worst.
#
# **Point it at other results** by changing `RESULTS_DIR` (or `LEGALSEARCH_EVAL_RESULTS`). The model
# folder (`MODEL_DIR` / `LEGALSEARCH_MODEL`) is opened to tell which results belong to the current model.

# %%
import logging
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from legalsearch import analysis

MODEL_DIR = os.environ.get("LEGALSEARCH_MODEL", "../models")
RESULTS_DIR = os.environ.get("LEGALSEARCH_EVAL_RESULTS", "../bench/results")

# %%
logging.basicConfig(level=logging.WARNING)
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
model = analysis.open_model(ROOT / MODEL_DIR if not Path(MODEL_DIR).is_absolute() else MODEL_DIR, ROOT)
runs = analysis.load_eval_runs(ROOT / RESULTS_DIR if not Path(RESULTS_DIR).is_absolute() else RESULTS_DIR)
if not runs:
    print(f"no evaluation results yet in {RESULTS_DIR}: run `make eval` (needs the shared GerLayQA questions)")
for run in runs:
    note = "" if run.model == model.version else f" (not the current model {model.version})"
    print(f"{run.name}: model {run.model}{note}, {run.queries} queries, modes: {', '.join(run.scores)}")

# %% [markdown]
# ## Mean measures per mode

# %%
for run in runs:
    measures = list(next(iter(run.scores.values())))
    print(f"\n{run.name} ({run.queries} queries, model {run.model})")
    print(f"{'mode':<16}" + "".join(f"{m:>9}" for m in measures))
    for mode, values in run.scores.items():
        print(f"{mode:<16}" + "".join(f"{values.get(m, float('nan')):>9.4f}" for m in measures))

# %%
for run in runs:
    modes = list(run.scores)
    measures = list(next(iter(run.scores.values())))
    x = np.arange(len(measures))
    width = 0.8 / len(modes)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for i, mode in enumerate(modes):
        ax.bar(x + i * width, [run.scores[mode].get(m, 0.0) for m in measures], width, label=mode)
    ax.set_xticks(x + width * (len(modes) - 1) / 2, measures)
    ax.set_ylabel("score")
    ax.set_title(f"{run.name}: {run.queries} queries, model {run.model}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## The worst misses, query by query
#
# Only for results files that hold per-query measures (`"per_query"`). For each model mode: the queries
# with the lowest nDCG@10, with the reference BM25's value beside.

# %%
with_queries = [r for r in runs if r.per_query]
if not with_queries:
    print("no per-query results in these files: nothing to analyse query by query")
for run in with_queries:
    for mode in run.per_query:
        if mode == "reference-bm25":
            continue
        worst = analysis.worst_queries(run, mode, "nDCG@10", baseline="reference-bm25", n=5)
        print(f"\n{run.name} · {mode}: worst 5 by nDCG@10")
        for q in worst:
            base = "n/a" if q.baseline is None else f"{q.baseline:.3f}"
            print(f"  {q.query_id:<24} {q.value:.3f}   reference BM25 {base}")
