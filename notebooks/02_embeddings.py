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
# # 02 · Word embeddings of legal terms
#
# Which terms word2vec puts close to legal concepts, a 2-D map of terms from three areas of law, and where
# the embeddings go wrong. Human-written terms ("Kündigungsschutz") are looked up the way the corpus was
# preprocessed (lemmas, learnt phrases joined by `_`).
#
# **Point it at another model** by changing `MODEL_DIR` or setting `LEGALSEARCH_MODEL`; without a model
# there, the demo model is trained first.

# %%
import logging
import os
from pathlib import Path

import matplotlib.pyplot as plt

from legalsearch import analysis
from legalsearch.errors import LegalSearchError

MODEL_DIR = os.environ.get("LEGALSEARCH_MODEL", "../models")

# %%
logging.basicConfig(level=logging.WARNING)
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
model = analysis.open_model(ROOT / MODEL_DIR if not Path(MODEL_DIR).is_absolute() else MODEL_DIR, ROOT)
print(f"model {model.version}: {len(model.vectors.index_to_key)} word vectors of size {model.vectors.vector_size}")
# set LEGALSEARCH_SAVE_FIGURES=1 to rewrite docs/figures/term-map.png from this notebook
SAVE_FIGURES = os.environ.get("LEGALSEARCH_SAVE_FIGURES") == "1"

# %% [markdown]
# ## Similar terms for legal concepts
#
# Nearest neighbours by cosine similarity, restricted to the keyword vocabulary (as the API serves them).

# %%
CONCEPTS = ["Kündigung", "Miete", "Arbeitnehmer", "Vertrag", "Schadensersatz", "Kaution"]
for concept in CONCEPTS:
    key = analysis.vector_key(model, concept)
    try:
        neighbours = analysis.neighbours(model, concept, k=6)
    except LegalSearchError as exc:
        print(f"{concept}: {exc}")
        continue
    print(f"{concept} [{key}]: " + ", ".join(f"{s.term} ({s.score:.2f})" for s in neighbours))

# %% [markdown]
# ## A map of legal terms by area of law
#
# A small hand-made term list per area, projected to two dimensions with PCA (deterministic; t-SNE is
# available with `method="tsne"`). Terms the model does not know are listed below the map.

# %%
AREAS = {
    "Mietrecht": ["Miete", "Mieter", "Vermieter", "Mietvertrag", "Kaution", "Eigenbedarf", "Mieterhöhung",
                  "Schönheitsreparatur", "Wohnung", "Betriebskosten"],
    "Arbeitsrecht": ["Arbeitnehmer", "Arbeitgeber", "Arbeitsverhältnis", "Abmahnung", "Probezeit", "Zeugnis",
                     "Urlaub", "Abfindung", "Kündigungsschutz", "Betriebsrat"],
    "Vertragsrecht": ["Vertrag", "Angebot", "Annahme", "Käufer", "Verkäufer", "Sachmangel", "Rücktritt",
                      "Schadensersatz", "Widerrufsrecht", "Verbraucher"],
}
COLOURS = {"Mietrecht": "tab:blue", "Arbeitsrecht": "tab:red", "Vertragsrecht": "tab:green"}

term_map = analysis.term_map(model, AREAS, method="pca", seed=0)
fig, ax = plt.subplots(figsize=(8, 6))
for area, colour in COLOURS.items():
    pts = [p for p in term_map.points if p.group == area]
    ax.scatter([p.x for p in pts], [p.y for p in pts], c=colour, label=area, s=40)
    for p in pts:
        ax.annotate(p.term, (p.x, p.y), textcoords="offset points", xytext=(4, 3), fontsize=9)
ax.set_title("Legal terms in the word2vec space (PCA)")
ax.set_xlabel("1st principal component")
ax.set_ylabel("2nd principal component")
ax.legend(title="area of law", loc="best")
fig.tight_layout()
if SAVE_FIGURES:
    fig.savefig(ROOT / "docs" / "figures" / "term-map.png", dpi=100)
plt.show()
print("not in the model:", ", ".join(term_map.missing) or "none")

# %% [markdown]
# ## Where the embeddings go wrong
#
# ### Antonyms and counterparts sit close together
# word2vec learns from shared contexts: tenant and landlord, employer and employee appear in the same
# sentences, so their vectors are near each other although they name opposite parties. A search expanded
# with word2vec neighbours therefore mixes both sides.

# %%
PAIRS = [("Mieter", "Vermieter"), ("Arbeitgeber", "Arbeitnehmer"), ("Käufer", "Verkäufer"),
         ("wirksam", "unwirksam"), ("Angebot", "Annahme"), ("Mieter", "Arbeitnehmer"), ("Miete", "Abfindung")]
for pair in analysis.term_pairs(model, PAIRS):
    sim = "unknown" if pair.similarity is None else f"{pair.similarity:.2f}"
    print(f"{pair.a:>14} ~ {pair.b:<14} {sim}")

# %% [markdown]
# ### Rare terms have arbitrary neighbours
# A term seen in one or two documents gets a vector from very few contexts; its neighbours are often
# words that merely co-occurred once. `df` is the number of documents with the term.

# %%
rare = [v for v in analysis.vocabulary_terms(model, k=400, order="idf", min_df=1)
        if v.term in model.vectors.key_to_index][:4]
common = analysis.vocabulary_terms(model, k=2, order="df")
for v in [*common, *rare]:
    neighbours = analysis.neighbours(model, v.term, k=5)
    print(f"{v.term} (df={v.df}): " + ", ".join(f"{s.term} ({s.score:.2f})" for s in neighbours))

# %% [markdown]
# ### Phrase artefacts
# The preprocessor follows each compound with its parts ("Arbeitsverhältnis" -> arbeitsverhältnis, arbeit,
# verhältnis), so the phrase model learns "compound + its own part" as a multiword term. These keys are
# preprocessing artefacts, not legal phrases; they also show up as keywords (notebook 01).

# %%
artefacts = analysis.phrase_artefacts(model)
print(f"{len(artefacts)} of {len(model.vectors.index_to_key)} vector keys are such artefacts, e.g.:")
print(", ".join(artefacts[:15]))
for term in ["Arbeitsverhältnis", "Kündigungsschutz", "Mieterhöhung"]:
    info = analysis.term_info(model, term)
    print(f"{term!r} is looked up as {info.key!r} (df={info.df}, has vector: {info.in_vectors})")
