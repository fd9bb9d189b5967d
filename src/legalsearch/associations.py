"""Lay -> legal term associations learned from feedback questions (a feedback artifact).

A lay question says "eigenbedarf", "rausschmeißen", "vermieter"; the sections that answer it carry the keywords
"mietverhältnis", "kündigung", "wohnraum". Over the feedback questions, each question word ``w`` and each TF-IDF
keyword ``k`` of the question's relevant documents co-occur once per question; their normalised pointwise mutual
information

    npmi(w, k) = log(p(w, k) / (p(w) p(k))) / -log p(w, k),   p over the questions,

is kept where the pair occurs in at least ``min_count`` questions and reaches ``min_npmi`` (1: always together,
0: independent). Each word keeps its ``limit`` best keywords. Query expansion adds them before the word2vec
neighbours (``ranking.query._expand``) and ``similar-terms`` lists them first: on statutes alone, word2vec puts
"eigenbedarf" beside "eigenverbrauch, brauerei" (tax and energy law); the questions put it beside tenancy.
A model trained without feedback has no associations and behaves as before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legalsearch.errors import ArtifactError

ASSOCIATIONS_FILE = "associations.json"
FORMAT = 1


@dataclass(frozen=True)
class Association:
    """One legal keyword associated with a lay word: its NPMI and in how many questions the two met."""

    term: str
    npmi: float
    count: int


@dataclass(frozen=True)
class Associations:
    """Each lay word's associated keywords, best first."""

    terms: Mapping[str, tuple[Association, ...]]
    params: Mapping[str, Any] = field(default_factory=dict)

    def of(self, word: str) -> tuple[Association, ...]:
        """The keywords of ``word`` (empty when it has none)."""
        return self.terms.get(word, ())

    def __contains__(self, word: object) -> bool:
        return word in self.terms

    def __len__(self) -> int:
        return len(self.terms)

    def save(self, folder: Path) -> Path:
        """Write ``folder / ASSOCIATIONS_FILE``; returns its path."""
        path = Path(folder) / ASSOCIATIONS_FILE
        doc = {"format": FORMAT, "params": dict(self.params),
               "terms": {w: [[a.term, a.npmi, a.count] for a in found] for w, found in sorted(self.terms.items())}}
        path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> Associations | None:
        """The associations in ``folder``; None when there is no file (a model from before them)."""
        path = Path(folder) / ASSOCIATIONS_FILE
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            terms = {str(w): tuple(Association(str(t), float(s), int(c)) for t, s, c in found)
                     for w, found in doc["terms"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"term associations in {path} are unreadable: {exc}") from exc
        return cls(terms, doc.get("params", {}))


def learn_associations(questions: Iterable[tuple[Iterable[str], Iterable[str]]], min_count: int, min_npmi: float,
                       limit: int, allowed: Mapping[str, Any] | None = None) -> Associations:
    """NPMI associations between questions' words and their answers' keywords (see the module's docstring).

    ``questions``: (the question's words, the keywords of its relevant documents). A word is never associated
    with itself; ``allowed`` (optional) restricts the keywords kept. Ties: more questions first, then the
    keyword's spelling."""
    n = 0
    word_count: dict[str, int] = {}
    keyword_count: dict[str, int] = {}
    pair_count: dict[tuple[str, str], int] = {}
    for words, keywords in questions:
        ws, ks = set(words), set(keywords)
        if allowed is not None:
            ks = {k for k in ks if k in allowed}
        if not ws or not ks:
            continue
        n += 1
        for w in ws:
            word_count[w] = word_count.get(w, 0) + 1
        for k in ks:
            keyword_count[k] = keyword_count.get(k, 0) + 1
        for w in ws:
            for k in ks:
                if k != w:
                    pair_count[(w, k)] = pair_count.get((w, k), 0) + 1
    found: dict[str, list[Association]] = {}
    for (w, k), c in pair_count.items():
        if c < min_count:
            continue
        p_wk = c / n
        score = 1.0 if p_wk >= 1.0 else (
            math.log(p_wk / ((word_count[w] / n) * (keyword_count[k] / n))) / -math.log(p_wk))
        if score >= min_npmi:
            found.setdefault(w, []).append(Association(k, round(score, 4), c))
    terms = {w: tuple(sorted(a, key=lambda x: (-x.npmi, -x.count, x.term))[:limit]) for w, a in found.items()}
    params = {"questions": n, "min_count": min_count, "min_npmi": min_npmi, "limit": limit,
              "words": len(terms), "pairs": sum(len(v) for v in terms.values())}
    return Associations(terms, params)

