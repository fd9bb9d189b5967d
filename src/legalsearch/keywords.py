"""Stage: multiword terms (gensim Phrases) and TF-IDF keyword extraction (scikit-learn).

Entry points: ``learn_phrases`` finds multiword legal terms ("ordentliche_kündigung"); ``extract_keywords``
weights every document's terms by TF-IDF, keeps its top keywords and the corpus keyword vocabulary.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from gensim.models.phrases import Phrases
from sklearn.feature_extraction.text import TfidfVectorizer

from legalsearch.config import KeywordsConfig, PhrasesConfig
from legalsearch.errors import ArtifactError, CorpusError
from legalsearch.model import load_array
from legalsearch.types import Keyword

log = logging.getLogger(__name__)

PHRASE_JOINER = "_"

#: the learned phrases (``PhraseModel``)
PHRASES_FILE = "phrases.tsv"
#: the keyword vocabulary with document frequencies and idf (``KeywordModel``)
VOCABULARY_FILE = "vocabulary.tsv"
#: each document's keywords as CSR arrays (``DocumentKeywords``)
DOCUMENT_KEYWORDS_FILES = {"indptr": "keywords_indptr.npy", "terms": "keywords_terms.npy",
                           "weights": "keywords_weights.npy"}


@dataclass(frozen=True)
class PhraseModel:
    """Learned bigram phrases; ``apply`` joins them greedily left to right, as gensim's Phraser does."""

    scores: Mapping[tuple[str, str], float]

    def apply(self, tokens: Sequence[str]) -> list[str]:
        """Replace every known bigram by one joined token, greedily from the left (of "a b c" with both "a b" and
        "b c" known, "a_b c")."""
        scores = self.scores
        # the positions of known bigrams in one pass; most token lists hold few, and the copying is slices
        pairs = zip(tokens, islice(tokens, 1, None), strict=False)
        starts = [i for i, pair in enumerate(pairs) if pair in scores]
        if not starts:
            return list(tokens)
        out: list[str] = []
        done = 0  # tokens[:done] are in out
        for i in starts:
            if i < done:
                continue  # its first word already ends the bigram before it
            out.extend(tokens[done:i])
            out.append(tokens[i] + PHRASE_JOINER + tokens[i + 1])
            done = i + 2
        out.extend(tokens[done:])
        return out

    def __len__(self) -> int:
        return len(self.scores)

    def save(self, folder: Path) -> None:
        """Write ``PHRASES_FILE`` into ``folder`` as TSV (first, second, score), best first: readable and
        diffable."""
        with (folder / PHRASES_FILE).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            for (a, b), score in sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0])):
                writer.writerow([a, b, f"{score:.6f}"])

    @classmethod
    def load(cls, folder: Path) -> PhraseModel:
        """Read the TSV ``save`` wrote into ``folder``."""
        path = folder / PHRASES_FILE
        scores: dict[tuple[str, str], float] = {}
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.reader(fh, delimiter="\t"):
                    scores[(row[0], row[1])] = float(row[2])
        except (OSError, IndexError, ValueError) as exc:
            raise ArtifactError(f"phrase file {path} is unreadable: {exc}") from exc
        return cls(scores)


def learn_phrases(sentences: Iterable[Sequence[str]], config: PhrasesConfig) -> PhraseModel:
    """Learn multiword terms from token lists with gensim Phrases (NPMI scoring)."""
    if not config.enabled:
        return PhraseModel({})
    phrases = Phrases(
        None,
        min_count=config.min_count,
        threshold=config.threshold,
        scoring="npmi",
        delimiter=PHRASE_JOINER,
        progress_per=10**9,  # gensim's own progress logging is noise beside our progress bars
    )
    _count_into(phrases, sentences)
    found: dict[tuple[str, str], float] = {}
    for phrase, score in phrases.export_phrases().items():
        parts = phrase.split(PHRASE_JOINER)
        if len(parts) == 2:
            found[(parts[0], parts[1])] = float(score)
    best = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[: config.max_phrases]
    log.info("learned %d phrases (of %d candidates)", len(best), len(found))
    return PhraseModel(dict(best))


def _count_into(phrases: Phrases, sentences: Iterable[Sequence[str]]) -> None:
    """Gensim's word and bigram counts (``Phrases.add_vocab`` without connector words, its pruning past
    ``max_vocab_size`` included), counted by ``Counter`` in C instead of gensim's Python loop, which was most of
    the stage. Bigrams seen fewer than ``min_count`` times are left out at the end: NPMI scores them -inf, so
    ``export_phrases`` would never keep them, and skipping them saves it most of its loop."""
    words: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    total, limit, min_reduce = 0, phrases.max_vocab_size, 1
    for sentence in sentences:
        words.update(sentence)
        pairs.update(zip(sentence, islice(sentence, 1, None), strict=False))
        total += len(sentence)
        if len(words) + len(pairs) > limit:  # as gensim.utils.prune_vocab
            for counter in (words, pairs):
                for key in [k for k, n in counter.items() if n < min_reduce]:
                    del counter[key]
            min_reduce += 1
    vocab: dict[str, int] = dict(words)
    joiner, least = phrases.delimiter, phrases.min_count
    vocab.update((a + joiner + b, n) for (a, b), n in pairs.items() if n >= least)
    phrases.vocab = vocab  # as add_vocab into an empty model: min_reduce stays 1 there too
    phrases.corpus_word_count = total


@dataclass(frozen=True)
class KeywordModel:
    """The corpus keyword vocabulary with document frequencies and idf, and the config that made it."""

    vocabulary: tuple[str, ...]
    df: np.ndarray
    idf: np.ndarray
    n_docs: int
    sublinear_tf: bool
    term_index: Mapping[str, int]

    @classmethod
    def from_arrays(
        cls, vocabulary: Sequence[str], df: np.ndarray, idf: np.ndarray, n_docs: int, sublinear_tf: bool
    ) -> KeywordModel:
        """Build with the term index derived from the vocabulary order."""
        vocab = tuple(vocabulary)
        return cls(vocab, df, idf, n_docs, sublinear_tf, {t: i for i, t in enumerate(vocab)})

    def weigh(self, tokens: Iterable[str], top_k: int | None = None) -> list[Keyword]:
        """TF-IDF keywords of an unseen text's tokens, L2-normalised like the documents', best first."""
        counts = Counter(t for t in tokens if t in self.term_index)
        if not counts:
            return []
        weights = {}
        for term, tf in counts.items():
            tfw = 1.0 + math.log(tf) if self.sublinear_tf else float(tf)
            weights[term] = tfw * float(self.idf[self.term_index[term]])
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
        if top_k is not None:
            ranked = ranked[:top_k]
        return [Keyword(term, w / norm) for term, w in ranked]

    def save(self, folder: Path) -> None:
        """Write the vocabulary into ``folder`` as TSV (``VOCABULARY_FILE``): term, document frequency, idf."""
        with (folder / VOCABULARY_FILE).open("w", encoding="utf-8", newline="") as fh:
            fh.write(f"#n_docs={self.n_docs}\tsublinear_tf={int(self.sublinear_tf)}\n")
            for term, df, idf in zip(self.vocabulary, self.df.tolist(), self.idf.tolist(), strict=True):
                fh.write(f"{term}\t{df}\t{idf:.8f}\n")

    @classmethod
    def load(cls, folder: Path) -> KeywordModel:
        """Read the vocabulary ``save`` wrote into ``folder``."""
        path = folder / VOCABULARY_FILE
        try:
            with path.open(encoding="utf-8") as fh:
                header = fh.readline().rstrip("\n").lstrip("#").split("\t")
                meta = dict(item.split("=", 1) for item in header)
                terms, dfs, idfs = [], [], []
                for line in fh:
                    term, df, idf = line.rstrip("\n").split("\t")
                    terms.append(term)
                    dfs.append(int(df))
                    idfs.append(float(idf))
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"keyword vocabulary {path} is unreadable: {exc}") from exc
        return cls.from_arrays(
            terms,
            np.asarray(dfs, dtype=np.int64),
            np.asarray(idfs, dtype=np.float32),
            int(meta["n_docs"]),
            meta["sublinear_tf"] == "1",
        )


@dataclass(frozen=True)
class CsrRows:
    """Where several rows of a CSR structure lie: row r's entries are ``positions[bounds[r]:bounds[r+1]]``."""

    positions: np.ndarray
    bounds: list[int]


def csr_rows(indptr: np.ndarray, rows: Sequence[int]) -> CsrRows:
    """The positions of several CSR rows, concatenated: one gather then serves all rows, where per-row slicing
    cost a few numpy calls each (their overhead dominated for the ~10 rows of a result page)."""
    row_arr = np.asarray(rows, dtype=np.int64)
    los = indptr[row_arr]
    lengths = indptr[row_arr + 1] - los
    ends = np.cumsum(lengths)
    firsts = ends - lengths
    total = int(ends[-1]) if ends.size else 0
    positions = np.arange(total, dtype=np.int64) + np.repeat(los - firsts, lengths)
    return CsrRows(positions, [0, *ends.tolist()])


@dataclass(frozen=True)
class RowSlices:
    """Keyword ids and weights of several document rows as lists: row r is ``[bounds[r]:bounds[r+1]]``."""

    terms: list[int]
    weights: list[float]
    bounds: list[int]


@dataclass(frozen=True)
class DocumentKeywords:
    """Each document's top keywords as CSR arrays (row i: ``terms[indptr[i]:indptr[i+1]]``), best first."""

    indptr: np.ndarray
    terms: np.ndarray
    weights: np.ndarray

    def of(self, row: int, vocabulary: Sequence[str]) -> list[Keyword]:
        """Keywords of one document row."""
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        # tolist: the same floats as float() per numpy scalar, in one call
        return [
            Keyword(vocabulary[t], w)
            for t, w in zip(self.terms[lo:hi].tolist(), self.weights[lo:hi].tolist(), strict=True)
        ]

    def rows(self, rows: Sequence[int]) -> RowSlices:
        """Keyword ids and weights of several rows at once (row r: ``terms[bounds[r]:bounds[r+1]]``)."""
        at = csr_rows(self.indptr, rows)
        return RowSlices(self.terms[at.positions].tolist(), self.weights[at.positions].tolist(), at.bounds)

    def save(self, folder: Path) -> None:
        """Write the three arrays as .npy files (``DOCUMENT_KEYWORDS_FILES``)."""
        for name, file in DOCUMENT_KEYWORDS_FILES.items():
            np.save(folder / file, getattr(self, name))

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> DocumentKeywords:
        """Load the arrays, memory-mapped so that server workers share them."""
        return cls(**{name: load_array(folder / file, mmap) for name, file in DOCUMENT_KEYWORDS_FILES.items()})


@dataclass(frozen=True)
class KeywordResult:
    """What ``extract_keywords`` returns: vocabulary, per-document keywords and the full TF-IDF matrix."""

    model: KeywordModel
    documents: DocumentKeywords
    tfidf: sp.csr_matrix


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def extract_keywords(documents: Iterable[list[str]], config: KeywordsConfig) -> KeywordResult:
    """TF-IDF over token lists: the keyword vocabulary, each document's top keywords, the weight matrix."""
    vectorizer = TfidfVectorizer(
        analyzer=_identity,
        lowercase=False,
        min_df=config.min_df,
        max_df=config.max_df,
        sublinear_tf=config.sublinear_tf,
        max_features=config.max_vocabulary,
        norm="l2",
        dtype=np.float32,
    )
    try:
        matrix = vectorizer.fit_transform(documents)
    except ValueError as exc:  # sklearn: "After pruning, no terms remain" and the like
        raise CorpusError(f"keyword extraction found no usable terms: {exc}") from exc
    tfidf = sp.csr_matrix(matrix, dtype=np.float32)
    vocabulary = vectorizer.get_feature_names_out().tolist()
    df = np.asarray((tfidf > 0).sum(axis=0)).ravel().astype(np.int64)
    model = KeywordModel.from_arrays(
        vocabulary, df, vectorizer.idf_.astype(np.float32), tfidf.shape[0], config.sublinear_tf
    )
    return KeywordResult(model, top_keywords(tfidf, config.top_k), tfidf)


def top_keywords(tfidf: sp.csr_matrix, top_k: int) -> DocumentKeywords:
    """Per row, the ``top_k`` largest weights, ties broken by term index for repeatable output."""
    indptr = [0]
    terms: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for row in range(tfidf.shape[0]):
        lo, hi = tfidf.indptr[row], tfidf.indptr[row + 1]
        cols, vals = tfidf.indices[lo:hi], tfidf.data[lo:hi]
        order = np.lexsort((cols, -vals))[:top_k]
        terms.append(cols[order].astype(np.int32))
        weights.append(vals[order].astype(np.float32))
        indptr.append(indptr[-1] + len(order))
    return DocumentKeywords(
        np.asarray(indptr, dtype=np.int64),
        np.concatenate(terms) if terms else np.zeros(0, np.int32),
        np.concatenate(weights) if weights else np.zeros(0, np.float32),
    )


def iter_token_lines(path: Path) -> Iterator[list[str]]:
    """Stream token lists from a cache file (one document per line, tokens separated by spaces)."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield line.split()
