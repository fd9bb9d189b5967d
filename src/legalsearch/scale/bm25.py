"""BM25 shards that score with the collection's statistics: one shard's postings, every term's idf from the
document frequencies of all shards, document lengths normalised by the collection's average length.

A shard built here holds, for its documents, exactly the BM25(term, doc) values that bm25s stores for them in an
index over the whole collection (same float32 operations), so shard scores merge without any correction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bm25s
import numpy as np
import scipy.sparse as sp
from bm25s.scoring import (
    _build_idf_array,
    _build_nonoccurrence_array,
    _build_scores_and_indices_for_matrix,
    _calculate_doc_freqs,
    _select_idf_scorer,
    _select_tfc_scorer,
)
from bm25s.tokenization import Tokenized

from legalsearch.config import LexicalConfig
from legalsearch.errors import InvalidRequestError
from legalsearch.lexical import LexicalIndex, LexicalProfile, _Group, score_matrix


@dataclass(frozen=True)
class LexicalStats:
    """The collection's lexical statistics, merged once from every shard: term ids (first-seen order over the
    collection, as the single-node index numbers them), document frequencies, N and the total length."""

    vocab: dict[str, int]
    df: np.ndarray
    n_docs: int
    total_length: int

    @property
    def avg_doc_len(self) -> np.float64:
        # the sum of integers is exact, so this is the float64 mean bm25s computes over the whole collection
        return np.float64(self.total_length) / np.float64(self.n_docs)


@dataclass(frozen=True)
class ShardCounts:
    """One shard's part of the statistics: the terms in first-seen order, their document frequencies, lengths."""

    terms: list[str]
    df: dict[str, int]
    n_docs: int
    total_length: int


def count_shard(token_lists: Iterable[Sequence[str]]) -> ShardCounts:
    """Terms (first-seen order), document frequencies, document count and total length of one shard."""
    order: dict[str, None] = {}
    df: dict[str, int] = {}
    n = total = 0
    for tokens in token_lists:
        n += 1
        total += len(tokens)
        for t in tokens:
            order.setdefault(t, None)
        for t in set(tokens):
            df[t] = df.get(t, 0) + 1
    return ShardCounts(list(order), df, n, total)


def merge_counts(parts: Sequence[ShardCounts]) -> LexicalStats:
    """The collection's statistics from its shards' counts, given in row order."""
    vocab: dict[str, int] = {}
    for part in parts:
        for t in part.terms:
            vocab.setdefault(t, len(vocab))
    df = np.zeros(len(vocab), dtype=np.int64)
    for part in parts:
        for t, n in part.df.items():
            df[vocab[t]] += n
    return LexicalStats(vocab, df, sum(p.n_docs for p in parts), sum(p.total_length for p in parts))


class GlobalStatsBM25(bm25s.BM25):
    """bm25s's index build (``build_index_from_ids``) with idf and average length from ``LexicalStats``."""

    def __init__(self, stats: LexicalStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = stats

    def build_index_from_ids(self, unique_token_ids: list[int], corpus_token_ids: list[list[int]],
                             show_progress: bool = True, leave_progress: bool = False) -> dict[str, Any]:
        stats = self.stats
        avg_doc_len = stats.avg_doc_len
        n_docs = len(corpus_token_ids)
        n_vocab = len(unique_token_ids)
        local_df = _calculate_doc_freqs(corpus_tokens=corpus_token_ids, unique_tokens=unique_token_ids,
                                        show_progress=False)
        global_df = {i: int(stats.df[i]) for i in unique_token_ids}
        idf_fn = _select_idf_scorer(self.idf_method)
        if self.method in self.methods_requiring_nonoccurrence:
            self.nonoccurrence_array = _build_nonoccurrence_array(
                doc_frequencies=global_df, n_docs=stats.n_docs, compute_idf_fn=idf_fn,
                calculate_tfc_fn=_select_tfc_scorer(self.method), l_d=avg_doc_len, l_avg=avg_doc_len,
                k1=self.k1, b=self.b, delta=self.delta, dtype=self.dtype)
        else:
            self.nonoccurrence_array = None
        idf_array = _build_idf_array(doc_frequencies=global_df, n_docs=stats.n_docs, compute_idf_fn=idf_fn,
                                     dtype=self.dtype)
        scores_flat, doc_idx, vocab_idx = _build_scores_and_indices_for_matrix(
            corpus_token_ids=corpus_token_ids, idf_array=idf_array, avg_doc_len=avg_doc_len,
            doc_frequencies=local_df, k1=self.k1, b=self.b, delta=self.delta, show_progress=False,
            dtype=self.dtype, int_dtype=self.int_dtype, method=self.method,
            nonoccurrence_array=self.nonoccurrence_array)
        matrix = sp.csc_matrix((scores_flat, (doc_idx, vocab_idx)), shape=(n_docs, n_vocab), dtype=self.dtype)
        return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr, "num_docs": n_docs}


def _global_retriever(corpus_ids: list[list[int]], vocab: Mapping[str, int], stats: LexicalStats, k1: float,
                      b: float, method: str) -> GlobalStatsBM25:
    retriever = GlobalStatsBM25(stats, k1=k1, b=b, method=method)
    retriever.index(Tokenized(ids=corpus_ids, vocab=dict(vocab)), create_empty_token=False, show_progress=False)
    return retriever


def build_shard_lexical(token_lists: Iterable[Sequence[str]], stats: LexicalStats, config: LexicalConfig,
                        profiles: Sequence[LexicalProfile] = (), row_types: Sequence[str] = (),
                        weighting: str = "sqrt") -> LexicalIndex:
    """A shard's BM25 index over the collection's term ids, scored with the collection's statistics, with the
    collection's lexical profiles (``profiles``, counted over the collection) for its rows (``row_types``: each
    shard row's type): ``lexical.build_lexical_index`` over the whole collection, cut to the shard's rows."""
    vocab: Mapping[str, int] = stats.vocab
    corpus_ids = [[vocab[t] for t in tokens] for tokens in token_lists]
    if not corpus_ids:
        raise InvalidRequestError("cannot build a lexical index over zero documents")
    retriever = _global_retriever(corpus_ids, vocab, stats, config.k1, config.b, config.method)
    groups = _shard_groups(corpus_ids, vocab, stats, profiles, row_types, config, weighting)
    return LexicalIndex(retriever, retriever.vocab_dict, profiles, groups, weighting)


def _shard_groups(corpus_ids: list[list[int]], vocab: Mapping[str, int], stats: LexicalStats,
                  profiles: Sequence[LexicalProfile], row_types: Sequence[str], config: LexicalConfig,
                  weighting: str) -> list[_Group]:
    """``lexical._build_groups`` for a shard: a profile's own BM25 columns come from the collection's statistics.

    Groups are numbered over every profile key of the collection (not only those with rows here), so that a
    group keeps its name in every shard."""
    if not profiles:
        return []
    if len(row_types) != len(corpus_ids):
        raise InvalidRequestError(f"{len(row_types)} row types for {len(corpus_ids)} documents")
    types = np.asarray(list(row_types), dtype=object)
    keys: dict[tuple[float, float, str], list[str]] = {}
    for p in profiles:
        if p.key != (config.k1, config.b, weighting):
            keys.setdefault(p.key, []).append(p.type)
    groups = []
    for n, ((k1, b, scheme), names) in enumerate(keys.items(), 1):
        rows = np.flatnonzero(np.isin(types, names)).astype(np.int64)
        if rows.size == 0:
            continue
        matrix: sp.csc_array | None = None
        nonocc: np.ndarray | None = None
        if (k1, b) != (config.k1, config.b):
            retriever = _global_retriever(corpus_ids, vocab, stats, k1, b, config.method)
            full = score_matrix(retriever)
            keep = np.zeros(full.shape[0], dtype=np.float32)
            keep[rows] = 1.0
            matrix = sp.csc_array(sp.diags_array(keep) @ full)
            matrix.eliminate_zeros()
            matrix.sort_indices()
            found = getattr(retriever, "nonoccurrence_array", None)
            nonocc = None if found is None else np.asarray(found)
        groups.append(_Group(f"group-{n}", rows, matrix, nonocc, scheme))
    return groups
