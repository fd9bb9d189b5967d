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
# # 03 · Recommendations and their explanations, next to BM25
#
# For sample sections and free texts: what the model recommends (for a section, document vectors over
# word2vec, FAISS, or the fitted fusion of relatedness signals; for a text, the search ranking), why (the
# keywords a result shares with the request), and what the fixed reference BM25 alone returns for the same
# request.
#
# **Point it at another model** by changing `MODEL_DIR` or setting `LEGALSEARCH_MODEL`; without a model
# there, the demo model is trained first.

# %%
import logging
import os
from pathlib import Path

from legalsearch import analysis
from legalsearch.ranking import recommend, search

MODEL_DIR = os.environ.get("LEGALSEARCH_MODEL", "../models")

# %%
logging.basicConfig(level=logging.WARNING)
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
model = analysis.open_model(ROOT / MODEL_DIR if not Path(MODEL_DIR).is_absolute() else MODEL_DIR, ROOT)
bm25 = analysis.reference_bm25(model)
print(f"model {model.version}: {len(model.documents)} documents; reference BM25 over the same documents")
K = 5


def show_side_by_side(ours: list[tuple[str, str]], theirs: list[tuple[str, str]], width: int = 60) -> None:
    """Two ranked lists in two columns, ids found by both marked with '*'."""
    both = {d for d, _ in ours} & {d for d, _ in theirs}
    print(f"    {'recommend (embeddings)':<{width}}  BM25 alone")
    for i in range(max(len(ours), len(theirs))):
        left = ours[i] if i < len(ours) else ("", "")
        right = theirs[i] if i < len(theirs) else ("", "")
        cell = [f"{'*' if d in both else ' '}{d} {t}"[:width] if d else "" for d, t in (left, right)]
        print(f"{i + 1:>2}. {cell[0]:<{width}}  {cell[1]}")
    print(f"    overlap: {len(both)} of {K}")


# %% [markdown]
# ## Sections like a given section
#
# The request is the section's document vector; BM25 gets the section's title and text as its query. The
# seed section itself is excluded from both lists.

# %%
WANTED = ["DMietG § 8", "DArbG § 10", "DVertrG § 5"]
seeds = [d for d in WANTED if d in model.index.rows] or list(model.index.ids[:3])

for seed in seeds:
    doc = model.document(seed)
    result = recommend(model, positive=[seed], k=K)
    print(f"\n### {seed}: {doc.title}")
    print("request keywords:", ", ".join(k.term for k in result.keywords[:8]))
    ours = [(r.doc_id, r.title) for r in result.results]
    theirs = [(h.doc_id, h.title) for h in analysis.bm25_hits(model, bm25, analysis.document_query(model, seed),
                                                                   K, exclude=[seed])]
    show_side_by_side(ours, theirs)

# %% [markdown]
# ### Why: the explanation of each recommendation
#
# Each recommendation carries the keywords it shares with the request (weights are the product of the
# request's and the document's TF-IDF weights), and a snippet around them.

# %%
result = recommend(model, positive=[seeds[0]], k=K)
for r in result.results:
    shared = ", ".join(f"{k.term} ({k.weight:.3f})" for k in r.keywords[:5]) or "(no shared keyword)"
    print(f"{r.score:.3f}  {r.doc_id} [{r.type}] {r.title}")
    print(f"       shared: {shared}")
    print(f"       snippet: {r.snippet[:140]}".replace("\n", " "))

# %% [markdown]
# ## Recommendations for free texts
#
# A layperson's description of a problem. A text is ranked as `search` ranks it (our BM25 with word2vec
# query expansion fused with embedding similarity; next section); the "request keywords" are the text's
# words in the keyword vocabulary, which the explanations share. Lay words a corpus never uses ("Chef",
# "Waschmaschine") are lost to both methods.

# %%
TEXTS = [
    "Mein Vermieter will die Wohnung für seine Tochter und hat mir deshalb gekündigt.",
    "Der Chef hat mich nach zehn Jahren entlassen, bekomme ich eine Entschädigung?",
    "Die gekaufte Waschmaschine ist nach zwei Wochen kaputt gegangen.",
]
for text in TEXTS:
    result = recommend(model, text=text, k=K)
    print(f"\n### {text}")
    print("request keywords:", ", ".join(k.term for k in result.keywords[:8]) or "(none)")
    ours = [(r.doc_id, r.title) for r in result.results]
    theirs = [(h.doc_id, h.title) for h in analysis.bm25_hits(model, bm25, text, K)]
    show_side_by_side(ours, theirs)

# %% [markdown]
# ## The same texts through hybrid search
#
# `search` fuses our own BM25 (over the model's tokens, with word2vec query expansion) with embedding
# similarity: the ranking the recommendations above came from. The expanded terms show what the embeddings
# added to the query.

# %%
for text in TEXTS:
    result = search(model, text, k=3, mode="hybrid")
    added = ", ".join(f"{e.term}←{e.source}" for e in result.expanded_terms[:6]) or "(none)"
    print(f"\n### {text}\nexpanded with: {added}")
    for h in result.results:
        print(f"  {h.score:+.2f} (lexical {h.lexical_score:.2f}, embedding {h.embedding_score:.2f})  "
              f"{h.doc_id}: {h.title}")
