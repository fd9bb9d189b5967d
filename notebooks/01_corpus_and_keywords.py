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
# # 01 · The corpus and its TF-IDF keywords
#
# What the model was trained on (documents by law and type, text lengths), which keywords TF-IDF finds
# for single sections and for whole laws, and what the corpus keyword vocabulary looks like.
#
# **Point it at another model** by changing `MODEL_DIR` (a models folder with `current`, or one version
# folder), or set the environment variable `LEGALSEARCH_MODEL`. When the folder holds no model, the demo
# model is trained into it first (about a minute).

# %%
import logging
import os
from pathlib import Path

import matplotlib.pyplot as plt

from legalsearch import analysis

MODEL_DIR = os.environ.get("LEGALSEARCH_MODEL", "../models")

# %%
logging.basicConfig(level=logging.WARNING)
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
model = analysis.open_model(ROOT / MODEL_DIR if not Path(MODEL_DIR).is_absolute() else MODEL_DIR, ROOT)
print(f"model {model.version}: {len(model.documents)} documents, {len(model.keyword_model.vocabulary)} keywords, "
      f"{len(model.vectors.index_to_key)} word vectors")

# %% [markdown]
# ## The corpus by law and by type

# %%
by_law = analysis.corpus_statistics(model, by="law")
by_type = analysis.corpus_statistics(model, by="type")
print(f"{'law':<12}{'docs':>6}{'mean chars':>12}{'median':>8}{'max':>8}")
for s in by_law:
    print(f"{s.group:<12}{s.documents:>6}{s.mean_chars:>12.0f}{s.median_chars:>8.0f}{s.max_chars:>8}")
print()
for s in by_type:
    print(f"{s.group:<12}{s.documents:>6} documents, {s.mean_chars:.0f} characters on average")

# %%
top_laws = by_law[:15]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.barh([s.group for s in top_laws][::-1], [s.documents for s in top_laws][::-1], color="tab:blue")
ax1.set_xlabel("documents")
ax1.set_title("Documents per law")
ax2.barh([s.group for s in top_laws][::-1], [s.median_chars for s in top_laws][::-1], color="tab:orange")
ax2.set_xlabel("median text length (characters)")
ax2.set_title("Text length per law")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Keywords of chosen sections
#
# A document's keywords are its terms with the highest TF-IDF weight (L2-normalised per document).
# Multiword terms learnt by the phrase model are joined by `_`.

# %%
WANTED_SECTIONS = ["DMietG § 8", "DArbG § 10", "DVertrG § 5"]
sections = [d for d in WANTED_SECTIONS if d in model.index.rows]
# another model may not have these ids: fall back to the first section of the three largest laws
for s in by_law[:3]:
    if len(sections) >= 3:
        break
    row = int(analysis.group_rows(model, "law", s.group)[0])
    if model.index.ids[row] not in sections:
        sections.append(model.index.ids[row])

for doc_id in sections:
    doc = model.document(doc_id)
    kws = model.keywords(doc_id, 8)
    print(f"{doc_id}: {doc.title}")
    print("   " + ", ".join(f"{k.term} ({k.weight:.2f})" for k in kws))

# %%
fig, axes = plt.subplots(1, len(sections), figsize=(4 * len(sections), 3.2))
for ax, doc_id in zip(list(axes) if len(sections) > 1 else [axes], sections, strict=True):
    kws = model.keywords(doc_id, 8)[::-1]
    ax.barh([k.term for k in kws], [k.weight for k in kws], color="tab:green")
    ax.set_title(doc_id)
    ax.set_xlabel("TF-IDF weight")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Keywords of whole laws
#
# Each term's TF-IDF weight averaged over all sections of the law: terms that matter across the law, not
# only in one section.

# %%
laws = [s.group for s in by_law[:3]]
law_keywords = {law: analysis.group_keywords(model, law, k=10) for law in laws}
for law, kws in law_keywords.items():
    print(f"{law}: " + ", ".join(k.term for k in kws))

fig, axes = plt.subplots(1, len(laws), figsize=(4 * len(laws), 3.6))
for ax, law in zip(list(axes) if len(laws) > 1 else [axes], laws, strict=True):
    kws = law_keywords[law][::-1]
    ax.barh([k.term for k in kws], [k.weight for k in kws], color="tab:purple")
    ax.set_title(law)
    ax.set_xlabel("mean TF-IDF weight")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The keyword vocabulary
#
# Most widespread terms (highest document frequency) and the rarest (highest idf). Terms in only one
# document are many; the rare list below shows those in at least two, the more telling ones.

# %%
common = analysis.vocabulary_terms(model, k=15, order="df")
rare = analysis.vocabulary_terms(model, k=15, order="idf", min_df=2)
print("most widespread:", ", ".join(f"{v.term} ({v.df})" for v in common))
print("rarest (df >= 2):", ", ".join(f"{v.term} ({v.df})" for v in rare))
singletons = sum(1 for df in model.keyword_model.df.tolist() if df == 1)
print(f"{singletons} of {len(model.keyword_model.vocabulary)} vocabulary terms occur in only one document")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.barh([v.term for v in common][::-1], [v.df for v in common][::-1], color="tab:blue")
ax1.set_xlabel("documents containing the term (df)")
ax1.set_title("Most widespread keywords")
ax2.hist(model.keyword_model.df, bins=30, color="tab:gray", log=True)
ax2.set_xlabel("document frequency")
ax2.set_ylabel("terms (log scale)")
ax2.set_title("Document frequencies of the vocabulary")
fig.tight_layout()
plt.show()
