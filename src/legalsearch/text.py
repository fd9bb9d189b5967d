"""German preprocessing: spaCy's blank German tokenizer, lookup lemmas, legal abbreviations, citations.

The rules and the reasons for them are documented in ``docs/preprocessing.md``. Everything that depends only
on a word's surface form (lemma, case, stopword, number rule, compound parts) is computed once per distinct
surface string and memoised, so the per-token cost after warm-up is one dict lookup; only citations and
citation markers ("Abs. 2") look at their neighbours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from itertools import chain, islice
from typing import Final, cast, overload

import spacy
from catalogue import RegistryError
from spacy.attrs import ORTH as ORTH_ATTR
from spacy.strings import StringStore
from spacy.symbols import ORTH
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from legalsearch.config import PreprocessConfig
from legalsearch.errors import ConfigError
from legalsearch.parallel import ordered_map

logger = logging.getLogger(__name__)

#: bump when a rule in this module changes the tokens it produces (part of the fingerprint)
RULES_VERSION: Final = "2"

_DATA_FILES: Final = (
    "legal_abbreviations.txt",
    "legal_stopwords.txt",
    "stopword_exceptions.txt",
    "compound_head_blocklist.txt",
)

#: shortest compound part (modifier or head)
MIN_COMPOUND_PART: Final = 4
#: longer words are never split: the longest official German compound has 63 letters, the longest one split in
#: the court sentences and the laws 47; this and the scan below bound a word's splitting whatever the input
MAX_COMPOUND_CHARS: Final = 64
#: a split giving more parts is refused (the most seen in real text: 12)
MAX_COMPOUND_PARTS: Final = 16
#: estimated bytes one memo entry costs beyond its strings (dict slot, key and tuple objects)
_ENTRY_BYTES: Final = 120
#: estimated bytes of one token string beyond its characters
_STR_BYTES: Final = 56
#: bytes the memos of a Preprocessor may hold (estimated) before they are emptied; ``set_memo_budget`` changes it
_memo_budget = [512 * 2**20]
#: distinct whitespace-separated chunks whose tokenization spaCy keeps (it stops adding, never evicts, past this)
_TOKENIZER_CACHE: Final = 1_000_000

#: longest run of non-space characters handed to spaCy's tokenizer in one piece: it strips a run's prefixes and
#: suffixes one at a time, each time searching the rest, so a run costs the square of its length ("§" * 1,000 took
#: 150 ms, * 20,000 a minute); in pieces of 128 the worst 20,000 characters take ~0.4 s. Runs as long are rare in
#: real text (in 700,000 lines of court sentences and laws: 8 URLs and image links of 128-440 characters).
MAX_CHUNK_CHARS: Final = 128
_LONG_CHUNK = re.compile(rf"\S{{{MAX_CHUNK_CHARS + 1},}}")
_SECTION_NUMBER = re.compile(r"\d+[a-z]?")
# bare numbers, ordinals ("12."), dates ("12.3.2017"), decimals ("1,5"), ranges ("2017/18")
_NUMBER = re.compile(r"[\d][\d.,:/\-]*\.?|\d+[a-z]")
_HAS_WORD_CHAR = re.compile(r"\w")
_WHITESPACE = re.compile(r"\s+")
_ROMAN = re.compile(r"(?:X{0,2})(?:IX|IV|V?I{0,3})")
# a law abbreviation: letters only, at least two capitals ("BGB", "ArbGG", "DMietG", "AO")
_LAW = re.compile(r"[A-ZÄÖÜ][A-Za-zÄÖÜäöüß]{0,14}")
_LINKING_ELEMENTS: Final = ("es", "s", "en", "n")
_STRIP_CHARS: Final = "-'’\u00ad.·"

# words that start a citation
_ARTICLE_WORDS: Final = frozenset({"Art", "Art.", "Artikel", "art.", "Art.-"})
# citation markers: followed by a number they are part of a citation and dropped with their number
_MARKERS: Final = frozenset(
    {
        "Abs.", "Abs", "Absatz", "Absatzes", "Absätze", "Absätzen", "Satz", "Satzes", "Sätze", "Sätzen", "S.",
        "Nr.", "Nr", "Nrn.", "Nummer", "Nummern", "Halbsatz", "Halbs.", "Hs.", "Buchst.", "Buchstabe", "lit.",
        "Alt.", "Alternative", "Var.", "Variante", "UAbs.", "Unterabs.", "Unterabsatz", "Rn.", "Rn", "Rdnr.",
        "Rz.", "Tz.",
    }
)
# continue a list inside a citation: "§§ 573, 574 BGB", "Abs. 1 und 2"
_LIST_WORDS: Final = frozenset({",", "und", "oder", "bis", "sowie", "u."})
_FOLLOWING: Final = frozenset({"f.", "ff.", "f", "ff"})


def set_memo_budget(nbytes: int) -> None:
    """Bytes the word memos of every Preprocessor of this process may hold before they are emptied and refilled
    (tokens never change with it; a small budget only costs some repeated work). The server lowers it
    (``memo_mb``): a flood of new words in queries would otherwise grow each worker by their memo entries."""
    if nbytes < 1:
        raise ConfigError(f"memo budget {nbytes}: must be at least 1 byte")
    _memo_budget[0] = nbytes


def _token_bytes(tokens: Iterable[str]) -> int:
    return sum(_STR_BYTES + len(t) for t in tokens)


class _Sentinel:
    """Memo values that mean "look at the neighbours" instead of a token tuple."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_CITE: Final = _Sentinel("CITE")
_MARK: Final = _Sentinel("MARK")
_Entry = tuple[str, ...] | _Sentinel
#: a compound's split: (compound lemma, head lemma, parts)
_Split = tuple[str, str, tuple[str, ...]]


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


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """The lemma table and the word lists derived from it; loaded once per process."""

    lemmas: dict[str, str]
    #: lowercase noun forms (inflected too) -> lowercase noun lemma: the compound head dictionary
    nouns: dict[str, str]
    #: lowercase forms of every word -> lowercase lemma: the compound modifier dictionary
    words: dict[str, str]
    #: lowercase lemmas; known words are not split into compounds
    known_lemmas: frozenset[str]
    #: length of the longest key of ``nouns``: no longer head can be a noun
    max_noun_chars: int


def _read_list(name: str) -> list[str]:
    text = (resources.files("legalsearch") / "data" / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@lru_cache(maxsize=1)
def _data_digest() -> str:
    h = hashlib.sha256()
    for name in _DATA_FILES:
        h.update(name.encode())
        h.update((resources.files("legalsearch") / "data" / name).read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    # the very file spaCy's Lookups("de", ["lemma_lookup"]) loads; read as plain data because spaCy's Table
    # keeps only the hashes of its keys, and the compound dictionary needs the words themselves
    try:
        path = spacy.util.registry.lookups.get("de")["lemma_lookup"]
        lemmas: dict[str, str] = dict(spacy.util.load_language_data(path))
    except (ValueError, KeyError, OSError, RegistryError) as exc:
        raise ConfigError(f"German lemma table unavailable (spacy-lookups-data installed?): {exc}") from exc
    nouns: dict[str, str] = {}
    words: dict[str, str] = {}
    for form, lemma in lemmas.items():
        low = lemma.lower()
        words.setdefault(form.lower(), low)
        words.setdefault(low, low)
        if lemma[:1].isupper() and form[:1].isupper():
            nouns.setdefault(form.lower(), low)
            nouns.setdefault(low, low)
    # lemmas win over inflected forms that happen to be spelled like another word's lemma
    for lemma in set(lemmas.values()):
        low = lemma.lower()
        words[low] = low
        if lemma[:1].isupper():
            nouns[low] = low
    known = frozenset(words.values())
    logger.debug("lemma table: %d forms, %d nouns", len(lemmas), len(nouns))
    return _Lexicon(lemmas=lemmas, nouns=nouns, words=words, known_lemmas=known,
                    max_noun_chars=max(map(len, nouns), default=0))


def _library_versions() -> dict[str, str]:
    out = {}
    for dist in ("spacy", "spacy-lookups-data", "simplemma"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


class Preprocessor:
    """Turns German legal text into normalised tokens; build once, reuse for many texts."""

    def __init__(self, config: PreprocessConfig) -> None:
        """Build ``spacy.blank("de")`` with the legal abbreviations as special cases; no downloads."""
        self.config = config
        self._nlp = spacy.blank("de")
        # every new word becomes a spaCy lexeme, and by default spaCy computes its shape, prefix, suffix, stop and
        # number flags then: a third of the cost of a word's first sighting. Nothing here reads them (only ORTH,
        # text and offsets), and the tokenizer's rules do not depend on them.
        self._nlp.vocab.lex_attr_getters = {}  # type: ignore[attr-defined]  # missing from the stub, exists
        self._tokenizer = cast(Tokenizer, self._nlp.tokenizer)
        # spaCy caches the affix splitting of only the first 10,000 distinct whitespace-separated chunks; a legal
        # corpus has hundreds of thousands, and the splitting (regexes per chunk) is most of the tokenizer's cost.
        # The cache holds exactly what the splitting would return, so its size never changes the tokens.
        self._tokenizer.max_cache_size = _TOKENIZER_CACHE
        abbreviations = _read_list("legal_abbreviations.txt")
        for abbr in abbreviations:
            self._tokenizer.add_special_case(abbr, [{ORTH: abbr}])
        # "§§" reads as one citation start; the default tokenizer would split it in two
        self._tokenizer.add_special_case("§§", [{ORTH: "§§"}])
        self._abbreviations = frozenset(abbreviations)
        exceptions = set(_read_list("stopword_exceptions.txt"))
        self._stopwords = frozenset(
            (set(self._nlp.Defaults.stop_words) - exceptions) | set(_read_list("legal_stopwords.txt"))
        )
        self._blocked_heads = frozenset(_read_list("compound_head_blocklist.txt"))
        self._lex = _lexicon()
        self._simplemma = None
        if config.lemmatizer == "simplemma":
            import simplemma

            self._simplemma = simplemma
        self._memo: dict[str, _Entry] = {}
        #: orth hash -> tokens (grouped: the one group string), only for words that do not look at neighbours
        self._hash_memo: dict[int, tuple[str, ...]] = {}
        self._group_memo: dict[int, tuple[str, ...]] = {}
        self._strings = self._nlp.vocab.strings
        self._split_memo: dict[str, _Split | None] = {}
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

    def token_spans(self, text: str) -> list[TokenSpan]:
        """Surface stretches of ``text`` with the tokens each produced (stretches producing none left out)."""
        doc = self._tokenize(text)
        words = [t.text for t in doc]
        starts = [t.idx for t in doc]
        spans: list[TokenSpan] = []
        i, n = 0, len(words)
        while i < n:
            j, toks = self._step(words, i)
            if toks:
                start = starts[i]
                end = starts[j - 1] + len(words[j - 1])
                spans.append(TokenSpan(start, end, text[start:end], toks))
            i = j
        return spans

    def pipe_spans(self, texts: Iterable[str]) -> Iterator[list[TokenSpan]]:
        """``token_spans`` of many texts, in order (same result; ``token_spans`` stays the plain reference the tests
        compare against): known words are answered from the hash memo and offsets found without Token objects,
        which makes it fast enough for every document of a corpus."""
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
                        self._charge(_ENTRY_BYTES)
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
        """spaCy's tokenization, with runs of more than ``MAX_CHUNK_CHARS`` non-space characters cut into pieces
        tokenized one by one (the cost of a run grows with the square of its length); offsets stay the text's."""
        if _LONG_CHUNK.search(text) is None:
            return self._tokenizer(text)
        pieces: list[str] = []
        start = 0
        for run in _LONG_CHUNK.finditer(text):
            if run.start() > start:
                pieces.append(text[start:run.start()])
            end = run.end()
            pieces += [text[i:min(i + MAX_CHUNK_CHARS, end)] for i in range(run.start(), end, MAX_CHUNK_CHARS)]
            start = run.end()
        if start < len(text):
            pieces.append(text[start:])
        return Doc.from_docs([self._tokenizer(p) for p in pieces], ensure_whitespace=False)

    def _tokens_of(self, doc: Doc, grouped: bool = False) -> list[str]:
        # keyed by the tokenizer's orth hashes: reading them as one array avoids creating a Token object and a
        # str per token, which costs more than everything else here. Words that need their neighbours (citations,
        # markers) are never in the hash memos, so a text without them and without new words is one C-level
        # map + chain; strings are made only for the few positions the slow path looks at.
        memo = self._group_memo if grouped else self._hash_memo
        hashes: list[int] = doc.to_array(ORTH_ATTR).tolist()
        entries = list(map(memo.get, hashes))
        if None not in entries:
            return list(chain.from_iterable(entries))  # type: ignore[arg-type]
        return self._tokens_slow(hashes, entries, memo, grouped)

    def _tokens_slow(self, hashes: list[int], entries: list[tuple[str, ...] | None],
                     memo: dict[int, tuple[str, ...]], grouped: bool) -> list[str]:
        """The token loop from the first position the hash memo does not answer."""
        out: list[str] = []
        words = _Words(hashes, self._strings)
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
            self._charge(_ENTRY_BYTES + (_token_bytes(value) if grouped else 0))
            memo[hashes[j]] = value
            out += value
            i = j + 1

    def _step(self, words: Sequence[str], i: int) -> tuple[int, tuple[str, ...]]:
        """Process the unit starting at ``words[i]``: returns the next index and the tokens produced."""
        entry = self._entry(words[i])
        if entry is _CITE:
            cited = self._citation(words, i)
            if cited is not None:
                return cited
            return i + 1, self._word(words[i].lstrip("§")) if words[i][0] == "§" else self._word(words[i])
        if entry is _MARK:
            if i + 1 < len(words) and self._is_part_number(words[i + 1]):
                return self._skip_part_list(words, i + 2), ()
            return i + 1, self._word(words[i])
        return i + 1, entry  # type: ignore[return-value]

    def _entry(self, word: str) -> _Entry:
        memo = self._memo
        entry = memo.get(word)
        if entry is None:
            if word[:1] == "§" or (self.config.citations and word in _ARTICLE_WORDS):
                entry = _CITE if self.config.citations else self._word(word.lstrip("§"))
            elif word in _MARKERS:
                entry = _MARK
            else:
                entry = self._word(word)
            self._charge(_ENTRY_BYTES + _STR_BYTES + len(word)
                         + (_token_bytes(entry) if isinstance(entry, tuple) else 0))
            memo[word] = entry
        return entry

    def _charge(self, nbytes: int) -> None:
        """Account for a memo entry about to be added; all memos are emptied first if it would pass the budget."""
        if self._memo_bytes + nbytes > _memo_budget[0]:
            self._memo.clear()
            self._hash_memo.clear()
            self._group_memo.clear()
            self._split_memo.clear()
            self._memo_bytes = 0
        self._memo_bytes += nbytes

    # ------------------------------------------------------------------ citations

    @staticmethod
    def _is_part_number(word: str) -> bool:
        # "2", "2a", a letter ("lit. f", "Buchst. a") or a roman numeral ("Alt. II")
        return bool(_SECTION_NUMBER.fullmatch(word) or (len(word) == 1 and word.isalpha())
                    or (word.isupper() and _ROMAN.fullmatch(word)))

    def _skip_part_list(self, words: Sequence[str], j: int) -> int:
        """Skip "und 2", ", 3" continuations after a marker's number."""
        n = len(words)
        while j + 1 < n and words[j] in _LIST_WORDS and self._is_part_number(words[j + 1]) \
                and not _LAW.fullmatch(words[j + 1]):
            j += 2
        return j

    def _citation(self, words: Sequence[str], i: int) -> tuple[int, tuple[str, ...]] | None:
        """Parse "§ 573 Abs. 2 BGB", "§§ 573, 574 BGB", "§573b", "Art. 1 GG"; None if it is no citation."""
        n = len(words)
        first = words[i]
        numbers: list[str] = []
        if first[0] == "§":
            prefix = "§"
            rest = first.lstrip("§")
            j = i + 1
            while rest == "" and j < n and words[j] == "§":  # "§ §" from text that spaced the double sign
                j += 1
            if rest:
                if not _SECTION_NUMBER.fullmatch(rest):
                    return None
                numbers.append(rest)
        else:
            prefix = "art"
            j = i + 1
            if first in ("Art", "art.") and j < n and words[j] == ".":
                j += 1
        if not numbers:
            if j < n and _SECTION_NUMBER.fullmatch(words[j]):
                numbers.append(words[j])
                j += 1
            elif prefix == "§":
                # a run of bare signs without a number: each sign of it would fail here the same way and give no
                # tokens, so the run is skipped at once (stepping sign by sign rescanned the run: quadratic)
                return j, ()
            else:
                return None
        law = ""
        while j < n:
            w = words[j]
            if w in _MARKERS and j + 1 < n and self._is_part_number(words[j + 1]):
                j = self._skip_part_list(words, j + 2)
            elif w in _FOLLOWING:
                j += 1
            elif w in _LIST_WORDS and j + 1 < n and _SECTION_NUMBER.fullmatch(words[j + 1]):
                numbers.append(words[j + 1])
                j += 2
            elif w in _LIST_WORDS and j + 2 < n and words[j + 1][:1] == "§" \
                    and _SECTION_NUMBER.fullmatch(words[j + 2]) and prefix == "§":
                # "§ 573 und § 574 BGB": one law for both
                numbers.append(words[j + 2])
                j += 3
            else:
                if self._is_law(w):
                    law = w.lower()
                    j += 1
                    if law == "sgb" and j < n and words[j].isupper() and _ROMAN.fullmatch(words[j]):
                        law += words[j].lower()  # "SGB V" -> "sgbv"
                        j += 1
                break
        toks: list[str] = []
        for num in numbers:
            tok = f"{prefix}{num}"
            toks.append(tok)
            if law:
                toks.append(f"{tok}@{law}")
        return j, tuple(dict.fromkeys(toks))

    def _is_law(self, word: str) -> bool:
        if word in self._abbreviations or not _LAW.fullmatch(word):
            return False
        return sum(c.isupper() for c in word) >= 2

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
            split = self._decompose(low)
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

    # ------------------------------------------------------------------ compounds

    def _decompose(self, low: str) -> _Split | None:
        """Split an unknown lowercase compound: (compound lemma, head lemma, parts) or None.

        Bounded by design: words longer than ``MAX_COMPOUND_CHARS`` are not split, and the splitting of a word
        that is not memoised yet runs on an explicit stack of its prefixes, never by recursion over the input.
        """
        memo = self._split_memo
        if low in memo:
            return memo[low]
        if not self._splittable(low):
            return self._remember(low, None)
        # every sub-split a compound asks for is of one of its own prefixes (its modifier, minus a linking
        # element); each prefix is split once, so the work is at most a few scans per prefix
        stack = [len(low)]
        while stack:
            prefix = low[: stack[-1]]
            outcome = self._split(prefix)
            if isinstance(outcome, int):
                stack.append(outcome)
                continue
            self._remember(prefix, outcome)
            stack.pop()
        return memo[low]

    def _splittable(self, low: str) -> bool:
        return 2 * MIN_COMPOUND_PART <= len(low) <= MAX_COMPOUND_CHARS and low not in self._lex.known_lemmas

    def _remember(self, low: str, result: _Split | None) -> _Split | None:
        self._charge(_ENTRY_BYTES + _STR_BYTES + len(low) + (_token_bytes(result[2]) + 2 * _STR_BYTES if result else 0))
        self._split_memo[low] = result
        return result

    def _split(self, low: str) -> _Split | int | None:
        """One scan for ``low``'s split: the split, None, or the length of a prefix whose split it needs first."""
        nouns = self._lex.nouns
        # heads longer than the longest noun cannot be nouns; the scan is at most that long whatever the input
        first = max(MIN_COMPOUND_PART, len(low) - self._lex.max_noun_chars)
        # the longest known noun head wins: it carries the meaning (Miet|vertrags|kündigung -> kündigung)
        for cut in range(first, len(low) - MIN_COMPOUND_PART + 1):
            head = low[cut:]
            head_lemma = nouns.get(head)
            if head_lemma is None or head_lemma in self._blocked_heads or head in self._blocked_heads:
                continue
            modifier = self._modifier(low[:cut])
            if modifier is None:
                continue
            if isinstance(modifier, int):
                return modifier
            mod_lemma, mod_parts = modifier
            # a head is a noun lemma and every lemma is a known word, so heads are never split further
            compound = low[:cut] + head_lemma
            parts = tuple(p for p in dict.fromkeys((mod_lemma, *mod_parts, head_lemma)) if p != compound)
            if len(parts) > MAX_COMPOUND_PARTS:
                continue
            return compound, head_lemma, parts
        return None

    def _modifier(self, mod: str) -> tuple[str, tuple[str, ...]] | int | None:
        """The lemma of a compound's first part, allowing linking elements and a dropped final -e; or the length
        of the prefix whose split is needed to know it."""
        words, nouns, stop = self._lex.words, self._lex.nouns, self._stopwords
        candidates = [mod]
        candidates += [mod[: -len(le)] for le in _LINKING_ELEMENTS if mod.endswith(le)]
        for cand in candidates:
            if len(cand) < MIN_COMPOUND_PART:
                continue
            lemma = words.get(cand)
            if lemma is not None and lemma not in stop and cand not in stop:
                return lemma, ()
        for cand in candidates:
            if len(cand) >= MIN_COMPOUND_PART - 1 and cand + "e" in nouns:  # Miet|vertrag -> Miete
                return nouns[cand + "e"], ()
        memo = self._split_memo
        for cand in candidates:
            # three-part compounds whose first part is itself an unknown compound
            if len(cand) >= 2 * MIN_COMPOUND_PART:
                if cand not in memo:
                    if self._splittable(cand):
                        return len(cand)
                    continue
                sub = memo[cand]
                if sub is not None:
                    return sub[0], sub[2]
        return None

    # ------------------------------------------------------------------ parallel

    def batch(self, texts: list[str], grouped: bool = False) -> list[list[str]]:
        """Tokens of each text (grouped as ``pipe_grouped`` if asked), in this process whatever ``n_process`` says:
        for callers that run their own worker pool."""
        tokenize = self._tokenize
        return [self._tokens_of(tokenize(text), grouped) for text in texts]

    def _pipe_parallel(self, texts: Iterable[str], grouped: bool = False) -> Iterator[list[str]]:
        """``n_process - 1`` worker processes plus this one; batches come back in input order."""
        it = iter(texts)
        batches = iter(lambda: list(islice(it, self.config.batch_size)), [])
        for tokens in ordered_map(
            batches,
            functools.partial(self.batch, grouped=grouped),
            functools.partial(_work, grouped=grouped),
            _unship,
            self.config.n_process,
            _init_worker,
            (self.config,),
        ):
            yield from tokens

    def _compute_fingerprint(self) -> str:
        # batch_size and n_process do not change the tokens, so they must not invalidate caches
        cfg = dataclasses.asdict(self.config)
        for irrelevant in ("batch_size", "n_process"):
            cfg.pop(irrelevant)
        payload = json.dumps(
            {"config": cfg, "rules": RULES_VERSION, "data": _data_digest(), "libs": _library_versions()},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


_worker: Preprocessor | None = None

#: a batch's tokens as they travel back from a worker: one string (see ``_ship``) or, failing that, the lists
_Shipped = str | list[list[str]]


def _init_worker(config: PreprocessConfig) -> None:
    global _worker
    _worker = Preprocessor(dataclasses.replace(config, n_process=1))


def _work(batch: list[str], grouped: bool = False) -> _Shipped:
    assert _worker is not None  # set by the pool initializer
    return _ship(_worker.batch(batch, grouped))


def _ship(results: list[list[str]]) -> _Shipped:
    """Tokens joined by " ", texts by newlines: one string pickles and unpickles far faster than the lists.

    Tokens never hold whitespace and are never empty (``min_token_chars`` >= 1); the separator count checks it,
    and a batch that breaks the rule travels as lists, so the round trip is exact either way.
    """
    joined = "\n".join(map(" ".join, results))
    tokens = sum(map(len, results))
    nonempty = len(results) - results.count([])
    if joined.count(" ") != tokens - nonempty or joined.count("\n") != len(results) - 1:
        return results
    return joined


def _unship(shipped: _Shipped) -> list[list[str]]:
    if isinstance(shipped, list):
        return shipped
    return [line.split(" ") if line else [] for line in shipped.split("\n")]


GROUP_SEP = "|"


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


def preprocess(texts: Iterable[str], config: PreprocessConfig) -> Iterator[list[str]]:
    """The preprocessing stage: tokens of each text, streamed in order."""
    return Preprocessor(config).pipe(texts)
