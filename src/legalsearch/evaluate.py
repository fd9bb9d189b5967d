"""Stage: retrieval evaluation of a model on a question set (nDCG@10, MRR@10, R@10, R@100 via ir-measures).

Every mode runs over the same model and the same (optionally filtered) collection, next to the fixed
reference BM25, so that the figures of one run are comparable with each other. Anything tuned on the
questions is tuned on the "tune" half and reported on the "test" half (see ``split_of``). Each report keeps
the ranked lists and per-query measures (for TREC run files and error analysis) and paired significance tests
between the modes on per-query nDCG@10.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG
from scipy import stats
from tqdm import tqdm

from legalsearch.docstore import FilterValue
from legalsearch.engine import Model
from legalsearch.errors import EmptyQueryError, InvalidRequestError
from legalsearch.feedback import key_digest
from legalsearch.lexical import ReferenceBM25
from legalsearch.ranking import FEEDBACK_MODES, rank

log = logging.getLogger(__name__)

Split = Literal["tune", "test", "all"]
MODES = ("reference-bm25", "lexical", "embedding", "hybrid")
#: our JSON keys and the ir-measures measures behind them
MEASURES = {"nDCG@10": nDCG @ 10, "MRR@10": RR @ 10, "R@10": R @ 10, "R@100": R @ 100}
#: depth of every run (R@100 needs 100)
DEPTH = 100
#: the per-query measure the paired significance tests compare
SIGNIFICANCE_MEASURE = "nDCG@10"

#: one query's ranked (doc id, score) list
RankedList = list[tuple[str, float]]


@dataclass(frozen=True)
class Query:
    """One evaluation question with the ids of the documents that answer it."""

    id: str
    text: str
    relevant: tuple[str, ...]


@dataclass(frozen=True)
class ModeScores:
    """Mean measures of one mode over the evaluated queries, with what they are the mean of."""

    mode: str
    scores: Mapping[str, float]
    seconds: float
    #: query id -> measure -> value, for every evaluated query (0 where nothing relevant was retrieved)
    per_query: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: query id -> the ranked (doc id, score) list, DEPTH deep (empty when the query had no usable term)
    run: Mapping[str, RankedList] = field(default_factory=dict)


@dataclass(frozen=True)
class PairedTest:
    """Mode ``a`` against mode ``b`` on one per-query measure, over the same queries.

    ``mean_difference`` is mean(a - b). ``t_p`` is the two-sided paired t-test's p-value, ``wilcoxon_p`` the
    two-sided Wilcoxon signed-rank test's (queries with equal values dropped, scipy's "wilcox" method); both are
    None when no query differs (the tests are undefined then).
    """

    a: str
    b: str
    measure: str
    queries: int
    mean_a: float
    mean_b: float
    mean_difference: float
    wins: int
    losses: int
    ties: int
    t_statistic: float | None
    t_p: float | None
    wilcoxon_statistic: float | None
    wilcoxon_p: float | None

    def line(self) -> str:
        """One human-readable line."""
        t_p = "n/a" if self.t_p is None else f"{self.t_p:.4g}"
        w_p = "n/a" if self.wilcoxon_p is None else f"{self.wilcoxon_p:.4g}"
        return (
            f"{self.a} vs {self.b}: {self.measure} {self.mean_difference:+.4f} "
            f"({self.wins} better, {self.losses} worse, {self.ties} equal), paired t p={t_p}, Wilcoxon p={w_p}"
        )


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
    #: every pair of modes, later mode as ``a`` (see :func:`paired_tests`)
    significance: tuple[PairedTest, ...] = ()
    #: query id -> the relevant doc ids of each evaluated query
    qrels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def mode(self, name: str) -> ModeScores:
        """The scores of one evaluated mode; InvalidRequestError when it was not evaluated."""
        for m in self.modes:
            if m.mode == name:
                return m
        evaluated = ", ".join(m.mode for m in self.modes)
        raise InvalidRequestError(f"mode {name!r} was not evaluated; evaluated: {evaluated}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"<mode>": {measure: value}, "queries": N, "model": version, "significance": [...]}``.

        Per-query values and ranked lists are left out (see :func:`write_run_files`): this form goes into the
        model's manifest.
        """
        out: dict[str, Any] = {m.mode: {k: round(v, 4) for k, v in m.scores.items()} for m in self.modes}
        out.update({
            "queries": self.queries,
            "model": self.model,
            "split": self.split,
            "filters": dict(self.filters),
            "relevant_ids": self.relevant,
            "unknown_relevant_ids": self.unknown_relevant,
            "seconds": {m.mode: round(m.seconds, 1) for m in self.modes},
            "significance": [_rounded(asdict(t)) for t in self.significance],
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
        lines.extend(t.line() for t in self.significance)
        return "\n".join(lines)


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}


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


def per_query_measures(
    qrels: Mapping[str, Sequence[str]], run: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Every measure of every query of ``qrels`` (query id -> measure -> value); ``run``: ranked doc ids.

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
    out = {q: dict.fromkeys(MEASURES, 0.0) for q in qrels}
    by_measure = {m: name for name, m in MEASURES.items()}
    for metric in ir_measures.iter_calc(list(MEASURES.values()), qrel_list, run_list):
        out[metric.query_id][by_measure[metric.measure]] = float(metric.value)
    return out


def mean_measures(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The mean of each measure over the queries of :func:`per_query_measures`."""
    if not per_query:
        raise InvalidRequestError("no query to measure")
    return {name: sum(v[name] for v in per_query.values()) / len(per_query) for name in MEASURES}


def measure(
    qrels: Mapping[str, Sequence[str]], run: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Mean measures over every query of ``qrels``; ``run`` gives ranked doc ids per query (see
    :func:`per_query_measures`)."""
    return mean_measures(per_query_measures(qrels, run))


def paired_test(
    a: str, b: str, values_a: Sequence[float], values_b: Sequence[float], measure_name: str = SIGNIFICANCE_MEASURE
) -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test of ``values_a`` against ``values_b`` (same queries, same order)."""
    if len(values_a) != len(values_b) or not values_a:
        raise InvalidRequestError("a paired test needs the same, non-empty set of queries on both sides")
    x, y = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    diff = x - y
    differs = bool(np.any(diff != 0))
    t_stat = t_p = w_stat = w_p = None
    if differs:
        with warnings.catch_warnings():
            # small samples and ties make scipy warn about its approximations; the p-values are still reported
            warnings.simplefilter("ignore")
            t = stats.ttest_rel(x, y)
            w = stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
        t_stat, t_p = _finite(t.statistic), _finite(t.pvalue)
        w_stat, w_p = _finite(w.statistic), _finite(w.pvalue)
    return PairedTest(
        a=a, b=b, measure=measure_name, queries=len(diff), mean_a=float(x.mean()), mean_b=float(y.mean()),
        mean_difference=float(diff.mean()), wins=int((diff > 0).sum()), losses=int((diff < 0).sum()),
        ties=int((diff == 0).sum()), t_statistic=t_stat, t_p=t_p, wilcoxon_statistic=w_stat, wilcoxon_p=w_p,
    )


def _finite(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def paired_tests(modes: Sequence[ModeScores], measure_name: str = SIGNIFICANCE_MEASURE) -> list[PairedTest]:
    """A paired test for every pair of modes (the later mode of the list as ``a``), on their common queries."""
    out = []
    for first, second in itertools.combinations(modes, 2):
        common = [q for q in second.per_query if q in first.per_query]
        if not common:
            continue
        out.append(paired_test(
            second.mode, first.mode,
            [second.per_query[q][measure_name] for q in common],
            [first.per_query[q][measure_name] for q in common],
            measure_name,
        ))
    return out


def _reference_run(
    model: Model, rows: np.ndarray, queries: Sequence[Query], progress: bool
) -> dict[str, RankedList]:
    texts = []
    for row in rows:
        doc = model.documents.get(int(row))
        texts.append(f"{doc.title}\n{doc.text}")
    reference = ReferenceBM25.build(texts)
    run: dict[str, RankedList] = {}
    for q in tqdm(queries, desc="reference-bm25", unit="query", disable=not progress):
        hits = reference.search([q.text], DEPTH)
        run[q.id] = [
            (model.index.ids[int(rows[r])], float(s)) for r, s in zip(hits.rows[0], hits.scores[0], strict=True)
            if r >= 0
        ]
    return run


def _model_run(
    model: Model, queries: Sequence[Query], mode: str, filters: Mapping[str, FilterValue] | None, progress: bool
) -> dict[str, RankedList]:
    run: dict[str, RankedList] = {}
    for q in tqdm(queries, desc=mode, unit="query", disable=not progress):
        try:
            ranked = rank(model, q.text, DEPTH, filters=filters, mode=mode)
        except EmptyQueryError:
            run[q.id] = []
            continue
        run[q.id] = [(model.index.ids[int(r)], float(s)) for r, s in zip(ranked.rows, ranked.scores, strict=True)]
    return run


def modes_of(model: Model) -> tuple[str, ...]:
    """The modes ``evaluate`` knows for a model: ``MODES``, and for a model trained with feedback each feedback
    signal alone and the hybrid without each (``ranking.FEEDBACK_MODES``)."""
    return MODES + (FEEDBACK_MODES if model.feedback is not None else ())


def check_not_trained_on(model: Model, queries: Sequence[Query]) -> None:
    """InvalidRequestError when a question trained the model's feedback: its figures would be no test figures."""
    if model.feedback is None:
        return
    trained = [q.id for q in queries if key_digest(q.id) in model.feedback.keys]
    if trained:
        raise InvalidRequestError(
            f"{len(trained)} of the {len(queries)} questions to evaluate trained this model's feedback (e.g. "
            f"{trained[0]}): evaluate the split it was not trained on (train --feedback-split, eval --split)"
        )


def evaluate(
    model: Model,
    queries: Sequence[Query],
    modes: Sequence[str] | None = None,
    filters: Mapping[str, FilterValue] | None = None,
    split: Split = "test",
    progress: bool = True,
) -> EvalReport:
    """Run every mode (default: ``modes_of(model)``) over the queries of ``split`` and measure them against the
    same qrels. Refuses questions that trained the model's feedback."""
    known = modes_of(model)
    modes = known if modes is None else modes
    unknown_modes = [m for m in modes if m not in known]
    if unknown_modes:
        raise InvalidRequestError(f"unknown mode(s) {', '.join(unknown_modes)}; known: {', '.join(known)}")
    chosen = select_split(queries, split)
    if not chosen:
        raise InvalidRequestError(f"no query in the {split!r} split")
    check_not_trained_on(model, chosen)
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
        per_query = per_query_measures(qrels, {q: [d for d, _ in docs] for q, docs in run.items()})
        scores = mean_measures(per_query)
        log.info("%s: %s (%.1f s)", mode, scores, seconds)
        results.append(ModeScores(mode, scores, seconds, per_query=per_query, run=run))
    return EvalReport(
        model=model.version, queries=len(chosen), split=split, filters=dict(filters or {}),
        unknown_relevant=unknown, relevant=len(relevant), modes=tuple(results),
        extra={"collection_documents": int(rows.size)}, significance=tuple(paired_tests(results)),
        qrels={q.id: q.relevant for q in chosen},
    )


def run_file_paths(path: str | Path, mode: str) -> tuple[Path, Path]:
    """Where :func:`write_run_files` puts one mode's files: ``runs/x.run`` -> ``runs/x.<mode>.run`` and
    ``runs/x.<mode>.tsv`` (``.run`` when the path has no suffix)."""
    p = Path(path)
    suffix = p.suffix or ".run"
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.{mode}{suffix}"), p.with_name(f"{stem}.{mode}.tsv")


def qrels_path(path: str | Path) -> Path:
    """Where :func:`write_run_files` puts the qrels: ``runs/x.run`` -> ``runs/x.qrels``."""
    p = Path(path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.qrels")


def write_run_files(report: EvalReport, path: str | Path, tag_prefix: str = "legalsearch") -> list[Path]:
    """Write each mode's TREC run file and per-query scores beside it, and the qrels; returns the paths written.

    Run file lines: ``qid Q0 docid rank score tag`` (rank from 1, the evaluated order; score as ranked, so tools
    that re-sort by score may order tied documents differently). Per-query TSV: a header, then one line per
    query: ``query_id``, each measure, ``retrieved``. Qrels lines: ``qid 0 docid 1``. Whitespace inside ids
    (``BGB § 573``) becomes ``_`` in all of them, as the format separates fields by whitespace.
    """
    qrels = qrels_path(path)
    try:
        qrels.parent.mkdir(parents=True, exist_ok=True)
        _write_text(qrels, "".join(
            f"{_trec_field(q)} 0 {_trec_field(d)} 1\n" for q, docs in report.qrels.items() for d in dict.fromkeys(docs)
        ))
    except OSError as exc:
        raise InvalidRequestError(f"cannot write the qrels {qrels}: {exc}") from exc
    written = [qrels]
    for m in report.modes:
        run_path, tsv_path = run_file_paths(path, m.mode)
        tag = f"{tag_prefix}-{m.mode}"
        lines = [
            f"{_trec_field(qid)} Q0 {_trec_field(doc)} {rank} {score:.6f} {tag}"
            for qid, docs in m.run.items() for rank, (doc, score) in enumerate(docs, 1)
        ]
        rows = ["\t".join(["query_id", *MEASURES, "retrieved"])]
        rows += [
            "\t".join([_trec_field(qid), *(f"{values[k]:.6f}" for k in MEASURES), str(len(m.run.get(qid, ())))])
            for qid, values in m.per_query.items()
        ]
        try:
            _write_text(run_path, "".join(line + "\n" for line in lines))
            _write_text(tsv_path, "".join(row + "\n" for row in rows))
        except OSError as exc:
            raise InvalidRequestError(f"cannot write the run files {run_path}: {exc}") from exc
        written += [run_path, tsv_path]
    return written


def _trec_field(value: str) -> str:
    # TREC run files are whitespace-separated; ids such as "BGB § 573" carry spaces
    return "_".join(value.split())


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
