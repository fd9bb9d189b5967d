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
# R@10 and R@100 per search mode, next to the fixed reference BM25, with the paired significance tests
# between the modes; then an evaluation run here, on the model this notebook opens, and the worst misses of
# each mode: the questions it scores lowest on, with their relevant documents and what it returned instead.
#
# **Point it at other results** by changing `RESULTS_DIR` (or `LEGALSEARCH_EVAL_RESULTS`). The model
# folder (`MODEL_DIR` / `LEGALSEARCH_MODEL`) is opened to tell which results belong to the current model.
# **Questions** for the run here: `QUERIES` (or `LEGALSEARCH_EVAL_QUERIES`), a JSON Lines file as
# `legalsearch eval --queries` reads (e.g. `../shared/eval/gerlayqa-dev.jsonl` with a model of the full law
# corpus; its test half is used); without one, questions are derived from the model's own decisions (see below).

# %%
import json
import logging
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from legalsearch import analysis
from legalsearch.evaluate import evaluate, load_queries

MODEL_DIR = os.environ.get("LEGALSEARCH_MODEL", "../models")
RESULTS_DIR = os.environ.get("LEGALSEARCH_EVAL_RESULTS", "../bench/results")
QUERIES = os.environ.get("LEGALSEARCH_EVAL_QUERIES", "")

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
# ## Significance between modes
#
# Paired tests on per-query nDCG@10 over the same questions (scipy's paired t-test and Wilcoxon signed-rank,
# two-sided; see docs/evaluation.md): `a` is the later mode of each pair. Files written before the tests existed
# have none.

# %%
for run in runs:
    tests = json.loads(run.path.read_text(encoding="utf-8")).get("significance") or []
    print(f"\n{run.name}: {len(tests)} paired tests")
    for t in tests:
        t_p = "n/a" if t["t_p"] is None else f"{t['t_p']:.3g}"
        w_p = "n/a" if t["wilcoxon_p"] is None else f"{t['wilcoxon_p']:.3g}"
        print(f"  {t['a']:>14} vs {t['b']:<14} {t['mean_difference']:+.4f}  "
              f"better/worse/equal {t['wins']}/{t['losses']}/{t['ties']}  t p={t_p}  Wilcoxon p={w_p}")

# %% [markdown]
# ## An evaluation run here, and each mode's worst misses
#
# With `QUERIES` set, those questions over every document. Without, the questions come from the model's own
# decisions (`analysis.citation_questions`): a decision's title is the question and the statute sections its
# text cites ("§ 14 Abs. 1 DMietG") are the relevant documents; the collection is the statute sections. On
# the demo model that makes 30 questions whose answers no one labelled by hand, only read off the citations.

# %%
if QUERIES:
    queries_path = Path(QUERIES) if Path(QUERIES).is_absolute() else ROOT / QUERIES
    questions, filters, split = load_queries(queries_path), {}, "test"
else:
    questions, filters, split = analysis.citation_questions(model), {"type": "statute"}, "all"
print(f"{len(questions)} questions ({'from ' + QUERIES if QUERIES else 'cited sections of the decisions'})")
report = evaluate(model, questions, filters=filters, split=split, progress=False)
print(report.table())

# %% [markdown]
# For each mode, the 3 questions it scores lowest on by nDCG@10 (among equal scores, those another mode answered
# best come first), each with its relevant documents, where the first of them ranked (of 100), and the mode's
# top 5 (`+` marks a relevant one).

# %%
for mode_scores in report.modes:
    print(f"\n=== {mode_scores.mode}: nDCG@10 {mode_scores.scores['nDCG@10']:.4f} on {report.queries} questions")
    for miss in analysis.worst_misses(model, report, questions, mode_scores.mode, n=3, shown=5):
        where = "not in the top 100" if miss.first_relevant_rank is None else f"first at {miss.first_relevant_rank}"
        print(f"\n  {miss.query_id}: {miss.query[:90]!r}")
        print(f"    nDCG@10 {miss.value:.3f} (best other mode {miss.best_other:.3f}); relevant {where}:")
        for doc_id, title in miss.relevant:
            print(f"      {doc_id:<22} {title[:70]}")
        print("    returned:")
        for r in miss.returned:
            print(f"    {'+' if r.relevant else ' '} {r.doc_id:<22} {r.score:8.3f}  {r.title[:60]}")

# %% [markdown]
# ## The worst misses of saved results, query by query
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
