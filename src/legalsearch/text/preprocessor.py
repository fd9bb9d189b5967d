"""The Preprocessor: German legal text to normalised tokens, memoised per surface word.

The rules and the reasons for them are documented in ``docs/preprocessing.md``. Everything that depends only
on a word's surface form (lemma, case, stopword, number rule, compound parts) is computed once per distinct
surface string and memoised, so the per-token cost after warm-up is one dict lookup; only citations and
citation markers ("Abs. 2") look at their neighbours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Final, cast, overload

from spacy.attrs import ORTH as ORTH_ATTR
from spacy.strings import StringStore
from spacy.tokens import Doc

from legalsearch.config import PreprocessConfig
from legalsearch.text import parallel
from legalsearch.text.citations import ARTICLE_WORDS, MARKERS, CitationParser, is_part_number, skip_part_list
from legalsearch.text.compounds import CompoundSplitter
from legalsearch.text.memo import ENTRY_BYTES, STR_BYTES, memo_budget, token_bytes
from legalsearch.text.tokenizer import (
    blank_german,
    data_digest,
    has_long_chunk,
    lexicon,
    library_versions,
    read_list,
    spans,
    tokenize,
)

#: bump when a rule of this package changes the tokens it produces (part of the fingerprint)
RULES_VERSION: Final = "2"

# bare numbers, ordinals ("12."), dates ("12.3.2017"), decimals ("1,5"), ranges ("2017/18")
_NUMBER = re.compile(r"[\d][\d.,:/\-]*\.?|\d+[a-z]")
_HAS_WORD_CHAR = re.compile(r"\w")
_WHITESPACE = re.compile(r"\s+")
_STRIP_CHARS: Final = "-'’\u00ad.·"

GROUP_SEP = "|"


class _Sentinel:
    """Memo values that mean "look at the neighbours" instead of a token tuple."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_CITE: Final = _Sentinel("CITE")
_MARK: Final = _Sentinel("MARK")
_Entry = tuple[str, ...] | _Sentinel


class _Words(Sequence[str]):
    """The words of a doc made from its orth hashes on access: citations look at a few neighbours only."""

    __slots__ = ("_hashes", "_strings")

    def __init__(self, hashes: list[int], strings: StringStore) -> None:
        self._hashes = hashes
        self._strings = strings

    def __len__(self) -> int:
        return len(self._hashes)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._strings[h] for h in self._hashes[i]]
        return cast(str, self._strings[self._hashes[i]])


@dataclass(frozen=True, slots=True)
class TokenSpan:
    """A stretch of the input text and the normalised tokens it produced (for highlighting query terms)."""

    start: int
    end: int
    surface: str
    tokens: tuple[str, ...]


class Preprocessor:
    """Turns German legal text into normalised tokens; build once, reuse for many texts."""

    def __init__(self, config: PreprocessConfig) -> None:
        """Build ``spacy.blank("de")`` with the legal abbreviations as special cases; no downloads."""
        self.config = config
        abbreviations = read_list("legal_abbreviations.txt")
        self._nlp, self._tokenizer = blank_german(abbreviations)
        self._abbreviations = frozenset(abbreviations)
        self._citations = CitationParser(self._abbreviations)
        exceptions = set(read_list("stopword_exceptions.txt"))
        self._stopwords = frozenset(
            (set(self._nlp.Defaults.stop_words) - exceptions) | set(read_list("legal_stopwords.txt"))
        )
        self._lex = lexicon()
        self._compounds = CompoundSplitter(self._lex, self._stopwords,
                                           frozenset(read_list("compound_head_blocklist.txt")), self._charge)
        self._simplemma = None
        if config.lemmatizer == "simplemma":
            import simplemma

            self._simplemma = simplemma
        self._memo: dict[str, _Entry] = {}
        #: orth hash -> tokens (grouped: the one group string), only for words that do not look at neighbours
        self._hash_memo: dict[int, tuple[str, ...]] = {}
        self._group_memo: dict[int, tuple[str, ...]] = {}
        #: whitespace-separated stretch -> its tokens' orth hashes and texts (``query_groups``)
        self._span_memo: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}
        self._strings = self._nlp.vocab.strings
        self._memo_bytes = 0
        self._fingerprint = self._compute_fingerprint()

    # ------------------------------------------------------------------ public API

    @property
    def fingerprint(self) -> str:
        """Stable hash of the token-affecting config, the rule data and the library versions."""
        return self._fingerprint

    def tokens(self, text: str) -> list[str]:
        """The normalised tokens of one text."""
        return self._tokens_of(self._tokenize(text))

    def pipe(self, texts: Iterable[str]) -> Iterator[list[str]]:
        """Tokens of many texts, in order, streamed batch by batch (same result as ``tokens()``)."""
        texts, parallel = self._worth_parallel(texts)
        if parallel:
            yield from self._pipe_parallel(texts)
            return
        tokenize = self._tokenize
        for text in texts:
            yield self._tokens_of(tokenize(text))

    def pipe_grouped(self, texts: Iterable[str]) -> Iterator[list[str]]:
        """Like ``pipe``, but the tokens one word produced stay together, joined by ``GROUP_SEP``.

        "Mietvertragskündigung" gives ``"mietvertragskündigung|mietvertrag|kündigung"``: the first token is the
        word itself (what phrases, keywords and word2vec see), the rest are compound parts and citation variants
        (which only lexical matching uses). ``split_groups`` takes them apart again.
        """
        texts, parallel = self._worth_parallel(texts)
        if parallel:
            yield from self._pipe_parallel(texts, grouped=True)
            return
        tokenize = self._tokenize
        for text in texts:
            yield self._tokens_of(tokenize(text), grouped=True)

    def query_groups(self, text: str) -> list[str]:
        """``pipe_grouped`` of one text (a query), with spaCy's tokens of each stretch of it memoised.

        Queries are tokenized inside ``transient()``, where spaCy keeps no tokenizer cache (its cached tokens
        would point at lexemes the zone frees), so every query paid the affix rules of every word again: a fifth
        of a search's CPU. The memo here holds plain hashes and strings, and a text's tokens are its stretches'
        tokens one after another (``tokenizer.spans``), so the result is the one ``pipe_grouped`` gives.
        """
        if has_long_chunk(text):
            return self._tokens_of(self._tokenize(text), grouped=True)
        memo = self._span_memo
        hashes: list[int] = []
        words: list[str] = []
        for span in spans(text):
            known = memo.get(span)
            if known is None:
                doc = self._tokenizer(span)
                known = (tuple(doc.to_array(ORTH_ATTR).tolist()), tuple(t.text for t in doc))
                self._charge(ENTRY_BYTES + STR_BYTES + len(span) + token_bytes(known[1]) + 36 * len(known[0]))
                memo[span] = known
            hashes += known[0]
            words += known[1]
        return self._tokens_from(hashes, words, grouped=True)

    def _worth_parallel(self, texts: Iterable[str]) -> tuple[Iterable[str], bool]:
        """Whether to use worker processes: only with n_process > 1 and more than one batch of input.

        A query or a handful of texts would pay a process pool's start-up many times over.
        """
        if self.config.n_process <= 1:
            return texts, False
        it = iter(texts)
        first = list(islice(it, self.config.batch_size + 1))
        if len(first) <= self.config.batch_size:
            return first, False
        return chain(first, it), True

    def pipe_spans(self, texts: Iterable[str]) -> Iterator[list[TokenSpan]]:
        """Surface stretches of each text with the tokens each produced (stretches producing none left out), in
        order. Known words are answered from the hash memo and offsets found without Token objects, which makes it
        fast enough for every document of a corpus (tests/reference.py holds the plain version it equals)."""
        memo = self._hash_memo
        strings = self._strings
        tokenize = self._tokenize
        for text in texts:
            doc = tokenize(text)
            hashes: list[int] = doc.to_array(ORTH_ATTR).tolist()
            words = [strings[h] for h in hashes]
            # token offsets by a forward search: the tokenizer keeps the text's order and every token is a
            # substring of it; reading spaCy's idx attribute per token cost several times more
            starts: list[int] = []
            cursor = 0
            for w in words:
                cursor = text.find(w, cursor)
                starts.append(cursor)
                cursor += len(w)
            spans: list[TokenSpan] = []
            i, n = 0, len(words)
            while i < n:
                toks = memo.get(hashes[i])
                j = i + 1
                if toks is None:
                    entry = self._entry(words[i])
                    if entry.__class__ is _Sentinel:
                        j, toks = self._step(words, i)
                    else:
                        toks = cast(tuple[str, ...], entry)
                        self._charge(ENTRY_BYTES)
                        memo[hashes[i]] = toks
                if toks:
                    start = starts[i]
                    end = starts[j - 1] + len(words[j - 1])
                    spans.append(TokenSpan(start, end, text[start:end], toks))
                i = j
            yield spans

    def transient(self) -> contextlib.AbstractContextManager[None]:
        """A block whose new words spaCy forgets at its end (``memory_zone``): its string store, lexemes and
        tokenizer cache would otherwise keep every word of every query. Tokens are the same inside and out; the
        word memos here stay, bounded by ``set_memo_budget``. Not reentrant across threads (spaCy's zones are not)."""
        return cast(contextlib.AbstractContextManager[None], self._nlp.memory_zone())

    # ------------------------------------------------------------------ token loop

    def _tokenize(self, text: str) -> Doc:
        """spaCy's tokens of ``text``, long runs of non-space characters cut into pieces (``tokenize``)."""
        return tokenize(self._tokenizer, text)

    def _tokens_of(self, doc: Doc, grouped: bool = False) -> list[str]:
        # keyed by the tokenizer's orth hashes: reading them as one array avoids creating a Token object and a
        # str per token, which costs more than everything else here. Words that need their neighbours (citations,
        # markers) are never in the hash memos, so a text without them and without new words is one C-level
        # map + chain; strings are made only for the few positions the slow path looks at.
        hashes: list[int] = doc.to_array(ORTH_ATTR).tolist()
        return self._tokens_from(hashes, None, grouped)

    def _tokens_from(self, hashes: list[int], words: Sequence[str] | None, grouped: bool) -> list[str]:
        """Tokens of the words with these orth hashes (``words`` their texts, or None to read them from spaCy's
        string store where needed)."""
        memo = self._group_memo if grouped else self._hash_memo
        entries = list(map(memo.get, hashes))
        if None not in entries:
            return list(chain.from_iterable(entries))  # type: ignore[arg-type]
        return self._tokens_slow(hashes, entries, memo, grouped,
                                 _Words(hashes, self._strings) if words is None else words)

    def _tokens_slow(self, hashes: list[int], entries: list[tuple[str, ...] | None],
                     memo: dict[int, tuple[str, ...]], grouped: bool, words: Sequence[str]) -> list[str]:
        """The token loop from the first position the hash memo does not answer."""
        out: list[str] = []
        i = 0
        while True:
            try:
                j = entries.index(None, i)
            except ValueError:
                out += chain.from_iterable(entries[i:])  # type: ignore[arg-type]
                return out
            out += chain.from_iterable(entries[i:j])  # type: ignore[arg-type]
            entry = self._entry(words[j])
            if entry.__class__ is _Sentinel:
                i, toks = self._step(words, j)
                out += _group(toks) if grouped else toks
                continue
            plain = cast(tuple[str, ...], entry)
            value = tuple(_group(plain)) if grouped else plain
            self._charge(ENTRY_BYTES + (token_bytes(value) if grouped else 0))
            memo[hashes[j]] = value
            out += value
            i = j + 1

    def _step(self, words: Sequence[str], i: int) -> tuple[int, tuple[str, ...]]:
        """Process the unit starting at ``words[i]``: returns the next index and the tokens produced."""
        entry = self._entry(words[i])
        if entry is _CITE:
            cited = self._citations.parse(words, i)
            if cited is not None:
                return cited
            return i + 1, self._word(words[i].lstrip("§")) if words[i][0] == "§" else self._word(words[i])
        if entry is _MARK:
            if i + 1 < len(words) and is_part_number(words[i + 1]):
                return skip_part_list(words, i + 2), ()
            return i + 1, self._word(words[i])
        return i + 1, entry  # type: ignore[return-value]

    def _entry(self, word: str) -> _Entry:
        memo = self._memo
        entry = memo.get(word)
        if entry is None:
            if word[:1] == "§" or (self.config.citations and word in ARTICLE_WORDS):
                entry = _CITE if self.config.citations else self._word(word.lstrip("§"))
            elif word in MARKERS:
                entry = _MARK
            else:
                entry = self._word(word)
            self._charge(ENTRY_BYTES + STR_BYTES + len(word)
                         + (token_bytes(entry) if isinstance(entry, tuple) else 0))
            memo[word] = entry
        return entry

    def _charge(self, nbytes: int) -> None:
        """Account for a memo entry about to be added; all memos are emptied first if it would pass the budget."""
        if self._memo_bytes + nbytes > memo_budget():
            self._memo.clear()
            self._hash_memo.clear()
            self._group_memo.clear()
            self._span_memo.clear()
            self._compounds.memo.clear()
            self._memo_bytes = 0
        self._memo_bytes += nbytes

    # ------------------------------------------------------------------ words

    def _word(self, word: str) -> tuple[str, ...]:
        """Tokens of one word, independent of its neighbours."""
        if not word or word in self._abbreviations:
            return ()
        if _WHITESPACE.search(word) or "_" in word or "/" in word:
            # tokens never hold whitespace or "_" (phrases are joined with "_"); "und/oder" is two words
            parts = [p for p in re.split(r"[\s_/]+", word) if p]
            return tuple(dict.fromkeys(t for p in parts for t in self._word(p)))
        word = word.strip(_STRIP_CHARS)
        if not word or not _HAS_WORD_CHAR.search(word):
            return ()
        if "-" in word:
            parts = [p for p in word.split("-") if p]
            if len(parts) > 1:
                whole = self._finish(word.lower() if self.config.lowercase else word, word)
                return tuple(dict.fromkeys((*whole[:1], *(t for p in parts for t in self._word(p)))))
        if _NUMBER.fullmatch(word):
            return (word.rstrip("."),) if self.config.numbers == "keep" else ()
        return self._finish(self._lemma(word), word)

    def _finish(self, lemma: str, surface: str) -> tuple[str, ...]:
        cfg = self.config
        low = lemma.lower()
        if cfg.remove_stopwords and (low in self._stopwords or surface.lower() in self._stopwords):
            return ()
        tok = low if cfg.lowercase else lemma
        parts: tuple[str, ...] = ()
        if cfg.split_compounds and "-" not in low:
            split = self._compounds.decompose(low)
            if split is not None:
                compound, _head, parts = split
                tok = compound if cfg.lowercase else compound[:1].upper() + compound[1:]
                parts = tuple(p for p in parts if len(p) >= cfg.min_token_chars
                              and not (cfg.remove_stopwords and p in self._stopwords))
        if len(tok) < cfg.min_token_chars:
            return ()
        return tuple(dict.fromkeys((tok, *parts)))

    def _lemma(self, word: str) -> str:
        if self.config.lemmatizer == "none":
            return word
        if self._simplemma is not None:
            return str(self._simplemma.lemmatize(word, lang="de"))
        table = self._lex.lemmas
        lemma = table.get(word)
        if lemma is None:
            # the table is case-sensitive: sentence-initial verbs ("Gekündigt") and lowercased nouns in
            # queries ("mietverträge") are found under the other spelling
            alt = word.lower() if word[:1].isupper() else word[:1].upper() + word[1:]
            lemma = table.get(alt)
            if lemma is None:
                return word
            if alt != word.lower():
                return lemma
        return lemma

    # ------------------------------------------------------------------ parallel

    def batch(self, texts: list[str], grouped: bool = False) -> list[list[str]]:
        """Tokens of each text (grouped as ``pipe_grouped`` if asked), in this process whatever ``n_process`` says:
        for callers that run their own worker pool."""
        tokenize = self._tokenize
        return [self._tokens_of(tokenize(text), grouped) for text in texts]

    def _pipe_parallel(self, texts: Iterable[str], grouped: bool = False) -> Iterator[list[str]]:
        """``n_process - 1`` worker processes plus this one; batches come back in input order."""
        return parallel.pipe_parallel(self, texts, grouped)

    def _compute_fingerprint(self) -> str:
        # batch_size and n_process do not change the tokens, so they must not invalidate caches
        cfg = dataclasses.asdict(self.config)
        for irrelevant in ("batch_size", "n_process"):
            cfg.pop(irrelevant)
        payload = json.dumps(
            {"config": cfg, "rules": RULES_VERSION, "data": data_digest(), "libs": library_versions()},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]



def _group(tokens: tuple[str, ...] | list[str]) -> list[str]:
    if not tokens:
        return []
    return [GROUP_SEP.join(tokens)] if len(tokens) > 1 else [tokens[0]]


def split_groups(groups: Iterable[str]) -> tuple[list[str], list[str]]:
    """From grouped tokens: (the words themselves, every token including compound parts and variants)."""
    words: list[str] = []
    every: list[str] = []
    for g in groups:
        if GROUP_SEP in g:
            parts = g.split(GROUP_SEP)
            words.append(parts[0])
            every.extend(parts)
        else:
            words.append(g)
            every.append(g)
    return words, every

