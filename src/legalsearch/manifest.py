"""What a training run records about itself in its model's ``manifest.json``: assembled here from the run's facts;
``model.ModelWriter.commit`` adds the file list, hashes, versions and dates, and writes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legalsearch.config import TrainConfig
from legalsearch.corpus import IngestReport
from legalsearch.stages import StageStats
from legalsearch.tokencache import MANIFEST_KEY
from legalsearch.types import Document


def _hash_documents(documents: Iterable[Document]) -> str:
    digest = hashlib.sha256()
    for doc in documents:
        record = [doc.id, doc.title, doc.type, doc.text, sorted(doc.metadata.items())]
        digest.update(json.dumps(record, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def corpus_hash(documents: Iterable[Document], extra_lines_digest: str) -> str:
    """Hash of everything the model is trained on: every document field and the extra text."""
    return hashlib.sha256(f"{_hash_documents(documents)}:{extra_lines_digest}".encode()).hexdigest()


def timings(stages: Iterable[StageStats]) -> dict[str, dict[str, Any]]:
    """The manifest's ``timings``: per stage seconds, items, unit, items/s, peak RSS and CPU seconds."""
    return {
        s.name: {"seconds": round(s.seconds, 3), "items": s.items, "unit": s.unit,
                 "per_second": round(s.per_second, 1), "peak_rss_mb": round(s.peak_rss_mb, 1),
                 "cpu_seconds": round(s.cpu_seconds, 3)}
        for s in stages
    }


@dataclass(frozen=True)
class TrainingFacts:
    """Everything a run records that its stages found out (sizes, hashes, what was read)."""

    config: TrainConfig
    corpus: Sequence[Path]
    extra_text: Sequence[Path]
    extra_lines: int
    report: IngestReport
    corpus_hash: str
    cache_key: str
    documents: int
    vocabulary: int
    word_vectors: int
    vector_size: int
    phrases: int
    training_words: int
    empty_document_vectors: int
    index_type: str
    citations: dict[str, Any]
    #: what the feedback stage read and learned (empty without feedback)
    feedback: dict[str, Any] = field(default_factory=dict)
    #: the lexical profile of each document type (``lexical.LexicalProfile``; empty with profiles off)
    lexical_profiles: list[dict[str, Any]] = field(default_factory=list)


def counts(facts: TrainingFacts) -> dict[str, int]:
    """The sizes ``legalsearch models`` shows (the manifest's ``counts``)."""
    return {
        "documents": facts.documents,
        "vocabulary": facts.vocabulary,
        "word_vectors": facts.word_vectors,
        "phrases": facts.phrases,
        "empty_document_vectors": facts.empty_document_vectors,
        "citation_edges": int(facts.citations.get("edges", 0)),
    }


def training_manifest(facts: TrainingFacts, stages: Sequence[StageStats], total_seconds: float) -> dict[str, Any]:
    """The run's own manifest fields (config, corpus, sizes, stage timings); evaluation scores come later."""
    return {
        "config": facts.config.to_dict(),
        "corpus_hash": facts.corpus_hash,
        MANIFEST_KEY: facts.cache_key,
        "corpus": {
            "paths": [str(p) for p in facts.corpus],
            "extra_text": [str(p) for p in facts.extra_text],
            "extra_lines": facts.extra_lines,
            "read": facts.report.documents,
            "skipped": facts.report.reasons(),
        },
        "index_type": facts.index_type,
        "vector_size": facts.vector_size,
        "training_words": facts.training_words,
        "timings": timings(stages),
        "citations": facts.citations,
        "feedback": facts.feedback,
        "lexical_profiles": facts.lexical_profiles,
        "total_seconds": round(total_seconds, 3),
        "evaluation": {},
    }
