"""Stage: retrieval evaluation of a model on a question set (nDCG@10, MRR@10, R@10, R@100 via ir-measures).

Every mode runs over the same model and the same (optionally filtered) collection, next to the fixed
reference BM25, so that the figures of one run are comparable with each other. Anything tuned on the
questions is tuned on the "tune" half and reported on the "test" half (see ``split_of``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG
from tqdm import tqdm

from legalsearch.docstore import FilterValue
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError, InvalidRequestError
from legalsearch.lexical import ReferenceBM25
from legalsearch.ranking import rank

log = logging.getLogger(__name__)

Split = Literal["tune", "test", "all"]
MODES = ("reference-bm25", "lexical", "embedding", "hybrid")
#: our JSON keys and the ir-measures measures behind them
MEASURES = {"nDCG@10": nDCG @ 10, "MRR@10": RR @ 10, "R@10": R @ 10, "R@100": R @ 100}
#: depth of every run (R@100 needs 100)
DEPTH = 100


@dataclass(frozen=True)
class Query:
    """One evaluation question with the ids of the documents that answer it."""

    id: str
    text: str
    relevant: tuple[str, ...]


@dataclass(frozen=True)
class ModeScores:
    """Mean measures of one mode over the evaluated queries."""

    mode: str
    scores: Mapping[str, float]
    seconds: float


@dataclass(frozen=True)
class EvalReport:
    """The result of one evaluation run."""

    model: str
    queries: int
    split: str
    filters: Mapping[str, FilterValue]
    unknown_relevant: int
    relevant: int
    modes: tuple[ModeScores, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"<mode>": {measure: value}, "queries": N, "model": version, ...}``."""
        out: dict[str, Any] = {m.mode: {k: round(v, 4) for k, v in m.scores.items()} for m in self.modes}
        out.update({
            "queries": self.queries,
            "model": self.model,
            "split": self.split,
            "filters": dict(self.filters),
            "relevant_ids": self.relevant,
            "unknown_relevant_ids": self.unknown_relevant,
            "seconds": {m.mode: round(m.seconds, 1) for m in self.modes},
        })
        out.update(self.extra)
        return out

    def table(self) -> str:
        """A plain-text table, one line per mode."""
        head = f"{'mode':<16}" + "".join(f"{k:>9}" for k in MEASURES)
        lines = [head, "-" * len(head)]
        for m in self.modes:
            lines.append(f"{m.mode:<16}" + "".join(f"{m.scores[k]:>9.4f}" for k in MEASURES))
        lines.append(
            f"{self.queries} queries ({self.split} split), model {self.model}, "
            f"{self.unknown_relevant} of {self.relevant} relevant ids unknown to the model"
        )
        return "\n".join(lines)


def split_of(query_id: str) -> Literal["tune", "test"]:
    """The half a query belongs to: sha1(id) even -> "tune", odd -> "test" (stable across runs and machines)."""
    return "tune" if hashlib.sha1(query_id.encode("utf-8")).digest()[-1] % 2 == 0 else "test"


def select_split(queries: Iterable[Query], split: Split) -> list[Query]:
    """The queries of one half, or all of them."""
    if split not in ("tune", "test", "all"):
        raise InvalidRequestError(f"unknown split {split!r}: use tune, test or all")
    return [q for q in queries if split == "all" or split_of(q.id) == split]


def load_queries(path: str | Path) -> list[Query]:
    """Read JSON Lines ``{"id", "query", "relevant": [doc ids]}``; InvalidRequestError on a malformed line."""
    p = Path(path)
    queries: list[Query] = []
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequestError(f"cannot read the query file {p}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            query = Query(str(rec["id"]), str(rec["query"]), tuple(str(r) for r in rec["relevant"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidRequestError(f"{p}:{n}: not a query record ({exc})") from exc
        queries.append(query)
    if not queries:
        raise InvalidRequestError(f"{p} holds no query")
    return queries


def parse_filters(items: Sequence[str]) -> dict[str, FilterValue]:
    """``["law=BGB", "law=HGB", "type=section"]`` -> ``{"law": ["BGB", "HGB"], "type": "section"}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidRequestError(f"filter {item!r} is not FIELD=VALUE")
        out.setdefault(key.strip(), []).append(value.strip())
    return {k: v[0] if len(v) == 1 else list(v) for k, v in out.items()}


def measure(
    qrels: Mapping[str, Sequence[str]], run: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Mean measures over every query of ``qrels``; ``run`` gives ranked doc ids per query.

    The run's order is taken as is (scores are rewritten as descending ranks, so ir-measures cannot reorder
    ties); a query missing from the run or with nothing retrieved scores 0.
    """
    if not qrels:
        raise InvalidRequestError("no query to measure")
    qrel_list = [ir_measures.Qrel(q, d, 1) for q, docs in qrels.items() for d in dict.fromkeys(docs)]
    run_list = [
        ir_measures.ScoredDoc(q, d, float(len(docs) - i))
        for q, docs in run.items() if q in qrels
        for i, d in enumerate(docs)
    ]
    sums = dict.fromkeys(MEASURES, 0.0)
    by_measure = {m: name for name, m in MEASURES.items()}
    for metric in ir_measures.iter_calc(list(MEASURES.values()), qrel_list, run_list):
        sums[by_measure[metric.measure]] += float(metric.value)
    return {name: total / len(qrels) for name, total in sums.items()}


def _reference_run(
    model: Model, rows: np.ndarray, queries: Sequence[Query], progress: bool
) -> dict[str, list[str]]:
    texts = []
    for row in rows:
        doc = model.documents.get(int(row))
        texts.append(f"{doc.title}\n{doc.text}")
    reference = ReferenceBM25.build(texts)
    run: dict[str, list[str]] = {}
    for q in tqdm(queries, desc="reference-bm25", unit="query", disable=not progress):
        hits = reference.search([q.text], DEPTH)
        run[q.id] = [model.index.ids[int(rows[r])] for r in hits.rows[0] if r >= 0]
    return run


def _model_run(
    model: Model, queries: Sequence[Query], mode: str, filters: Mapping[str, FilterValue] | None, progress: bool
) -> dict[str, list[str]]:
    run: dict[str, list[str]] = {}
    for q in tqdm(queries, desc=mode, unit="query", disable=not progress):
        try:
            ranked = rank(model, q.text, DEPTH, filters=filters, mode=mode)
        except EmptyQueryError:
            run[q.id] = []
            continue
        run[q.id] = [model.index.ids[int(r)] for r in ranked.rows]
    return run


def evaluate(
    model: Model,
    queries: Sequence[Query],
    modes: Sequence[str] = MODES,
    filters: Mapping[str, FilterValue] | None = None,
    split: Split = "test",
    progress: bool = True,
) -> EvalReport:
    """Run every mode over the queries of ``split`` and measure them against the same qrels."""
    unknown_modes = [m for m in modes if m not in MODES]
    if unknown_modes:
        raise InvalidRequestError(f"unknown mode(s) {', '.join(unknown_modes)}; known: {', '.join(MODES)}")
    chosen = select_split(queries, split)
    if not chosen:
        raise InvalidRequestError(f"no query in the {split!r} split")
    qrels = {q.id: q.relevant for q in chosen}
    relevant = [d for q in chosen for d in dict.fromkeys(q.relevant)]
    unknown = sum(1 for d in relevant if d not in model.index.rows)
    rows = (
        model.documents.filter_rows(filters) if filters
        else np.arange(len(model.documents), dtype=np.int64)
    )
    if rows.size == 0:
        raise InvalidRequestError(f"no document matches the filter {dict(filters or {})}")
    results: list[ModeScores] = []
    for mode in modes:
        started = time.perf_counter()
        if mode == "reference-bm25":
            run = _reference_run(model, rows, chosen, progress)
        else:
            run = _model_run(model, chosen, mode, filters or None, progress)
        seconds = time.perf_counter() - started
        scores = measure(qrels, run)
        log.info("%s: %s (%.1f s)", mode, scores, seconds)
        results.append(ModeScores(mode, scores, seconds))
    return EvalReport(
        model=model.version, queries=len(chosen), split=split, filters=dict(filters or {}),
        unknown_relevant=unknown, relevant=len(relevant), modes=tuple(results),
        extra={"collection_documents": int(rows.size)},
    )
