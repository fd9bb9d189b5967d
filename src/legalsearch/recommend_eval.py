"""Stage: evaluation of recommendations by seed document, and fitting of the fusion of relatedness signals.

A question answered by several documents of the collection makes each of them a seed; the other documents of
that answer are the seed's targets (co-relevance). Seeds go to the half of their question (``split_of``). One
run measures, over the same collection:

* ``mlt-reference``: More-Like-This, the seed's ``MLT_TERMS`` best TF-IDF keywords as a query to the reference
  BM25 (``lexical.ReferenceBM25`` over the collection);
* ``position``: the nearest sections of the seed's law by position (no model);
* ``rrf-baselines``: reciprocal rank fusion (k = 60) of the two;
* ``word2vec``: the word2vec ranking alone (what ``/recommend`` served before the fusion);
* ``legalsearch``: ``/recommend`` by id as the model serves it (``ranking.recommend``);
* ``fused`` and ``fused-without-<signal>``: the fusion of ``relatedness.SIGNALS`` fitted on the tune half in this
  run (each left-out signal refitted without it), measured on the chosen split.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from legalsearch.docstore import FilterValue
from legalsearch.engine import Model
from legalsearch.errors import InvalidRequestError
from legalsearch.evaluate import (
    DEPTH,
    MEASURES,
    Query,
    Split,
    mean_measures,
    per_query_measures,
    select_split,
    split_of,
)
from legalsearch.lexical import ReferenceBM25
from legalsearch.relatedness import (
    FEATURE_NAMES,
    FEATURES,
    FEEDBACK_FILES,
    FUSION_FILE,
    MLT_TERMS,
    SIGNALS,
    Candidates,
    CoRelevance,
    Fusion,
    Trees,
    candidates,
    structure_of,
)

log = logging.getLogger(__name__)

BASELINES = ("mlt-reference", "position", "rrf-baselines")
#: the k of reciprocal rank fusion
RRF_K = 60


@dataclass(frozen=True)
class Seed:
    """One seed: a document of a question's answer, with the other documents of that answer as targets."""

    id: str
    question: str
    doc: str
    row: int
    targets: tuple[str, ...]
    split: str


def make_seeds(model: Model, queries: Sequence[Query], rows: np.ndarray) -> list[Seed]:
    """Every known document of the collection (``rows``) in an answer with at least one other one."""
    inside = set(rows.tolist())
    seeds = []
    for q in queries:
        answer = [d for d in dict.fromkeys(q.relevant) if model.index.rows.get(d) in inside]
        if len(answer) < 2:
            continue
        for doc in answer:
            seeds.append(Seed(f"{q.id}|{doc}", q.id, doc, model.index.rows[doc],
                              tuple(d for d in answer if d != doc), split_of(q.id)))
    return seeds


def mlt_reference_run(model: Model, rows: np.ndarray, seeds: Sequence[Seed], progress: bool) -> (
    dict[str, list[str]]
):
    """More-Like-This over the reference BM25: the seed's best keywords as the query."""
    reference = ReferenceBM25.build([f"{d.title}\n{d.text}" for d in (model.documents.get(int(r)) for r in rows)])
    ids = model.index.ids
    run: dict[str, list[str]] = {}
    for s in tqdm(seeds, desc="mlt-reference", unit="seed", disable=not progress):
        terms = model.keywords(s.doc, MLT_TERMS)
        query = " ".join(kw.term.replace("_", " ") for kw in terms)
        hits = reference.search([query], DEPTH + 1).rows[0] if query else np.zeros(0, np.int64)
        run[s.id] = [d for d in (ids[int(rows[h])] for h in hits if h >= 0) if d != s.doc][:DEPTH]
    return run


def position_run(model: Model, rows: np.ndarray, seeds: Sequence[Seed]) -> dict[str, list[str]]:
    """The sections of the seed's law nearest to it by position (the next one before the previous one)."""
    law = structure_of(model).law
    ids = model.index.ids
    run: dict[str, list[str]] = {}
    for s in seeds:
        same = rows[law[rows] == law[s.row]] if law[s.row] >= 0 else rows[:0]
        same = same[same != s.row]
        distance = np.abs(same - s.row) * 2 - (same > s.row)
        run[s.id] = [ids[int(r)] for r in same[np.argsort(distance, kind="stable")][:DEPTH]]
    return run


def rrf(runs: Sequence[Mapping[str, Sequence[str]]], k: int = RRF_K) -> dict[str, list[str]]:
    """Reciprocal rank fusion of runs (ties by id)."""
    out: dict[str, list[str]] = {}
    for q in runs[0]:
        scores: dict[str, float] = {}
        for run in runs:
            for rank, d in enumerate(run.get(q, ()), 1):
                scores[d] = scores.get(d, 0.0) + 1.0 / (k + rank)
        out[q] = sorted(scores, key=lambda d: (-scores[d], d))[:DEPTH]
    return out


def served_run(model: Model, seeds: Sequence[Seed], filters: Mapping[str, FilterValue] | None, fused: bool,
               progress: bool, name: str) -> dict[str, list[str]]:
    """``/recommend`` by id for each seed (``fused=False``: the word2vec ranking alone)."""
    from legalsearch.ranking import recommend

    run: dict[str, list[str]] = {}
    for s in tqdm(seeds, desc=name, unit="seed", disable=not progress):
        result = recommend(model, positive=[s.doc], k=DEPTH, filters=filters, fused=fused)
        run[s.id] = [r.doc_id for r in result.results]
    return run


def seed_candidates(model: Model, seeds: Sequence[Seed], rows: np.ndarray | None, progress: bool,
                    own: Mapping[str, Sequence[int]] | None = None) -> dict[str, Candidates]:
    """Every seed's candidates with all signals. ``own``: per question the rows of its answer, whose own
    co-relevance is taken out of the feedback feature (a tune question must not vouch for itself)."""
    out: dict[str, Candidates] = {}
    col = FEATURE_NAMES.index("co_relevant")
    for s in tqdm(seeds, desc="candidates", unit="seed", disable=not progress):
        found = candidates(model, [s.row], allowed=rows)
        if own is not None and s.question in own and found.rows.size:
            mine = np.isin(found.rows, np.asarray(own[s.question], dtype=np.int64))
            counts = np.rint(np.expm1(found.features[:, col])) - mine
            found.features[:, col] = np.log1p(np.maximum(counts, 0))
            keep = ~((found.sources == 1 << SIGNALS.index("feedback")) & (counts <= 0))
            found = Candidates(found.rows[keep], found.features[keep], found.sources[keep], found.found)
        out[s.id] = found
    return out


def _columns(signals: Sequence[str]) -> np.ndarray:
    return np.array([FEATURE_NAMES.index(f) for s in signals for f in FEATURES[s]], dtype=np.int64)


def _mask(signals: Sequence[str]) -> int:
    return sum(1 << SIGNALS.index(s) for s in signals)


def _kept(found: Candidates, signals: Sequence[str]) -> np.ndarray:
    return (found.sources & _mask(signals)) != 0


#: the boosted trees' settings: shallow trees with large leaves generalise from the tune half's sections to
#: others (nDCG@10 on test seeds whose section never was a tune seed stays as high as on the rest)
TREE_SETTINGS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 16, "max_depth": 3,
                 "min_samples_leaf": 100, "random_state": 0}


#: the ranker's settings (LightGBM's lambdarank: it optimises each seed's nDCG of its candidates, where the
#: classifier scored each candidate alone); one thread and a fixed seed: the same trees on every run
RANKER_SETTINGS: dict[str, Any] = {
    "objective": "lambdarank", "n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "max_depth": 4,
    "min_child_samples": 100, "lambdarank_truncation_level": 20, "random_state": 0, "num_threads": 1,
    "deterministic": True, "force_row_wise": True, "verbose": -1,
}


def _training_set(model: Model, seeds: Sequence[Seed], found: Mapping[str, Candidates], cols: np.ndarray,
                  signals: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The candidates' features, whether each is a target, and how many candidates each seed has."""
    xs, ys = [], []
    ids = model.index.ids
    for s in seeds:
        c = found[s.id]
        keep = _kept(c, signals)
        xs.append(c.features[keep][:, cols])
        targets = set(s.targets)
        ys.append(np.array([ids[int(r)] in targets for r in c.rows[keep].tolist()], dtype=bool))
    return np.concatenate(xs), np.concatenate(ys), [y.size for y in ys]


def fit_fusion(model: Model, seeds: Sequence[Seed], found: Mapping[str, Candidates], signals: Sequence[str],
               info: Mapping[str, Any] | None = None, kind: str = "ranker") -> Fusion:
    """Fit the ranking of the candidates by their features of ``signals`` (tune seeds only): boosted trees
    ranking each seed's candidates (``kind="ranker"``, LightGBM's lambdarank), boosted trees classifying each
    candidate as a target or not ("trees", scikit-learn's HistGradientBoostingClassifier) or a logistic
    regression of the same ("linear")."""
    cols = _columns(signals)
    x, y, groups = _training_set(model, seeds, found, cols, signals)
    if not y.any() or y.all():
        raise InvalidRequestError("the tune seeds' candidates hold no target (or nothing else): cannot fit")
    about = {"kind": kind, "fitted_on": len(seeds), "candidates": int(y.size), "targets": int(y.sum()),
             **(info or {})}
    if kind == "linear":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(x, y)
        weights = {FEATURE_NAMES[c]: round(float(w), 6) for c, w in zip(cols.tolist(), clf.coef_[0], strict=True)}
        return Fusion(tuple(signals), weights, round(float(clf.intercept_[0]), 6), about)
    if kind == "ranker":
        import lightgbm

        ranker = lightgbm.LGBMRanker(**RANKER_SETTINGS).fit(x, y.astype(np.int64), group=groups)
        return Fusion(tuple(signals), {}, 0.0, {**about, "ranker": RANKER_SETTINGS},
                      _trees_of_lightgbm(ranker.booster_, cols))
    if kind != "trees":
        raise InvalidRequestError(f"unknown fusion kind {kind!r}: use ranker, trees or linear")
    from sklearn.ensemble import HistGradientBoostingClassifier

    boosted = HistGradientBoostingClassifier(**TREE_SETTINGS).fit(x, y)
    return Fusion(tuple(signals), {}, float(np.ravel(boosted._baseline_prediction)[0]),
                  {**about, "trees": TREE_SETTINGS}, _trees_of(boosted, cols))


def _trees_of(boosted: Any, cols: np.ndarray) -> Trees:
    """scikit-learn's fitted trees as flat arrays over ``FEATURE_NAMES`` columns (a tree's nodes follow each
    other; child indices are made global)."""
    nodes = [p[0].nodes for p in boosted._predictors]
    offsets = np.cumsum([0] + [len(n) for n in nodes[:-1]])
    flat = np.concatenate(nodes)
    shift = np.repeat(offsets, [len(n) for n in nodes])
    leaf = flat["is_leaf"].astype(bool)
    return Trees(
        roots=offsets.astype(np.int64), feature=cols[flat["feature_idx"]].astype(np.int64),
        threshold=flat["num_threshold"].astype(np.float64),
        left=np.where(leaf, 0, flat["left"].astype(np.int64) + shift),
        right=np.where(leaf, 0, flat["right"].astype(np.int64) + shift),
        leaf=leaf, value=flat["value"].astype(np.float64), depth=int(flat["depth"].max()),
    )


def _trees_of_lightgbm(booster: Any, cols: np.ndarray) -> Trees:
    """LightGBM's fitted trees as flat arrays over ``FEATURE_NAMES`` columns (each tree's nodes depth first)."""
    nodes: dict[str, list[Any]] = {k: [] for k in ("feature", "threshold", "left", "right", "leaf", "value")}
    depth = 0

    def add(node: Mapping[str, Any], level: int) -> int:
        nonlocal depth
        depth = max(depth, level)
        at = len(nodes["leaf"])
        for k, v in zip(nodes, (0, 0.0, 0, 0, "leaf_value" in node, float(node.get("leaf_value", 0.0))),
                        strict=True):
            nodes[k].append(v)
        if "leaf_value" not in node:
            if node["decision_type"] != "<=":
                raise InvalidRequestError(f"a LightGBM split of kind {node['decision_type']!r} (not <=)")
            nodes["feature"][at] = int(cols[node["split_feature"]])
            nodes["threshold"][at] = float(node["threshold"])
            nodes["left"][at] = add(node["left_child"], level + 1)
            nodes["right"][at] = add(node["right_child"], level + 1)
        return at

    roots = [add(tree["tree_structure"], 0) for tree in booster.dump_model()["tree_info"]]
    return Trees(np.asarray(roots, dtype=np.int64), np.asarray(nodes["feature"], dtype=np.int64),
                 np.asarray(nodes["threshold"], dtype=np.float64), np.asarray(nodes["left"], dtype=np.int64),
                 np.asarray(nodes["right"], dtype=np.int64), np.asarray(nodes["leaf"], dtype=bool),
                 np.asarray(nodes["value"], dtype=np.float64), depth)


def fused_run(model: Model, seeds: Sequence[Seed], found: Mapping[str, Candidates], fusion: Fusion) -> (
    dict[str, list[str]]
):
    """Each seed's candidates ranked by ``fusion`` (the ranking ``relatedness.rank_related`` serves)."""
    ids = model.index.ids
    run: dict[str, list[str]] = {}
    for s in seeds:
        c = found[s.id]
        keep = _kept(c, fusion.signals)
        rows = c.rows[keep]
        scores = fusion.score(c.features[keep])
        order = np.lexsort((rows, -scores))[:DEPTH]
        run[s.id] = [ids[int(r)] for r in rows[order]]
    return run


def feedback_table(model: Model, queries: Sequence[Query]) -> CoRelevance:
    """The co-relevance of the tune half's answers (documents answered together), for every known document."""
    groups = [[model.index.rows[d] for d in q.relevant if d in model.index.rows]
              for q in select_split(queries, "tune")]
    return CoRelevance.from_groups(groups, len(model.documents))


@dataclass(frozen=True)
class RecommendReport:
    """Mean measures per system on the reported split, the fitted fusions, and per-seed figures."""

    model: str
    split: str
    filters: Mapping[str, FilterValue]
    seeds: int
    tune_seeds: int
    systems: Mapping[str, Mapping[str, float]]
    seconds: Mapping[str, float]
    fusions: Mapping[str, Fusion]
    per_seed: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (per-seed figures go to their own JSONL file)."""
        return {
            "task": "recommend", "model": self.model, "split": self.split, "filters": dict(self.filters),
            "seeds": self.seeds, "tune_seeds": self.tune_seeds,
            "systems": {k: {m: round(v, 4) for m, v in s.items()} for k, s in self.systems.items()},
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "fusions": {k: f.to_dict() for k, f in self.fusions.items()},
        }

    def table(self) -> str:
        """One line per system, with nDCG@10 relative to the better baseline."""
        best = max(self.systems[b]["nDCG@10"] for b in ("mlt-reference", "position") if b in self.systems)
        head = f"{'system':<28}" + "".join(f"{k:>9}" for k in MEASURES) + f"{'vs best':>9}"
        lines = [head, "-" * len(head)]
        for name, s in self.systems.items():
            ratio = s["nDCG@10"] / best if best > 0 else 0.0
            lines.append(f"{name:<28}" + "".join(f"{s[k]:>9.4f}" for k in MEASURES) + f"{ratio:>8.2f}x")
        lines.append(f"{self.seeds} seeds ({self.split} split; fusion fitted on {self.tune_seeds} tune seeds), "
                     f"model {self.model}")
        return "\n".join(lines)

    def write_seeds(self, path: Path) -> None:
        """The per-seed figures as JSON Lines."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for rec in self.per_seed:
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _timed(seconds: dict[str, float], name: str, started: float) -> None:
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started


def evaluate_recommend(
    model: Model, queries: Sequence[Query], filters: Mapping[str, FilterValue] | None = None,
    split: Split = "test", progress: bool = True, feedback: bool = False, served: bool = True,
) -> RecommendReport:
    """Baselines, the served recommendation and the fusion (fitted on tune, with ablations) on ``split``.

    ``feedback``: co-relevance from the tune half's answers joins the signals (the model's own table, if it
    has one, is replaced for this run)."""
    rows = model.documents.filter_rows(filters) if filters else np.arange(len(model.documents), dtype=np.int64)
    if rows.size == 0:
        raise InvalidRequestError(f"no document matches the filter {dict(filters or {})}")
    seeds = make_seeds(model, queries, rows)
    chosen = [s for s in seeds if split == "all" or s.split == split]
    tune = [s for s in seeds if s.split == "tune"]
    if not chosen or not tune:
        raise InvalidRequestError(f"no seed in the {split!r} or the tune split: no question has two answers")
    qrels = {s.id: s.targets for s in chosen}
    runs: dict[str, dict[str, list[str]]] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    runs["mlt-reference"] = mlt_reference_run(model, rows, chosen, progress)
    _timed(seconds, "mlt-reference", started)
    started = time.perf_counter()
    runs["position"] = position_run(model, rows, chosen)
    runs["rrf-baselines"] = rrf([runs["mlt-reference"], runs["position"]])
    _timed(seconds, "position", started)
    allowed = rows if filters else None
    if served:
        for name, fused in (("word2vec", False), ("legalsearch", True)):
            started = time.perf_counter()
            runs[name] = served_run(model, chosen, filters or None, fused, progress, name)
            _timed(seconds, name, started)
    fusions, fused_runs = _fit_and_rank(model, queries, seeds, chosen, tune, allowed, feedback, progress, seconds)
    runs.update(fused_runs)
    each = {name: per_query_measures(qrels, run) for name, run in runs.items()}
    systems = {name: mean_measures(e) for name, e in each.items()}
    per_seed = [
        {"seed": s.id, "question": s.question, "doc": s.doc, "split": s.split, "targets": list(s.targets),
         "runs": {name: {"nDCG@10": round(each[name][s.id]["nDCG@10"], 4), "top10": runs[name][s.id][:10]}
                  for name in runs}}
        for s in chosen
    ]
    return RecommendReport(model.version, split, dict(filters or {}), len(chosen), len(tune), systems, seconds,
                           fusions, per_seed)


def _fit_and_rank(model: Model, queries: Sequence[Query], seeds: Sequence[Seed], chosen: Sequence[Seed],
                  tune: Sequence[Seed], allowed: np.ndarray | None, feedback: bool, progress: bool,
                  seconds: dict[str, float]) -> tuple[dict[str, Fusion], dict[str, dict[str, list[str]]]]:
    """Fit the fusion and each ablation on the tune seeds; rank the chosen seeds with each."""
    started = time.perf_counter()
    signals = [s for s in SIGNALS if s != "feedback" or feedback]
    target = model
    own: dict[str, list[int]] | None = None
    if feedback:
        import dataclasses

        target = dataclasses.replace(model, corelevance=feedback_table(model, queries))
        own = {q.id: [model.index.rows[d] for d in q.relevant if d in model.index.rows]
               for q in select_split(queries, "tune")}
    wanted = {s.id: s for s in [*tune, *chosen]}
    found = seed_candidates(target, list(wanted.values()), allowed, progress, own)
    _timed(seconds, "candidates", started)
    variants = {"fused": signals, **{f"fused-without-{s}": [t for t in signals if t != s] for s in signals}}
    fusions: dict[str, Fusion] = {}
    runs: dict[str, dict[str, list[str]]] = {}
    for name, used in variants.items():
        fusions[name] = fit_fusion(model, tune, found, used)
        runs[name] = fused_run(model, chosen, found, fusions[name])
        log.info("%s: %s", name, fusions[name].weights)
    return fusions, runs


def _answers(model: Model, queries: Sequence[Query]) -> dict[str, list[int]]:
    return {q.id: [model.index.rows[d] for d in q.relevant if d in model.index.rows] for q in queries}


def fit_model_fusion(model: Model, queries: Sequence[Query], filters: Mapping[str, FilterValue] | None,
                     feedback: bool, width: int, progress: bool = True) -> tuple[Fusion, list[Path]]:
    """Fit the fusion on the tune half and write it into the model folder with, when asked, the tune half's
    co-relevance and the related table of every document; the files are added to the manifest.

    A model trained with feedback (``train --feedback``) fuses the co-relevance of its training instead: it is
    part of the model, so ``feedback`` must be false then."""
    import dataclasses

    from legalsearch.feedback import key_digest
    from legalsearch.model import add_files, remove_files
    from legalsearch.neighbours import RELATED_FILES
    from legalsearch.relatedness import RELATED_PARTS_FILE, precompute_related, save_related_parts

    trained = model.feedback is not None and model.corelevance is not None
    if feedback and trained:
        raise InvalidRequestError("this model's co-relevance comes from its training feedback (train --feedback); "
                                  "fit without --feedback to fuse it")
    rows = model.documents.filter_rows(filters) if filters else np.arange(len(model.documents), dtype=np.int64)
    tune = [s for s in make_seeds(model, queries, rows) if s.split == "tune"]
    if not tune:
        raise InvalidRequestError("no tune seed: no question of the tune half has two answers in the collection")
    signals = [s for s in SIGNALS
               if (s != "feedback" or feedback or trained) and (s != "citations" or model.citations)]
    target, own = model, None
    if feedback:
        target = dataclasses.replace(model, corelevance=feedback_table(model, queries))
        own = _answers(model, select_split(queries, "tune"))
    elif trained and model.feedback is not None:
        # tune questions that trained the co-relevance must not vouch for their own answers while fitting
        own = _answers(model, [q for q in queries if key_digest(q.id) in model.feedback.keys])
    found = seed_candidates(target, tune, rows if filters else None, progress, own)
    fusion = fit_fusion(model, tune, found, signals, {"filters": dict(filters or {}), "queries": len(queries)})
    # an earlier fit's files go, listed or not (add_files left them read-only); none may outlive the new fusion;
    # the co-relevance of training stays
    remove_files(model.path, [FUSION_FILE, *([] if trained else FEEDBACK_FILES.values()), *RELATED_FILES.values(),
                                RELATED_PARTS_FILE])
    written = [fusion.save(model.path)]
    if feedback and target.corelevance is not None:
        written += target.corelevance.save(model.path)
    if width > 0:
        served = dataclasses.replace(target, fusion=fusion)
        table, parts = precompute_related(served, fusion, width, progress)
        written += [*table.save(model.path, RELATED_FILES), save_related_parts(model.path, parts)]
    add_files(model.path, written)
    return fusion, written
