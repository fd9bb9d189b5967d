"""Stage: feedback (labelled questions, click logs) read for training, and what /search learns from it.

Input (``legalsearch train --feedback FILE``, JSON Lines, repeatable), one record a line:

* a labelled question ``{"id"?, "query", "relevant": [doc ids]}``: every relevant document counts 1;
* a click ``{"id"?, "query", "clicked": doc id, "count"?}``: the document counts ``count`` (default 1).

Records with the same key (their ``id``, else the query text) are one question; their counts add up. Unknown
document ids, empty queries and broken lines are skipped and reported with file and line, like bad corpus records
(``corpus.report.IngestReport``). ``split`` keeps the questions of one half by ``evaluate.split_of(key)``, the
split ``legalsearch eval`` uses, so that no test question trains a model.

The model holds, in ``feedback/`` (``FeedbackIndex``, file names in ``FILES``): a BM25 index over the questions'
tokens, their word2vec query vectors, per question its documents and weights (CSR), a per-document prior, the
question keys' sha1 (``legalsearch eval`` refuses to measure a question that trained the model) and the fusion
weights fitted at training (``feedback_fit``). ``ranking.rank`` turns them into two signals of /search (``SIGNALS``):

* ``votes``: the ``neighbours`` questions most similar to the query vote for their documents, weighted by
  similarity: vote(d) = sum_q sim(q) * w(q, d) / sum_q sim(q), w(q, d) = log1p(count) / log1p(question's max);
* ``prior``: log1p(times d was relevant or clicked) / log1p(the most any document was), 0 for the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from legalsearch.associations import Associations
from legalsearch.config import CorpusConfig
from legalsearch.corpus.jsonl import bounded_lines, parse_json_line
from legalsearch.corpus.report import IngestReport
from legalsearch.errors import ArtifactError, CorpusError, InvalidRequestError
from legalsearch.lexical import LexicalIndex, load_lexical_index, save_lexical_index
from legalsearch.model import load_array

log = logging.getLogger(__name__)

FeedbackSplit = Literal["tune", "test", "all"]
SPLITS: tuple[FeedbackSplit, ...] = ("tune", "test", "all")
#: the signals /search gains from feedback, each with its own ablation in ``legalsearch eval``
SIGNALS = ("votes", "prior")
FEEDBACK_DIR = "feedback"
#: the files of ``FEEDBACK_DIR`` (the BM25 index over the questions is the folder ``QUESTIONS_LEXICAL``)
FILES = {
    "vectors": "question_vectors.npy",
    "indptr": "votes_indptr.npy",
    "rows": "votes_rows.npy",
    "weights": "votes_weights.npy",
    "prior": "prior.npy",
    "popular": "popular_rows.npy",
    "keys": "question_keys.txt",
    "fusion": "fusion.json",
}
QUESTIONS_LEXICAL = "questions_lexical"
#: documents by prior kept for the candidates (enough for a filter that lets through a few of them)
POPULAR_LIMIT = 5000


def key_digest(key: str) -> str:
    """The sha1 hex of a question key, as the model stores it (the eval guard compares these)."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FeedbackQuestion:
    """One question of the feedback: its key (what the split hashes), text, and documents with their counts."""

    key: str
    query: str
    docs: tuple[tuple[str, float], ...]
    source: str
    line: int


@dataclass(frozen=True)
class FeedbackRead:
    """The questions read from the feedback files, what was skipped, and a hash of what was kept."""

    questions: tuple[FeedbackQuestion, ...]
    #: records read (blank lines not counted), questions of the other split left out
    records: int
    other_split: int
    report: IngestReport
    #: of the kept questions (keys, texts, documents and counts): independent of paths and formatting
    sha256: str
    paths: tuple[str, ...] = ()
    split: FeedbackSplit = "all"

    def summary(self) -> str:
        """One human line, like the corpus's."""
        answers = sum(len(q.docs) for q in self.questions)
        head = (f"read {self.records:,} feedback records: {len(self.questions):,} questions, {answers:,} answers"
                + (f", {self.other_split:,} of the other split left out" if self.other_split else ""))
        reasons = self.report.reasons()
        if not reasons:
            return f"{head}; skipped none"
        detail = ", ".join(f"{n:,} {reason}" for reason, n in reasons.items())
        return f"{head}; skipped {sum(reasons.values()):,}: {detail}"


@dataclass
class _Merged:
    key: str
    query: str
    source: str
    line: int
    docs: dict[str, float] = field(default_factory=dict)


def _parse(raw: bytes | None, number: int) -> dict[str, Any] | str | None:
    """One line as a record, the reason it is refused, or None for a blank line."""
    return parse_json_line(raw, number)


def _documents(record: Mapping[str, Any]) -> dict[str, float] | str:
    """The record's document ids with their counts, or the reason it is refused."""
    relevant, clicked = record.get("relevant"), record.get("clicked")
    if (relevant is None) == (clicked is None):
        return "not a feedback record (needs 'relevant' or 'clicked')"
    if relevant is not None:
        if not isinstance(relevant, list) or not all(isinstance(d, str) for d in relevant):
            return "invalid relevant ids"
        return dict.fromkeys((d.strip() for d in relevant if d.strip()), 1.0)
    count = record.get("count", 1)
    if not isinstance(clicked, str) or not clicked.strip():
        return "invalid clicked id"
    if isinstance(count, bool) or not isinstance(count, int | float) or not math.isfinite(count) or count <= 0:
        return "invalid click count"
    return {clicked.strip(): float(count)}


def _key_of(record: Mapping[str, Any], query: str) -> str | None:
    rid = record.get("id")
    if rid is None:
        return query
    if isinstance(rid, bool) or not isinstance(rid, str | int) or not str(rid).strip():
        return None
    return str(rid).strip()


def _records(path: Path, source: str, config: CorpusConfig, report: IngestReport) -> Iterator[
    tuple[int, dict[str, Any]]
]:
    try:
        for number, raw in enumerate(bounded_lines(path, source, config), start=1):
            parsed = _parse(raw, number)
            if isinstance(parsed, str):
                report.skip(source, number, parsed)
            elif parsed is not None:
                yield number, parsed
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusError(f"feedback {source}: cannot be read ({exc})") from exc


def _merge(paths: Sequence[Path], known: Mapping[str, int], config: CorpusConfig, report: IngestReport) -> (
    tuple[dict[str, _Merged], int]
):
    merged: dict[str, _Merged] = {}
    records = 0
    for path in paths:
        source = path.name
        for number, record in _records(path, source, config, report):
            records += 1
            query = record.get("query")
            if not isinstance(query, str) or not query.strip():
                report.skip(source, number, "empty query")
                continue
            docs = _documents(record)
            key = _key_of(record, query.strip())
            if isinstance(docs, str) or key is None:
                report.skip(source, number, docs if isinstance(docs, str) else "invalid id")
                continue
            for doc in [d for d in docs if d not in known]:
                log.debug("%s:%d: unknown document id %r", source, number, doc)
                report.skip(source, number, "unknown document id")
                del docs[doc]
            if not docs:
                continue
            entry = merged.setdefault(key, _Merged(key, query.strip(), source, number))
            for doc, count in docs.items():
                entry.docs[doc] = entry.docs.get(doc, 0.0) + count
    return merged, records


def read_feedback(paths: Sequence[str | Path], known: Mapping[str, int], split: FeedbackSplit = "all",
                  config: CorpusConfig | None = None, report: IngestReport | None = None) -> FeedbackRead:
    """The feedback questions of ``paths`` whose documents are ``known`` (doc id -> row), of one ``split``.

    CorpusError when a file cannot be read; InvalidRequestError for an unknown split."""
    # evaluate imports ranking, which imports the engine, which imports this module
    from legalsearch.evaluate import split_of

    if split not in SPLITS:
        raise InvalidRequestError(f"unknown feedback split {split!r}: use tune, test or all")
    report = report if report is not None else IngestReport()
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise CorpusError(f"feedback file {path} does not exist or is not a file")
    merged, records = _merge(files, known, config or CorpusConfig(), report)
    kept = [m for m in merged.values() if split == "all" or split_of(m.key) == split]
    digest = hashlib.sha256()
    questions = []
    for m in kept:
        docs = tuple(sorted(m.docs.items()))
        questions.append(FeedbackQuestion(m.key, m.query, docs, m.source, m.line))
        digest.update(json.dumps([m.key, m.query, docs], ensure_ascii=False).encode("utf-8") + b"\n")
    return FeedbackRead(tuple(questions), records, len(merged) - len(kept), report, digest.hexdigest(),
                        tuple(str(p) for p in files), split)


@dataclass(frozen=True)
class Weights:
    """How one ranking adds the feedback signals to the hybrid score: ``votes`` times the vote, ``prior`` times
    the prior (the z-scored lexical and embedding parts keep their configured weights)."""

    votes: float = 0.0
    prior: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """The JSON form."""
        return {"votes": self.votes, "prior": self.prior}


#: the rankings fitted at training: the served one and one without each signal (``legalsearch eval`` ablations)
VARIANTS = ("hybrid", "hybrid-without-votes", "hybrid-without-prior")


@dataclass(frozen=True)
class SearchFusion:
    """The fitted weights of every variant (``VARIANTS``) and what they were fitted on."""

    variants: Mapping[str, Weights]
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``FILES["fusion"]``."""
        return {"variants": {k: w.to_dict() for k, w in self.variants.items()}, "info": dict(self.info)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchFusion:
        """From ``to_dict``'s form; ValueError / KeyError / TypeError when it is not one."""
        variants = {str(k): Weights(float(v["votes"]), float(v["prior"])) for k, v in data["variants"].items()}
        if set(variants) != set(VARIANTS):
            raise ValueError(f"variants {sorted(variants)}, expected {list(VARIANTS)}")
        if not all(math.isfinite(w.votes) and math.isfinite(w.prior) for w in variants.values()):
            raise ValueError("non-finite weights")
        return cls(variants, dict(data.get("info", {})))


@dataclass(frozen=True)
class Votes:
    """What the feedback says about one query: voted rows (sorted) with their votes, and popular rows."""

    rows: np.ndarray
    votes: np.ndarray
    popular: np.ndarray

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The vote of each of ``rows`` (0 for rows nobody voted for)."""
        out = np.zeros(rows.size, dtype=np.float64)
        if self.rows.size:
            where = np.minimum(np.searchsorted(self.rows, rows), self.rows.size - 1)
            hit = self.rows[where] == rows
            out[hit] = self.votes[where[hit]]
        return out


@dataclass(frozen=True, eq=False)
class FeedbackIndex:
    """The feedback artifacts of a model, loaded (arrays memory-mapped)."""

    lexical: LexicalIndex
    vectors: np.ndarray
    indptr: np.ndarray
    rows: np.ndarray
    weights: np.ndarray
    prior: np.ndarray
    popular: np.ndarray
    keys: frozenset[str]
    fusion: SearchFusion
    #: lay -> legal term associations (``associations.py``); None for a model trained before them
    associations: Associations | None = None

    @property
    def questions(self) -> int:
        """Number of feedback questions."""
        return int(self.indptr.shape[0]) - 1

    def similarities(self, terms: Mapping[str, float], query: np.ndarray, word2vec_weight: float) -> np.ndarray:
        """Every question's similarity to a query (its lexical term weights and unit word2vec vector), in [0, 1]:
        BM25 over the questions scaled by the best one, mixed with the positive cosine by ``word2vec_weight``."""
        sims = np.asarray(self.lexical.scores(terms), dtype=np.float64)
        top = float(sims.max()) if sims.size else 0.0
        sims = sims / top if top > 0 else np.zeros_like(sims)
        if word2vec_weight > 0:
            cos = np.maximum(np.asarray(self.vectors, dtype=np.float32) @ query, 0.0).astype(np.float64)
            sims = (1.0 - word2vec_weight) * sims + word2vec_weight * cos
        return sims

    def votes(self, sims: np.ndarray, k: int, allowed: np.ndarray | None, popular: int,
              exclude: Sequence[int] = ()) -> Votes:
        """The ``k`` most similar questions' votes (``exclude``: questions left out, for fitting), restricted to
        ``allowed`` rows (None: all), and the ``popular`` most often relevant rows among them."""
        if exclude:
            sims = sims.copy()
            sims[list(exclude)] = 0.0
        ok = np.flatnonzero(sims > 0)
        if ok.size > k:
            ok = ok[np.argpartition(-sims[ok], k - 1)[:k]]
        rows = np.zeros(0, dtype=np.int64)
        values = np.zeros(0, dtype=np.float64)
        if ok.size:
            lo, hi = self.indptr[ok], self.indptr[ok + 1]
            lengths = (hi - lo).astype(np.int64)
            index = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
            voted = np.asarray(self.rows[index], dtype=np.int64)
            weight = np.repeat(sims[ok], lengths) * np.asarray(self.weights[index], dtype=np.float64)
            rows, inverse = np.unique(voted, return_inverse=True)
            values = np.bincount(inverse, weights=weight, minlength=rows.size) / float(sims[ok].sum())
            if allowed is not None:
                keep = np.isin(rows, allowed)
                rows, values = rows[keep], values[keep]
        best = np.asarray(self.popular, dtype=np.int64)
        if allowed is not None:
            best = best[np.isin(best, allowed)]
        return Votes(rows, values, best[:popular])

    def save(self, folder: Path) -> list[Path]:
        """Write the artifacts into ``folder / FEEDBACK_DIR``; returns the files written."""
        out = folder / FEEDBACK_DIR
        (out / QUESTIONS_LEXICAL).mkdir(parents=True)
        save_lexical_index(self.lexical, out / QUESTIONS_LEXICAL)
        for name in ("vectors", "indptr", "rows", "weights", "prior", "popular"):
            np.save(out / FILES[name], getattr(self, name))
        (out / FILES["keys"]).write_text("".join(f"{k}\n" for k in sorted(self.keys)), encoding="utf-8")
        (out / FILES["fusion"]).write_text(json.dumps(self.fusion.to_dict(), ensure_ascii=False) + "\n",
                                           encoding="utf-8")
        if self.associations is not None:
            self.associations.save(out)
        return sorted(p for p in out.rglob("*") if p.is_file())

    @classmethod
    def load(cls, folder: Path, n_docs: int, vector_size: int, mmap: bool = True) -> FeedbackIndex | None:
        """The feedback of a model folder; None for a model trained without feedback."""
        src = folder / FEEDBACK_DIR
        if not (src / FILES["fusion"]).exists():
            return None
        try:
            arrays = {name: load_array(src / FILES[name], mmap)
                      for name in ("vectors", "indptr", "rows", "weights", "prior", "popular")}
            keys = frozenset((src / FILES["keys"]).read_text(encoding="utf-8").split())
            fusion = SearchFusion.from_dict(json.loads((src / FILES["fusion"]).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"feedback in {src} is unreadable: {exc}") from exc
        index = cls(load_lexical_index(src / QUESTIONS_LEXICAL, mmap=mmap), keys=keys, fusion=fusion,
                    associations=Associations.load(src), **arrays)
        index.check(n_docs, vector_size, src)
        return index

    def check(self, n_docs: int, vector_size: int, where: Path) -> None:
        """ArtifactError unless the arrays fit each other and the model."""
        q, m = self.questions, int(self.rows.shape[0])
        fits = (
            self.vectors.shape == (q, vector_size) and self.lexical.n_docs == q and int(self.indptr[-1]) == m
            and self.weights.shape == (m,) and self.prior.shape == (n_docs,) and self.popular.ndim == 1
            and all(a.size == 0 or (int(a.min()) >= 0 and int(a.max()) < n_docs) for a in (self.rows, self.popular))
            and bool(np.isfinite(self.weights).all() and np.isfinite(self.prior).all())
        )
        if not fits:
            raise ArtifactError(f"feedback in {where} does not fit the model ({n_docs} documents, {q} questions)")


def prior_of(groups: Iterable[Mapping[int, float]], n_docs: int) -> np.ndarray:
    """The document prior: log1p(total count) / log1p(the largest total), 0 where no question names the row."""
    counts = np.zeros(n_docs, dtype=np.float64)
    for group in groups:
        for row, count in group.items():
            counts[row] += count
    top = float(counts.max()) if n_docs else 0.0
    return (np.log1p(counts) / math.log1p(top) if top > 0 else counts).astype(np.float32)


def vote_weights(group: Mapping[int, float]) -> dict[int, float]:
    """A question's vote per document: log1p(count) / log1p(its largest count) (1 for labelled answers)."""
    top = max(group.values())
    return {row: math.log1p(c) / math.log1p(top) for row, c in group.items()}
