"""Conveniences for analysts and notebooks: corpus statistics, law keywords, term maps, BM25 side by side,
evaluation results read back from JSON. Everything reads a loaded ``Model``; nothing here trains or writes.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from legalsearch.config import load_config
from legalsearch.embeddings import similar_terms as _similar_terms
from legalsearch.engine import Model
from legalsearch.errors import ArtifactError, EmptyQueryError, InvalidRequestError, NoModelError
from legalsearch.evaluate import EvalReport, Query
from legalsearch.keywords import PHRASE_JOINER
from legalsearch.lexical import ReferenceBM25
from legalsearch.model import CURRENT_NAME, MANIFEST_NAME
from legalsearch.types import Keyword, SimilarTerm

log = logging.getLogger(__name__)

#: the grouping that is not a metadata field but the document's own type
TYPE_FIELD = "type"


@dataclass(frozen=True)
class GroupStats:
    """Document count and text lengths (characters) of one group of documents, e.g. one law."""

    group: str
    documents: int
    total_chars: int
    mean_chars: float
    median_chars: float
    max_chars: int


@dataclass(frozen=True)
class VocabularyTerm:
    """A keyword-vocabulary term with its document frequency and idf."""

    term: str
    df: int
    idf: float


@dataclass(frozen=True)
class TermPoint:
    """One term on a 2-D map: the name asked for, the vector key it resolved to, its group and position."""

    term: str
    key: str
    group: str
    x: float
    y: float


@dataclass(frozen=True)
class TermMap:
    """A 2-D projection of term vectors, and the asked-for terms the model does not know."""

    points: tuple[TermPoint, ...]
    missing: tuple[str, ...]
    method: str


@dataclass(frozen=True)
class TermPair:
    """The cosine similarity of two terms' vectors (``None`` when either is unknown to the model)."""

    a: str
    b: str
    similarity: float | None


@dataclass(frozen=True)
class TermInfo:
    """How well the model knows a term: its vector key, its document frequency, whether it has a vector."""

    term: str
    key: str
    df: int
    in_vectors: bool


@dataclass(frozen=True)
class BM25Hit:
    """One hit of the reference BM25 baseline."""

    doc_id: str
    title: str
    score: float


@dataclass(frozen=True)
class EvalRun:
    """One evaluation results file: mean measures per mode, and per-query measures when the file has them."""

    name: str
    path: Path
    model: str
    queries: int
    scores: Mapping[str, Mapping[str, float]]
    #: mode -> query id -> measure -> value; empty when the file holds no per-query results
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]]


@dataclass(frozen=True)
class QueryScore:
    """One query's measure under one mode, next to the same measure of a baseline mode."""

    query_id: str
    value: float
    baseline: float | None


def open_model(model_dir: str | Path, repo_root: str | Path, train_if_missing: bool = True) -> Model:
    """Load a model folder (or a models folder's ``current``); train the demo model into it when there is none.

    The demo model is the one ``legalsearch train --config configs/demo.toml`` makes: the bundled demo
    corpus under ``repo_root``, its extra text, the demo settings.
    """
    folder, root = Path(model_dir), Path(repo_root)
    if not (folder / MANIFEST_NAME).exists() and not (folder / CURRENT_NAME).exists():
        if not train_if_missing:
            raise NoModelError(f"no model in {folder}")
        from legalsearch.pipeline import train

        demo = root / "corpora" / "demo"
        log.info("no model in %s: training the demo model on %s", folder, demo)
        folder.mkdir(parents=True, exist_ok=True)
        extra = [demo / "extra"] if (demo / "extra").is_dir() and any((demo / "extra").iterdir()) else []
        train([demo], load_config(root / "configs" / "demo.toml"), folder, extra_text=extra, progress=False)
    return Model.load(folder)


def _group_of(model: Model, by: str, row: int) -> str:
    if by == TYPE_FIELD:
        return model.documents.get(row).type
    value = model.documents.field_value(by, row)
    return "(none)" if value is None else str(value)


def corpus_statistics(model: Model, by: str = "law") -> list[GroupStats]:
    """Documents and text lengths per value of a metadata field (or ``"type"``), largest group first."""
    if by != TYPE_FIELD and by not in model.documents.fields:
        raise InvalidRequestError(f"unknown field {by!r}; known: type, {', '.join(model.documents.fields)}")
    lengths: dict[str, list[int]] = {}
    for row, doc in enumerate(model.documents.iter_documents()):
        group = doc.type if by == TYPE_FIELD else _group_of(model, by, row)
        lengths.setdefault(group, []).append(len(doc.text))
    out = [
        GroupStats(g, len(ls), sum(ls), sum(ls) / len(ls), float(statistics.median(ls)), max(ls))
        for g, ls in lengths.items()
    ]
    return sorted(out, key=lambda s: (-s.documents, s.group))


def group_rows(model: Model, by: str, value: str) -> np.ndarray:
    """Rows whose field ``by`` (a metadata field or ``"type"``) equals ``value``."""
    if by == TYPE_FIELD:
        return np.asarray(
            [row for row, doc in enumerate(model.documents.iter_documents()) if doc.type == value], dtype=np.int64
        )
    return model.documents.filter_rows({by: value})


def group_keywords(model: Model, value: str, k: int = 20, by: str = "law") -> list[Keyword]:
    """Keywords of a whole law (or any group): each term's TF-IDF weight averaged over the group's documents.

    Averaging (not summing) keeps the weights on the documents' own 0..1 scale, so laws of different sizes
    compare; a term frequent in many sections still ranks above one that tops a single section.
    """
    rows = group_rows(model, by, value)
    if rows.size == 0:
        raise InvalidRequestError(f"no document has {by}={value!r}")
    totals: dict[str, float] = {}
    vocabulary = model.keyword_model.vocabulary
    for row in rows:
        for kw in model.doc_keywords.of(int(row), vocabulary):
            totals[kw.term] = totals.get(kw.term, 0.0) + kw.weight
    ranked = sorted(totals.items(), key=lambda tw: (-tw[1], tw[0]))[:k]
    return [Keyword(t, w / rows.size) for t, w in ranked]


def vocabulary_terms(
    model: Model, k: int = 20, order: Literal["df", "idf"] = "df", min_df: int = 1
) -> list[VocabularyTerm]:
    """The keyword vocabulary's top ``k`` terms: most widespread (``"df"``) or rarest (``"idf"``) first."""
    if order not in ("df", "idf"):
        raise InvalidRequestError(f"order must be 'df' or 'idf', not {order!r}")
    km = model.keyword_model
    terms = [
        VocabularyTerm(t, int(df), float(idf))
        for t, df, idf in zip(km.vocabulary, km.df.tolist(), km.idf.tolist(), strict=True)
        if df >= min_df
    ]
    key = (lambda v: (-v.df, v.term)) if order == "df" else (lambda v: (-v.idf, v.term))
    return sorted(terms, key=key)[:k]


def vector_key(model: Model, term: str) -> str:
    """The vector key of a human-written term ("Kündigung", "ordentliche Kündigung"), lemmatised like the corpus.

    The preprocessor follows a compound with its parts ("Mietvertrag" -> mietvertrag, miete, vertrag), so a
    single word is looked up as its first token; several words as their tokens joined by ``_``. When that
    has no vector, the phrase the corpus's phrase model makes of it, then the lowercased surface form are
    tried; the first candidate is returned when none has a vector.
    """
    tokens = model.preprocessor.tokens(term)
    if not tokens:
        raise EmptyQueryError(f"{term!r} has no usable term after preprocessing")
    single_word = len(term.split()) == 1
    phrased = model.phrases.apply(tokens)
    candidates = [tokens[0]] if single_word else [PHRASE_JOINER.join(tokens)]
    if single_word or len(phrased) == 1:
        candidates.append(phrased[0])
    candidates.append(re.sub(r"\s+", PHRASE_JOINER, term.strip().lower()))
    return next((c for c in candidates if c in model.vectors.key_to_index), candidates[0])


def term_info(model: Model, term: str) -> TermInfo:
    """How a term looks to the model: its key, document frequency (0 outside the keyword vocabulary), vector."""
    key = vector_key(model, term)
    km = model.keyword_model
    idx = km.term_index.get(key)
    return TermInfo(term, key, 0 if idx is None else int(km.df[idx]), key in model.vectors.key_to_index)


def term_pairs(model: Model, pairs: Iterable[tuple[str, str]]) -> list[TermPair]:
    """Cosine similarity of each pair of terms, e.g. antonyms that word2vec puts close together."""
    out = []
    kv = model.vectors
    for a, b in pairs:
        ka, kb = vector_key(model, a), vector_key(model, b)
        sim = float(kv.similarity(ka, kb)) if ka in kv.key_to_index and kb in kv.key_to_index else None
        out.append(TermPair(a, b, sim))
    return out


def term_map(
    model: Model,
    groups: Mapping[str, Sequence[str]],
    method: Literal["pca", "tsne"] = "pca",
    seed: int = 0,
) -> TermMap:
    """Project the vectors of grouped terms (group -> terms) to 2-D with PCA or t-SNE (seeded, repeatable)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method not in ("pca", "tsne"):
        raise InvalidRequestError(f"method must be 'pca' or 'tsne', not {method!r}")
    found: list[tuple[str, str, str]] = []
    missing: list[str] = []
    seen: set[str] = set()
    for group, terms in groups.items():
        for term in terms:
            try:
                key = vector_key(model, term)
            except EmptyQueryError:
                missing.append(term)
                continue
            if key not in model.vectors.key_to_index:
                missing.append(term)
            elif key not in seen:
                seen.add(key)
                found.append((term, key, group))
    if len(found) < 3:
        raise InvalidRequestError(f"only {len(found)} of the terms have vectors; a map needs at least 3")
    matrix = np.vstack([model.vectors[key] for _, key, _ in found]).astype(np.float64)
    if method == "pca":
        xy = PCA(n_components=2, random_state=seed).fit_transform(matrix)
    else:
        # perplexity must stay below the number of points; cosine suits normalised word vectors
        perplexity = float(min(30, max(2, (len(found) - 1) // 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed).fit_transform(
            matrix
        )
    points = tuple(
        TermPoint(term, key, group, float(x), float(y)) for (term, key, group), (x, y) in zip(found, xy, strict=True)
    )
    return TermMap(points, tuple(missing), method)


def reference_bm25(model: Model) -> ReferenceBM25:
    """The fixed BM25 baseline over the model's documents ("title + text", row order), as the evaluation builds it."""
    return ReferenceBM25.build([f"{doc.title}\n{doc.text}" for doc in model.documents.iter_documents()])


def bm25_hits(
    model: Model, reference: ReferenceBM25, query: str, k: int = 10, exclude: Sequence[str] = ()
) -> list[BM25Hit]:
    """What BM25 alone returns for a query text; ``exclude`` drops ids (e.g. the seed section itself)."""
    hits = reference.search([query], k + len(exclude))
    out: list[BM25Hit] = []
    for row, score in zip(hits.rows[0], hits.scores[0], strict=True):
        if row < 0:
            break
        doc_id = model.index.ids[int(row)]
        if doc_id in exclude:
            continue
        out.append(BM25Hit(doc_id, model.documents.get(int(row)).title, float(score)))
    return out[:k]


def document_query(model: Model, doc_id: str) -> str:
    """A section as a BM25 query: its title and text, the way the baseline indexes it."""
    doc = model.document(doc_id)
    return f"{doc.title}\n{doc.text}"


def _per_query(data: Any) -> dict[str, dict[str, dict[str, float]]]:
    # Accepted shapes: {"<mode>": {"<qid>": {measure: v}}} or [{"mode":…, "query"/"id":…, measure: v, …}].
    out: dict[str, dict[str, dict[str, float]]] = {}
    if isinstance(data, Mapping):
        for mode, queries in data.items():
            if isinstance(queries, Mapping):
                out[str(mode)] = {
                    str(q): {m: float(v) for m, v in ms.items() if isinstance(v, int | float)}
                    for q, ms in queries.items() if isinstance(ms, Mapping)
                }
    elif isinstance(data, list):
        for rec in data:
            if not isinstance(rec, Mapping) or "mode" not in rec:
                continue
            qid = rec.get("query_id", rec.get("id", rec.get("query")))
            if qid is None:
                continue
            measures = {m: float(v) for m, v in rec.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            out.setdefault(str(rec["mode"]), {})[str(qid)] = measures
    return out


def read_eval_run(path: str | Path) -> EvalRun:
    """One ``eval-*.json`` file as written by ``legalsearch eval``; ArtifactError when it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"evaluation results {p} are unreadable: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ArtifactError(f"{p} is not an evaluation results object")
    # a mode is any key whose value maps measure names to numbers
    scores = {
        mode: {m: float(v) for m, v in values.items()}
        for mode, values in data.items()
        if isinstance(values, Mapping) and values and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()
        ) and any("@" in m for m in values)
    }
    if not scores:
        raise ArtifactError(f"{p} holds no mode with measures")
    return EvalRun(
        name=p.stem, path=p, model=str(data.get("model", "?")), queries=int(data.get("queries", 0)),
        scores=scores, per_query=_per_query(data.get("per_query", {})),
    )


def load_eval_runs(folder: str | Path, pattern: str = "eval-*.json") -> list[EvalRun]:
    """Every readable evaluation results file in a folder (none when the folder is absent), by name."""
    root = Path(folder)
    runs = []
    for path in sorted(root.glob(pattern)) if root.is_dir() else []:
        try:
            runs.append(read_eval_run(path))
        except ArtifactError as exc:
            log.warning("skipping %s", exc)
    return runs


def worst_queries(
    run: EvalRun, mode: str, measure: str = "nDCG@10", baseline: str | None = "reference-bm25", n: int = 10
) -> list[QueryScore]:
    """The ``n`` queries a mode does worst on, with the baseline's value beside (biggest loss first on ties)."""
    mine = run.per_query.get(mode)
    if not mine:
        raise InvalidRequestError(f"{run.name} has no per-query results for mode {mode!r}")
    base = run.per_query.get(baseline or "", {})
    scored = []
    for qid, measures in mine.items():
        if measure not in measures:
            continue
        b = base.get(qid, {}).get(measure)
        scored.append(QueryScore(qid, measures[measure], b))
    scored.sort(key=lambda s: (s.value, -(s.baseline or 0.0), s.query_id))
    return scored[:n]


#: "§ 13 Abs. 2 Nr. 2 DMietG": a section number, then (within a short span) the law's abbreviation
_CITATION = re.compile(r"§\s*(\d+\s?[a-z]?)\b([^§;()]{0,40})")


def citation_questions(model: Model) -> list[Query]:
    """Questions derived from the model's decisions: a decision's title asks for the sections its text cites.

    Citations are read as "§ <number> … <law>" (the first known law abbreviation within 40 characters after the
    number); only sections the model holds count. Decisions citing none are left out.
    """
    rows = range(len(model.documents))
    laws = {str(v) for r in rows if (v := model.documents.field_value("law", r)) is not None}
    known = model.index.rows
    out = []
    for r in rows:
        doc = model.documents.get(r)
        if doc.type != "decision" or not doc.title:
            continue
        cited: list[str] = []
        for number, tail in _CITATION.findall(doc.text):
            law = next((w for w in re.findall(r"[\wÄÖÜäöüß-]+", tail) if w in laws), None)
            if law is None:
                continue
            section = f"{law} § {number.replace(' ', '')}"
            if section in known and section not in cited:
                cited.append(section)
        if cited:
            out.append(Query(doc.id, doc.title, tuple(cited)))
    return out


@dataclass(frozen=True)
class Returned:
    """One document a mode returned for a question."""

    doc_id: str
    title: str
    score: float
    relevant: bool


@dataclass(frozen=True)
class Miss:
    """A question a mode did badly on: its relevant documents and what the mode returned instead."""

    query_id: str
    query: str
    value: float
    #: the best value any other evaluated mode reached on this question
    best_other: float
    #: (doc id, title) of each relevant document; the title is "(not in the model)" for unknown ids
    relevant: tuple[tuple[str, str], ...]
    #: rank (from 1) of the first relevant document in the mode's 100-deep list, None when it is not there
    first_relevant_rank: int | None
    returned: tuple[Returned, ...]

    def relevant_ids(self) -> frozenset[str]:
        """The ids of the relevant documents."""
        return frozenset(d for d, _ in self.relevant)


def _title(model: Model, doc_id: str) -> str:
    row = model.index.rows.get(doc_id)
    return "(not in the model)" if row is None else model.documents.get(int(row)).title


def worst_misses(
    model: Model, report: EvalReport, queries: Sequence[Query], mode: str, measure: str = "nDCG@10",
    n: int = 5, shown: int = 5,
) -> list[Miss]:
    """The ``n`` questions ``mode`` scores lowest on by ``measure``, those other modes got right first.

    Each comes with its relevant documents and the mode's first ``shown`` results.
    """
    mine = report.mode(mode)
    others = [m for m in report.modes if m.mode != mode]
    texts = {q.id: q.text for q in queries}
    order = sorted(
        mine.per_query,
        key=lambda q: (mine.per_query[q][measure], -max((o.per_query[q][measure] for o in others), default=0.0), q),
    )
    misses = []
    for qid in order[:n]:
        relevant = set(report.qrels.get(qid, ()))
        ranked = mine.run.get(qid, [])
        first = next((i for i, (d, _) in enumerate(ranked, 1) if d in relevant), None)
        misses.append(Miss(
            query_id=qid, query=texts.get(qid, ""), value=mine.per_query[qid][measure],
            best_other=max((o.per_query[qid][measure] for o in others), default=0.0),
            relevant=tuple((d, _title(model, d)) for d in report.qrels.get(qid, ())),
            first_relevant_rank=first,
            returned=tuple(Returned(d, _title(model, d), s, d in relevant) for d, s in ranked[:shown]),
        ))
    return misses


def phrase_artefacts(model: Model) -> list[str]:
    """Vector keys where a phrase joins a compound to one of its own parts (``arbeitsverhältnis_arbeit``).

    The preprocessor follows each compound with its parts, so the phrase model sees "compound part" as a
    frequent pair and learns it: such keys are artefacts of preprocessing, not multiword legal terms.
    """
    out = []
    for key in model.vectors.index_to_key:
        parts = key.split(PHRASE_JOINER)
        if len(parts) > 1 and any(p != q and q in p for p in parts for q in parts):
            out.append(key)
    return out


def neighbours(model: Model, term: str, k: int = 10, vocabulary_only: bool = True) -> list[SimilarTerm]:
    """Nearest terms of a human-written term or a vector key (see ``vector_key``), best first.

    ``vocabulary_only`` restricts them to the keyword vocabulary, as the API serves related terms.
    """
    key = term if term in model.vectors.key_to_index else vector_key(model, term)
    return _similar_terms(model.vectors, key, k, allowed=model.keyword_terms if vocabulary_only else None)
