"""A trained model loaded once, verified, and shared by the API, the CLI and notebooks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from gensim.models import KeyedVectors

from legalsearch.citegraph import CitationGraph
from legalsearch.config import TrainConfig, config_from_dict
from legalsearch.docstore import DOCS_FILE, DocumentStore
from legalsearch.docvectors import DOCVECTORS_FILE, load_docvectors
from legalsearch.embeddings import load_vectors, thesaurus_folders
from legalsearch.errors import ArtifactError, UnknownDocumentError
from legalsearch.expansion import ExpansionTable
from legalsearch.feedback import FeedbackIndex
from legalsearch.index import IDS_FILE, LoadedIndex, load_index
from legalsearch.keywords import DocumentKeywords, KeywordModel, PhraseModel
from legalsearch.lexical import LEXICAL_DIR, LexicalIndex, load_lexical_index
from legalsearch.model import (
    MANIFEST_NAME,
    current_version,
    read_current_record,
    resolve_model_dir,
    verify_model,
)
from legalsearch.neighbours import RELATED_FILES, NeighbourTable
from legalsearch.relatedness import CoRelevance, Fusion, load_related_parts
from legalsearch.snippets import SnippetIndex
from legalsearch.suggest import SuggestionIndex, build_suggestions
from legalsearch.text import Preprocessor
from legalsearch.types import Document, Keyword

if TYPE_CHECKING:
    from legalsearch.ranking.caches import RankingCaches

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Model:
    """Every artifact of one model version, loaded (large arrays memory-mapped) and cross-checked."""

    path: Path
    manifest: dict[str, Any]
    config: TrainConfig
    documents: DocumentStore
    index: LoadedIndex
    lexical: LexicalIndex
    vectors: KeyedVectors
    keyword_model: KeywordModel
    doc_keywords: DocumentKeywords
    phrases: PhraseModel
    docvectors: np.ndarray
    preprocessor: Preprocessor
    #: each word's nearest keywords, for query expansion
    expansions: ExpansionTable
    #: term positions in each document's opening text (None for models trained before it existed)
    snippets: SnippetIndex | None = None
    #: extra word2vec models with other seeds, for the intersection method (empty when not trained)
    thesaurus: tuple[KeyedVectors, ...] = ()
    #: each document's nearest documents (None for models trained without them)
    neighbours: NeighbourTable | None = None
    #: who cites whom (None for models trained before the graph existed, or with it switched off)
    citations: CitationGraph | None = None
    #: the suggestion index written at training (None for models trained before it existed: ``suggestions``)
    suggestion_index: SuggestionIndex | None = None
    #: how /recommend fuses its relatedness signals (None: by word2vec alone, as models trained before it)
    fusion: Fusion | None = None
    #: documents answered together in feedback questions (None without feedback)
    corelevance: CoRelevance | None = None
    #: each document's best related documents by the fusion, for unfiltered one-seed requests (None without it)
    related: NeighbourTable | None = None
    #: each ``related`` slot's signal parts (documents x slots x the fusion's signals; None: computed per request)
    related_parts: np.ndarray | None = None
    #: what /search learned from feedback at training (None for a model trained without feedback)
    feedback: FeedbackIndex | None = None

    @property
    def version(self) -> str:
        """The model version (its folder name)."""
        return str(self.manifest["version"])

    @classmethod
    def load(cls, path: str | Path, verify: bool = True, mmap: bool = True,
             manifest_sha256: str | None = None) -> Model:
        """Load a model folder (or the ``current`` one of a models folder); refuse a damaged one.

        ``manifest_sha256`` pins the manifest (what ``current.json`` recorded); given a models folder, its
        record's hash is used. Only files the manifest lists are read.
        """
        folder = Path(path)
        if manifest_sha256 is None and not (folder / MANIFEST_NAME).exists() and current_version(folder):
            record = read_current_record(folder)
            manifest_sha256 = record.manifest_sha256 if record is not None else None
            folder = resolve_model_dir(folder)
        manifest = verify_model(folder, check_hashes=verify, manifest_sha256=manifest_sha256)
        return cls.open(folder, manifest, mmap)

    @classmethod
    def open(cls, folder: Path, manifest: dict[str, Any], mmap: bool = True) -> Model:
        """Load the artifacts of a folder as ``manifest`` describes it, without verifying any file: ``load``
        after verification, and training's later stages over the folder they are writing."""
        config = config_from_dict(manifest["config"])
        docvectors = load_docvectors(folder, mmap)
        vectors = load_vectors(folder, mmap=mmap)
        keyword_model = KeywordModel.load(folder)
        model = cls(
            path=folder,
            manifest=manifest,
            config=config,
            documents=DocumentStore(folder),
            index=load_index(folder, mmap=mmap),
            lexical=load_lexical_index(folder / LEXICAL_DIR, mmap=mmap),
            vectors=vectors,
            keyword_model=keyword_model,
            doc_keywords=DocumentKeywords.load(folder, mmap=mmap),
            phrases=PhraseModel.load(folder),
            docvectors=docvectors,
            preprocessor=Preprocessor(config.preprocess),
            expansions=ExpansionTable.load(folder, vectors, keyword_model, config.search.expansion_width,
                                           mmap=mmap),
            snippets=SnippetIndex.load(folder, mmap=mmap),
            thesaurus=tuple(load_vectors(folder / sub, mmap=mmap) for sub in thesaurus_folders(manifest)),
            neighbours=NeighbourTable.load(folder, int(docvectors.shape[0]), mmap=mmap),
            citations=CitationGraph.load(folder, int(docvectors.shape[0]), mmap=mmap),
            suggestion_index=SuggestionIndex.load(folder, mmap=mmap),
            fusion=Fusion.load(folder),
            corelevance=CoRelevance.load(folder, int(docvectors.shape[0]), mmap=mmap),
            related=NeighbourTable.load(folder, int(docvectors.shape[0]), mmap=mmap, files=RELATED_FILES),
            related_parts=load_related_parts(folder, int(docvectors.shape[0]), mmap=mmap),
            feedback=FeedbackIndex.load(folder, int(docvectors.shape[0]), vectors.vector_size, mmap=mmap),
        )
        model._check_counts()
        log.info("loaded model %s (%d documents)", model.version, len(model.documents))
        return model

    def _check_counts(self) -> None:
        expected = int(self.manifest.get("counts", {}).get("documents", -1))
        found = {
            IDS_FILE: len(self.index.ids),
            DOCS_FILE: len(self.documents),
            DOCVECTORS_FILE: int(self.docvectors.shape[0]),
            "lexical index": int(self.lexical.n_docs),
            "keywords": len(self.doc_keywords.indptr) - 1,
        }
        # explanations and query weights are written to JSON as they are (api.answers.json_response): a
        # corrupt weight must stop the model here rather than reach an answer as NaN
        if not (np.isfinite(self.doc_keywords.weights).all() and np.isfinite(self.keyword_model.idf).all()):
            raise ArtifactError(f"model {self.path}: keyword weights or idf values are not all finite")
        if self.related_parts is not None and (
                self.related is None or self.fusion is None
                or self.related_parts.shape[1:] != (self.related.width, len(self.fusion.signals))):
            raise ArtifactError(f"model {self.path}: the related table's signal parts do not fit its table and fusion")
        wrong = {name: n for name, n in found.items() if n != expected}
        if wrong:
            detail = ", ".join(f"{name} has {n}" for name, n in wrong.items())
            raise ArtifactError(f"model {self.path} is inconsistent: manifest says {expected} documents, {detail}")
        for row in {0, expected // 2, expected - 1}:
            if expected and self.documents.record(row)["id"] != self.index.ids[row]:
                raise ArtifactError(f"model {self.path}: row {row} of {DOCS_FILE} and {IDS_FILE} disagree")

    @cached_property
    def keyword_terms(self) -> frozenset[str]:
        """The corpus keyword vocabulary as a set."""
        return frozenset(self.keyword_model.vocabulary)

    @cached_property
    def suggestions(self) -> SuggestionIndex:
        """Completions of typed prefixes (keywords, phrases, laws, sections): the training-time artifact, or for a
        model trained before it existed, built on first use (``ranking.warm_up`` does it at load)."""
        if self.suggestion_index is not None:
            return self.suggestion_index
        return build_suggestions(self.keyword_model, self.documents, self.index.ids)

    @cached_property
    def ranking_caches(self) -> RankingCaches:
        """The ranking's memos of this model (``ranking.caches``): built by ``ranking.warm_up`` before the model
        serves, filled by requests otherwise; a copy (``dataclasses.replace``) starts with its own."""
        from legalsearch.ranking.caches import RankingCaches  # the ranking imports the engine

        return RankingCaches()

    def row_of(self, doc_id: str) -> int:
        """The row of a document id; UnknownDocumentError when absent."""
        row = self.index.rows.get(doc_id)
        if row is None:
            raise UnknownDocumentError(doc_id)
        return row

    def document(self, doc_id: str) -> Document:
        """One document by id."""
        return self.documents.get(self.row_of(doc_id))

    def keywords(self, doc_id: str, k: int | None = None) -> list[Keyword]:
        """A document's TF-IDF keywords, best first."""
        kws = self.doc_keywords.of(self.row_of(doc_id), self.keyword_model.vocabulary)
        return kws[:k] if k is not None else kws

    def close(self) -> None:
        """Release file handles (memory maps go with the object)."""
        self.documents.close()
