"""spaCy's blank German tokenizer with the legal abbreviations, the rule data files and the lemma table."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from typing import Final, cast

import spacy
from catalogue import RegistryError
from spacy.language import Language
from spacy.symbols import ORTH
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from legalsearch.errors import ConfigError

logger = logging.getLogger(__name__)

DATA_FILES: Final = (
    "legal_abbreviations.txt",
    "legal_stopwords.txt",
    "stopword_exceptions.txt",
    "compound_head_blocklist.txt",
)

#: distinct whitespace-separated chunks whose tokenization spaCy keeps (it stops adding, never evicts, past this)
_TOKENIZER_CACHE: Final = 1_000_000

#: longest run of non-space characters handed to spaCy's tokenizer in one piece: it strips a run's prefixes and
#: suffixes one at a time, each time searching the rest, so a run costs the square of its length ("§" * 1,000 took
#: 150 ms, * 20,000 a minute); in pieces of 128 the worst 20,000 characters take ~0.4 s. Runs as long are rare in
#: real text (in 700,000 lines of court sentences and laws: 8 URLs and image links of 128-440 characters).
MAX_CHUNK_CHARS: Final = 128
_LONG_CHUNK = re.compile(rf"\S{{{MAX_CHUNK_CHARS + 1},}}")


@dataclass(frozen=True, slots=True)
class Lexicon:
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


def read_list(name: str) -> list[str]:
    """The entries of a data file: one a line, blank lines and ``#`` comments left out."""
    text = (resources.files("legalsearch") / "data" / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@lru_cache(maxsize=1)
def data_digest() -> str:
    """Hash of the rule data files (part of the fingerprint)."""
    h = hashlib.sha256()
    for name in DATA_FILES:
        h.update(name.encode())
        h.update((resources.files("legalsearch") / "data" / name).read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The German lemma table of spacy-lookups-data and its noun and word dictionaries."""
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
    return Lexicon(lemmas=lemmas, nouns=nouns, words=words, known_lemmas=known,
                   max_noun_chars=max(map(len, nouns), default=0))


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose rules shape the tokens (part of the fingerprint)."""
    out = {}
    for dist in ("spacy", "spacy-lookups-data", "simplemma"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def blank_german(abbreviations: list[str]) -> tuple[Language, Tokenizer]:
    """``spacy.blank("de")`` with the abbreviations (and "§§") as special cases; no downloads."""
    nlp = spacy.blank("de")
    # every new word becomes a spaCy lexeme, and by default spaCy computes its shape, prefix, suffix, stop and
    # number flags then: a third of the cost of a word's first sighting. Nothing here reads them (only ORTH,
    # text and offsets), and the tokenizer's rules do not depend on them.
    nlp.vocab.lex_attr_getters = {}  # type: ignore[attr-defined]  # missing from the stub, exists
    tokenizer = cast(Tokenizer, nlp.tokenizer)
    # spaCy caches the affix splitting of only the first 10,000 distinct whitespace-separated chunks; a legal
    # corpus has hundreds of thousands, and the splitting (regexes per chunk) is most of the tokenizer's cost.
    # The cache holds exactly what the splitting would return, so its size never changes the tokens.
    tokenizer.max_cache_size = _TOKENIZER_CACHE
    for abbr in abbreviations:
        tokenizer.add_special_case(abbr, [{ORTH: abbr}])
    # "§§" reads as one citation start; the default tokenizer would split it in two
    tokenizer.add_special_case("§§", [{ORTH: "§§"}])
    return nlp, tokenizer


_SPACE_RUN = re.compile(r"\s+")


def spans(text: str) -> Iterator[str]:
    """The stretches spaCy's tokenizer tokenizes one by one, in order: each run of non-space characters, and each
    run of whitespace less the one ``" "`` that ends the word before it (a lone space between words is no
    stretch). spaCy's tokens of a text are its tokens of these stretches, each tokenized alone, one after the
    other (``Tokenizer._tokenize_affixes``); runs longer than ``MAX_CHUNK_CHARS`` are not handled here."""
    start = 0
    for run in _SPACE_RUN.finditer(text):
        begin, end = run.span()
        if begin > start:
            yield text[start:begin]
        if begin > 0 and text[begin] == " ":
            begin += 1
        if begin < end:
            yield text[begin:end]
        start = end
    if start < len(text):
        yield text[start:]


def has_long_chunk(text: str) -> bool:
    """Whether ``tokenize`` cuts a run of ``text`` into pieces."""
    return _LONG_CHUNK.search(text) is not None


def tokenize(tokenizer: Tokenizer, text: str) -> Doc:
    """spaCy's tokenization, with runs of more than ``MAX_CHUNK_CHARS`` non-space characters cut into pieces
    tokenized one by one (the cost of a run grows with the square of its length); offsets stay the text's."""
    if _LONG_CHUNK.search(text) is None:
        return tokenizer(text)
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
    return Doc.from_docs([tokenizer(p) for p in pieces], ensure_whitespace=False)
