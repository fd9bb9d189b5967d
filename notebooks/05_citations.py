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
# # 05 · The citation graph: who cites whom
#
# Every model holds a citation graph (`citations/` in the model folder, built at training time): for each
# document the sections its citations resolve to, and the documents citing it, with how often and where.
# This notebook shows the graph's statistics, the most cited sections per law, the citations that resolve
# to nothing, and the neighbourhood of one section drawn as a graph.
#
# **Point it at another model** by changing `MODEL_DIR` or setting `LEGALSEARCH_MODEL` (a model trained on
# the full law corpus shows the real graph); without a model there, the demo model is trained first.
# `LEGALSEARCH_SECTION` picks the section to draw (default: the one with most links).

# %%
import logging
import os
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from legalsearch import analysis
from legalsearch.citegraph import incoming, outgoing

MODEL_DIR = os.environ.get("LEGALSEARCH_MODEL", "../models")

# %%
logging.basicConfig(level=logging.WARNING)
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
model = analysis.open_model(ROOT / MODEL_DIR if not Path(MODEL_DIR).is_absolute() else MODEL_DIR, ROOT)
graph = model.citations
assert graph is not None, "this model was trained without a citation graph: retrain it"
n = len(model.documents)
stats = graph.stats
print(f"model {model.version}: {n:,} documents, {stats['citations']:,} citations found, "
      f"{stats['resolved']:,} resolved, {stats['edges']:,} edges")
print("unresolved:", stats["unresolved"], "| self-citations:", stats["self_citations"],
      "| capped ranges:", stats["capped_ranges"])
print("edges by kind:", stats["edges_by_kind"])
print(f"statute sections citing another document: {stats['share_statutes_citing']:.1%}, "
      f"cited by one: {stats['share_statutes_cited']:.1%}")

# %% [markdown]
# ## Most cited sections per law
#
# "Citations" counts every citation resolving to the section (a document citing it twice counts twice);
# "citing" counts the distinct documents.

# %%
cites = graph.cites
received = np.bincount(cites.indices, weights=cites.counts, minlength=n).astype(int)
citing = np.diff(graph.cited_by.indptr)
laws = [model.documents.field_value("law", row) for row in range(n)]
types = [model.documents.record(row)["type"] for row in range(n)]
per_law: dict[str, list[int]] = {}
for row in np.argsort(-received, kind="stable"):
    law = laws[row]
    if received[row] and types[row] == "statute" and isinstance(law, str):
        per_law.setdefault(law, []).append(int(row))
ranked_laws = sorted(per_law, key=lambda law: -int(received[per_law[law]].sum()))
for law in ranked_laws[:8]:
    top = per_law[law][:5]
    print(f"{law}: " + "; ".join(f"{model.index.ids[r]} ({received[r]}x from {citing[r]})" for r in top))

# %%
top_rows = [int(r) for r in np.argsort(-received, kind="stable")[:12] if received[r]]
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(range(len(top_rows))[::-1], [received[r] for r in top_rows])
ax.set_yticks(range(len(top_rows))[::-1], [model.index.ids[r] for r in top_rows], fontsize=8)
ax.set_xlabel("citations resolved to the section")
ax.set_title("most cited sections")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Citations that resolve to nothing
#
# Kept as written with the reason: a law the corpus lacks, a section the law lacks, no law named, a range
# running backwards, or a section that exists only as a repealed heading ("not indexed").

# %%
reasons: Counter[str] = Counter()
examples: dict[str, str] = {}
for row in range(n):
    for item in graph.unresolved(row):
        reasons[item["reason"]] += 1
        examples.setdefault(item["reason"], f"{model.index.ids[row]}: {item['surface']}")
for reason, count in reasons.most_common():
    print(f"{count:>7,}  {reason:<16} e.g. {examples[reason]}")

# %% [markdown]
# ## The neighbourhood of one section
#
# Left: the documents citing it; right: the sections it cites. Arrows point from the citing to the cited
# document; the label is the citing span as written.

# %%
# by default the statute section with most links in both directions
degree = np.diff(graph.cites.indptr) + citing
busiest = max((r for r in range(n) if types[r] == "statute"), key=lambda r: (int(degree[r]), -r))
SECTION = os.environ.get("LEGALSEARCH_SECTION") or model.index.ids[busiest]
out = outgoing(model, SECTION)
into = incoming(model, SECTION, limit=8)
print(f"{SECTION} cites {len(out.links)} documents ({len(out.unresolved)} unresolved citations) and is cited by "
      f"{into.total} documents")


def draw_neighbourhood(center: str, cited: list[tuple[str, str]], citing: list[tuple[str, str]]) -> None:
    """A small graph with matplotlib only: citing documents on the left, cited sections on the right."""
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.5 * max(len(cited), len(citing), 1) + 1.5)))
    ax.set_xlim(-1.6, 1.6)
    ax.axis("off")

    def column(items: list[tuple[str, str]], x: float) -> list[tuple[float, float, str, str]]:
        ys = np.linspace(1, -1, len(items)) if len(items) > 1 else np.zeros(len(items))
        return [(x, float(y), doc, span) for (doc, span), y in zip(items, ys, strict=True)]

    ax.text(0, 0, center, ha="center", va="center", fontsize=10, bbox={"boxstyle": "round", "fc": "#ffd27f"})
    for x, y, doc, span in column(citing, -1.1):
        ax.annotate("", xy=(-0.25, 0), xytext=(x + 0.3, y), arrowprops={"arrowstyle": "->", "color": "grey"})
        ax.text(x, y, doc, ha="center", va="center", fontsize=7, bbox={"boxstyle": "round", "fc": "#cfe2ff"})
        ax.text((x + 0.3 - 0.25) / 2, y / 2 + 0.05, span, fontsize=6, color="dimgrey", ha="center")
    for x, y, doc, span in column(cited, 1.1):
        ax.annotate("", xy=(x - 0.3, y), xytext=(0.25, 0), arrowprops={"arrowstyle": "->", "color": "grey"})
        ax.text(x, y, doc, ha="center", va="center", fontsize=7, bbox={"boxstyle": "round", "fc": "#d4edda"})
        ax.text((x - 0.3 + 0.25) / 2, y / 2 + 0.05, span, fontsize=6, color="dimgrey", ha="center")
    ax.set_title(f"citations around {center}")
    fig.tight_layout()
    plt.show()


draw_neighbourhood(SECTION, [(link.id, link.surface) for link in out.links[:8]],
                   [(link.id, link.surface) for link in into.links])

# %% [markdown]
# The same lists as text, with titles (what `GET /documents/{id}/citations` and `/cited-by` answer, and
# `legalsearch citations` / `legalsearch cited-by` print):

# %%
for link in out.links:
    print(f"cites     {link.id:<28} {link.title[:50]:<50} [{link.surface}] x{link.count}")
for item in out.unresolved:
    print(f"cites     {item['surface']:<28} unresolved: {item['reason']}")
for link in into.links:
    print(f"cited by  {link.id:<28} {link.type:<9} [{link.surface}] x{link.count}")
