"""Fusion: how a query's signals become one score per candidate, by search mode."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from legalsearch.engine import Model
    from legalsearch.ranking.results import Scored


#: modes of ``rank``: the served hybrid and each side alone; for a model trained with feedback also each feedback
#: signal alone and the hybrid without each of them (``legalsearch eval``'s ablations)
MODES = ("hybrid", "lexical", "embedding")
FEEDBACK_MODES = ("votes", "prior", "hybrid-without-votes", "hybrid-without-prior", "hybrid-without-feedback")
#: the feedback signals (``feedback.SIGNALS``) each mode uses; modes not named use none
_MODE_SIGNALS: dict[str, tuple[str, ...]] = {
    "hybrid": ("votes", "prior"), "hybrid-without-votes": ("prior",), "hybrid-without-prior": ("votes",),
    "votes": ("votes",), "prior": ("prior",),
}


def _zscore(values: np.ndarray) -> np.ndarray:
    # numpy's mean and std, spelled out: the same float64 operations in the same order (bit-identical), without
    # the keyword handling that made them a tenth of the fusion's cost
    n = values.size
    mean = float(np.add.reduce(values)) / n
    centred = values - mean
    std = math.sqrt(float(np.add.reduce(centred * centred)) / n)
    return centred / std if std > 0 else np.zeros_like(values)


def _sum(parts: Mapping[str, np.ndarray]) -> np.ndarray:
    values = list(parts.values())
    total = values[0]
    for part in values[1:]:
        total = total + part
    return total


def _score_parts(model: Model, mode: str, lex: np.ndarray, emb: np.ndarray) -> dict[str, np.ndarray]:
    """The candidates' score without feedback by signal: one side alone, or both z-scored and weighted."""
    if mode == "lexical":
        return {"lexical": lex}
    if mode == "embedding":
        return {"word2vec": emb}
    cfg = model.config.search
    return {"lexical": cfg.lexical_weight * _zscore(lex), "word2vec": cfg.embedding_weight * _zscore(emb)}


def fuse(model: Model, scored: Scored, mode: str) -> dict[str, np.ndarray]:
    """The parts of every candidate's score in ``mode`` (they sum to the score): ``scored.parts``, plus the
    feedback signals with the weights fitted for the mode (``feedback.SearchFusion``); or one signal alone."""
    if mode == "votes" and scored.votes is not None:
        return {"votes": scored.votes}
    if mode == "prior" and scored.prior is not None:
        return {"prior": scored.prior}
    parts = dict(scored.parts)
    if model.feedback is None or mode not in model.feedback.fusion.variants:
        return parts
    weights = model.feedback.fusion.variants[mode]
    if scored.votes is not None and weights.votes:
        parts["votes"] = weights.votes * scored.votes
    if scored.prior is not None and weights.prior:
        parts["prior"] = weights.prior * scored.prior
    return parts
