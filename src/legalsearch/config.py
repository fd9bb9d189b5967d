"""Typed configuration: one frozen dataclass per pipeline stage, loaded from TOML.

Every setting is declared once here, with its default and its help text (``setting(...)``); the tables of
docs/configuration.md are generated from and tested against these declarations.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from legalsearch.errors import ConfigError

T = TypeVar("T")

#: every stage section: frozen, unknown keys refused, no coercion ("5" is no integer), no NaN or infinity
_STAGE = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None) -> Any:
    """Declare one setting with its default, its help text and, for numbers, the range a config may set."""
    return Field(default=default, description=help, ge=low, le=high)


_MIB = 1 << 20


@dataclass(frozen=True, config=_STAGE)
class CorpusConfig:
    """Ingestion of the corpora."""

    min_text_chars: int = setting(
        20, "Documents whose text is shorter than this are skipped as empty.", low=0, high=1_000_000,
    )
    index_annexes: bool = setting(
        True, "Index law headings that are not sections but carry text (Anlage, Anhang, Muster) as type 'annex'."
    )
    max_file_bytes: int = setting(
        64 * _MIB, "Largest law file or archive member read, in bytes (the federal archive's largest is 2.2 MB); a "
        "larger one is skipped and reported as 'file too large'.", low=1024, high=1 << 32,
    )
    max_line_bytes: int = setting(
        16 * _MIB, "Longest JSON Lines record or extra-text line, in bytes; a longer one is skipped unread and "
        "reported as 'line too long'.", low=1024, high=1 << 30,
    )
    max_uncompressed_bytes: int = setting(
        2048 * _MIB, "Most bytes one archive (.tar, .tar.gz) or gzipped file (.jsonl.gz, .txt.gz) may expand to "
        "(the federal archive: 175 MB); reading stops with an error beyond it, so a decompression bomb cannot fill "
        "memory or disk.", low=_MIB, high=1 << 40,
    )


@dataclass(frozen=True, config=_STAGE)
class PreprocessConfig:
    """German preprocessing (spaCy tokenizer, lookup lemmas, legal abbreviations, citations)."""

    lemmatizer: Literal["spacy-lookup", "simplemma", "none"] = setting(
        "spacy-lookup", "Lemmatizer: spaCy's lookup table from spacy-lookups-data, simplemma, or none."
    )
    lowercase: bool = setting(True, "Lowercase every token after lemmatisation.")
    remove_stopwords: bool = setting(True, "Drop spaCy's German stopwords (and the project's legal ones).")
    numbers: Literal["drop", "keep"] = setting(
        "drop", "Bare numbers: drop them or keep them as tokens. Numbers inside citations are always kept."
    )
    citations: bool = setting(True, "Turn section citations ('§ 573 Abs. 2 BGB') into tokens such as '§573'.")
    split_compounds: bool = setting(
        True, "Add the parts of German compounds known to the vocabulary ('mietvertragskündigung' adds "
        "'mietvertrag', 'kündigung')."
    )
    min_token_chars: int = setting(2, "Shorter tokens are dropped.", low=1, high=100)
    batch_size: int = setting(2000, "Texts per batch handed to the tokenizer.", low=1, high=1_000_000)
    n_process: int = setting(
        2, "Processes of a training run: with 2 or more, preprocessing runs in worker processes beside the main "
        "one and the one-core stages that need only the documents and tokens (BM25 index, document store, "
        "citations, snippets) in a helper process beside the others; 1 runs everything in one process. Tokens "
        "and model files are the same either way; a corpus of one batch or less always runs in one process.",
        low=1, high=256,
    )


@dataclass(frozen=True, config=_STAGE)
class PhrasesConfig:
    """Multiword terms learned with gensim Phrases."""

    enabled: bool = setting(True, "Learn multiword terms ('ordentliche_kündigung') and use them as tokens.")
    min_count: int = setting(5, "A bigram must occur this often to become a phrase.", low=1, high=1_000_000)
    threshold: float = setting(0.5, "NPMI score a bigram needs to become a phrase (-1..1).", low=-1.0, high=1.0)
    max_phrases: int = setting(50000, "Keep at most this many phrases, best scored first.", low=0, high=10_000_000)


@dataclass(frozen=True, config=_STAGE)
class KeywordsConfig:
    """TF-IDF keyword extraction (scikit-learn)."""

    top_k: int = setting(20, "Keywords kept per document.", low=1, high=1000)
    min_df: int = setting(2, "A term must occur in this many documents to be a keyword.", low=1, high=1_000_000)
    max_df: float = setting(0.3, "Terms in more than this share of documents are no keywords.", low=0.0, high=1.0)
    sublinear_tf: bool = setting(True, "Use 1 + log(tf) instead of raw counts.")
    max_vocabulary: int = setting(
        200000, "Size cap of the corpus keyword vocabulary (most frequent kept).", low=1, high=100_000_000,
    )


@dataclass(frozen=True, config=_STAGE)
class Word2VecConfig:
    """word2vec training (gensim)."""

    vector_size: int = setting(200, "Dimensions of the word vectors.", low=4, high=4096)
    window: int = setting(5, "Context window on each side.", low=1, high=100)
    sg: bool = setting(
        False, "Skip-gram (true) or CBOW (false: several times faster to train; docs/benchmarks.md)."
    )
    epochs: int = setting(5, "Passes over the training text.", low=1, high=1000)
    min_count: int = setting(3, "Words seen fewer times are ignored.", low=1, high=1_000_000)
    negative: int = setting(10, "Negative samples per positive one.", low=0, high=100)
    sample: float = setting(1e-4, "Downsampling threshold for frequent words.", low=0.0, high=1.0)
    alpha: float = setting(0.025, "Initial learning rate.", low=0.0001, high=1.0)
    seed: int = setting(42, "Random seed; with workers = 1 training repeats exactly.", low=0, high=4_294_967_295)
    workers: int = setting(2, "Training threads.", low=1, high=256)
    intersection_models: int = setting(
        0, "Extra models trained with seeds seed+1 .. seed+n for the intersection method of related-term "
        "suggestions (neighbours all models agree on); 0 turns it off.", low=0, high=16
    )


@dataclass(frozen=True, config=_STAGE)
class DocVectorsConfig:
    """Document vectors from word vectors."""

    weighting: Literal["tfidf", "keywords", "mean"] = setting(
        "tfidf", "Average term vectors weighted by TF-IDF, only over the keywords, or unweighted."
    )
    empty: Literal["zero"] = setting(
        "zero", "Documents without any known term get a zero vector: never recommended by vector, still "
        "found lexically."
    )


@dataclass(frozen=True, config=_STAGE)
class IndexConfig:
    """FAISS index over normalised document vectors (inner product = cosine)."""

    type: Literal["auto", "flat", "hnsw", "ivfpq"] = setting(
        "auto", "Index type; auto picks flat (exact) up to exact_max_docs, HNSW above."
    )
    exact_max_docs: int = setting(
        50000, "Largest collection that auto indexes exactly (flat); HNSW above.", low=0, high=1_000_000_000,
    )
    hnsw_m: int = setting(32, "HNSW graph degree.", low=4, high=256)
    hnsw_ef_construction: int = setting(80, "HNSW build-time search depth.", low=8, high=4096)
    hnsw_ef_search: int = setting(128, "HNSW query-time search depth.", low=1, high=4096)
    precomputed_neighbours: int = setting(
        64, "Nearest documents stored per document at training, so that /recommend for one seed document reads "
        "them instead of searching the index; 0 stores none.", low=0, high=1000
    )
    ivf_nlist: int = setting(0, "IVF lists; 0 means 4 * sqrt(n).", low=0, high=1_000_000)
    ivf_nprobe: int = setting(16, "IVF lists searched per query.", low=1, high=1_000_000)
    pq_m: int = setting(0, "Product-quantisation subvectors; 0 means vector_size / 4.", low=0, high=1024)


@dataclass(frozen=True, config=_STAGE)
class LexicalConfig:
    """The project's BM25 over its own German tokens (bm25s)."""

    k1: float = setting(2.0, "BM25 term-frequency saturation.", low=0.0, high=10.0)
    b: float = setting(0.9, "BM25 length normalisation.", low=0.0, high=1.0)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = setting("lucene", "BM25 variant.")
    title_weight: int = setting(2, "How many times the section title is repeated in the indexed text.", low=0, high=10)
    heading_path: bool = setting(True, "Index the heading path (Buch / Abschnitt / Titel) with the section.")
    profiles: bool = setting(
        True, "Lexical profile per document type: statutes and annexes keep k1 and b above and [search] "
        "query_term_weighting (chosen on lay questions against statutes); every other type (decisions, articles) "
        "gets the other_* parameters, or what training tuned for it on feedback questions."
    )
    other_k1: float = setting(1.5, "BM25 k1 of documents other than statutes and annexes (plain BM25).",
                              low=0.0, high=10.0)
    other_b: float = setting(0.75, "BM25 b of documents other than statutes and annexes (plain BM25).",
                             low=0.0, high=1.0)
    other_query_term_weighting: Literal["count", "once", "sqrt"] = setting(
        "count", "Query term weighting of documents other than statutes and annexes (plain BM25: count)."
    )
    profile_min_questions: int = setting(
        20, "Feedback questions about one document type (most of their relevant documents of that type) needed "
        "to tune its profile (k1, b, query term weighting) on them; with fewer it keeps its defaults.",
        low=1, high=1_000_000,
    )


@dataclass(frozen=True, config=_STAGE)
class SearchConfig:
    """Hybrid search: query expansion and score fusion."""

    expansion_terms: int = setting(
        5, "Related terms added per query term from the word2vec vocabulary.", low=0, high=100,
    )
    expansion_min_similarity: float = setting(
        0.6, "Expanded terms need at least this cosine similarity.", low=-1.0, high=1.0,
    )
    expansion_weight: float = setting(0.1, "Weight of an expanded term relative to a query term.", low=0.0, high=10.0)
    expansion_precomputed: int = setting(
        0, "Most frequent words whose expansion neighbours are computed at training time (0: every word); "
        "rarer query words are computed on first use and memoised.", low=0, high=100_000_000
    )
    expansion_max_df: float = setting(
        0.2, "Expanded terms found in more than this share of documents are not added to the lexical query.",
        low=0.0, high=1.0
    )
    query_term_weighting: Literal["count", "once", "sqrt"] = setting(
        "sqrt", "Lexical weight of a query term repeated n times: n, 1, or sqrt(n) (long questions repeat "
        "their topic words)."
    )
    lexical_weight: float = setting(0.8, "Weight of the z-normalised lexical score in the fusion.", low=0.0, high=100.0)
    embedding_weight: float = setting(
        0.2, "Weight of the z-normalised embedding score in the fusion.", low=0.0, high=100.0,
    )
    candidates: int = setting(
        200, "Candidates taken from the lexical ranking before fusion; more cost time (measured choice: "
        "docs/evaluation.md).", low=1, high=100_000
    )
    embedding_candidates: int = setting(
        100, "Candidates taken from the embedding index before fusion (at least k, at most `candidates`); more cost "
        "time (measured choice: docs/evaluation.md).",
        low=1, high=100_000
    )
    snippet_chars: int = setting(240, "Length of result snippets.", low=20, high=10_000)

    @property
    def expansion_width(self) -> int:
        """Neighbours per word in the expansion table: ``expansion_terms`` and one more for the word itself,
        which is its own nearest neighbour (the expansion skips it)."""
        return self.expansion_terms + 1


@dataclass(frozen=True, config=_STAGE)
class CitationsConfig:
    """The citation graph: citations found in every document and resolved to the corpus's sections."""

    enabled: bool = setting(True, "Build the citation graph (cites / cited-by) at training time.")
    max_range_targets: int = setting(
        500, "A range citation ('§§ 1 bis 10000 BGB') resolves to at most this many sections; the rest are "
        "dropped and the range is counted as capped.", low=1, high=100_000
    )


@dataclass(frozen=True, config=_STAGE)
class FeedbackConfig:
    """What training learns from feedback (``--feedback``: labelled questions, click logs) for /search."""

    neighbours: int = setting(
        30, "Feedback questions most similar to a query that vote for their documents (weighted by similarity).",
        low=1, high=1000,
    )
    word2vec_weight: float = setting(
        0.0, "Share of the word2vec cosine in the similarity of a query to a feedback question; the rest is BM25 "
        "over the feedback questions' tokens, scaled by the best question's score.", low=0.0, high=1.0,
    )
    k1: float = setting(1.2, "BM25 term-frequency saturation of the index over the feedback questions.",
                        low=0.0, high=10.0)
    b: float = setting(0.75, "BM25 length normalisation of the index over the feedback questions.",
                       low=0.0, high=1.0)
    prior_candidates: int = setting(
        50, "Most often relevant or clicked documents (within the filters) added to every query's candidates.",
        low=0, high=10000,
    )
    association_terms: int = setting(
        5, "Legal keywords kept per lay word of the feedback questions (NPMI between a question's words and the "
        "keywords of its relevant documents); query expansion adds them before the word2vec neighbours and "
        "similar-terms lists them first. 0: none.", low=0, high=100,
    )
    association_min_count: int = setting(
        3, "Feedback questions a lay word and a keyword must share to be associated.", low=1, high=1_000_000,
    )
    association_min_npmi: float = setting(
        0.3, "Smallest NPMI of an association (0: independent, 1: always together).", low=-1.0, high=1.0,
    )
    association_weight: float = setting(
        0.3, "Lexical weight of an associated keyword per unit of NPMI, relative to a query term.",
        low=0.0, high=10.0,
    )
    fit_questions: int = setting(
        2000, "Most feedback questions the fusion weights are fitted on (each ranked with the votes of all the "
        "others: leave-one-out); a larger feedback set is sampled by sha1 of the question key.", low=1,
        high=1_000_000,
    )


@dataclass(frozen=True, config=_STAGE)
class TrainConfig:
    """All stages; each stage receives only its own part."""

    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    phrases: PhrasesConfig = Field(default_factory=PhrasesConfig)
    keywords: KeywordsConfig = Field(default_factory=KeywordsConfig)
    word2vec: Word2VecConfig = Field(default_factory=Word2VecConfig)
    docvectors: DocVectorsConfig = Field(default_factory=DocVectorsConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    lexical: LexicalConfig = Field(default_factory=LexicalConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    citations: CitationsConfig = Field(default_factory=CitationsConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The full config as plain data, as written to a model's manifest."""
        return dataclasses.asdict(self)




def _stage_types() -> dict[str, type]:
    return {name: info.annotation for name, info in _fields(TrainConfig).items()}  # type: ignore[misc]


def _fields(cls: type) -> dict[str, FieldInfo]:
    """A pydantic dataclass's declared settings, by name."""
    return dict(cls.__pydantic_fields__)  # type: ignore[attr-defined]


_MESSAGES = {
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "float_type": "must be a finite number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "unexpected_keyword_argument": "unknown setting",
}


def _message(cls: type, error: Any) -> str:
    """One pydantic error as the one-line reason a user reads: ``[section] key = value: must be ...``."""
    kind, name = error["type"], str(error["loc"][0]) if error["loc"] else "?"
    if kind in ("literal_error",):
        return f"must be one of {error['ctx']['expected']}"
    if kind in ("greater_than_equal", "less_than_equal"):
        low, high = _bounds(cls, name)
        return f"must be between {low} and {high}"
    return _MESSAGES.get(kind, error["msg"])


def _build_stage(section: str, cls: type[T], values: Any) -> T:
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table")
    try:
        return cls(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "?"
        raise ConfigError(f"[{section}] {name} = {error.get('input')!r}: {_message(cls, error)}") from None


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a TrainConfig from plain data (a parsed TOML file or a manifest's ``config``)."""
    stages = _stage_types()
    unknown = sorted(set(data) - set(stages))
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(unknown)}; known: {', '.join(stages)}")
    return TrainConfig(**{name: _build_stage(name, cls, data.get(name, {})) for name, cls in stages.items()})


def load_config(path: str | Path | None) -> TrainConfig:
    """Load a TOML config file; ``None`` gives the defaults."""
    if path is None:
        return TrainConfig()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {p}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    return config_from_dict(data)


def _bounds(cls: type, name: str) -> tuple[float | None, float | None]:
    """The range declared with a setting (``setting(low=, high=)``)."""
    low = high = None
    for item in _fields(cls)[name].metadata:
        low = getattr(item, "ge", low)
        high = getattr(item, "le", high)
    return low, high


def describe_settings() -> list[tuple[str, str, Any, str]]:
    """Every training setting as (section, name, default, help), for docs and ``--help``."""
    rows = []
    for section, cls in _stage_types().items():
        for name, info in _fields(cls).items():
            help_text = info.description or ""
            low, high = _bounds(cls, name)
            if low is not None or high is not None:
                help_text += f" Range: {_number(low)} to {_number(high)}."
            rows.append((section, name, info.default, help_text))
    return rows


def _number(value: float | None) -> str:
    if value is None:
        return "unbounded"
    return f"{value:,}" if isinstance(value, int) else str(value)


class ServiceSettings(BaseSettings):
    """Settings of the HTTP service and the CLI, read from ``LEGALSEARCH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="LEGALSEARCH_", env_file=None, frozen=True)

    models_dir: Path = Field(Path("models"), description="Folder of model versions; 'current' names the one in use.")
    api_keys: list[str] = Field(
        default_factory=list,
        description="Accepted X-API-Key values (JSON list) for the search routes. Empty: no key needed. /livez "
        "and /readyz stay open.",
    )
    admin_keys: list[str] = Field(
        default_factory=list,
        description="X-API-Key values (JSON list) for /admin/* (and every search route); search keys get 403 "
        "there. /admin/* is open only while neither list holds a key. Only an admin key sees the corpus paths "
        "in /models/current.",
    )
    max_body_bytes: int = Field(1_048_576, description="Largest request body accepted; larger ones get 413.")
    max_text_chars: int = Field(20_000, description="Longest text or query accepted; longer ones get 413.")
    watch_interval_s: float = Field(
        2.0, description="How often the server checks whether models/current moved; 0 turns watching off."
    )
    reload_wait_s: float = Field(
        60.0, ge=0.0, le=600.0,
        description="How long POST /admin/reload waits for the other workers (--workers N) to report their "
        "reload before it answers, naming those still pending.",
    )
    faiss_threads: int = Field(1, description="FAISS OpenMP threads per worker, so workers do not fight over cores.")
    blas_threads: int = Field(
        1, description="BLAS/OpenMP threads of numpy and scikit-learn per worker (threadpoolctl); 0 leaves them as is."
    )
    log_level: str = Field("info", description="Log level of the service.")
    log_json: bool = Field(
        False,
        description="Write the service's log lines as JSON objects, one per line (time, level, logger, message, "
        "request_id, and method, path, status, ms for request lines) instead of text.",
    )
    request_log: bool = Field(
        False,
        description="One log line per HTTP request on the legalsearch.access logger: method, path, status, "
        "milliseconds and request id (JSON with log_json). uvicorn's own text access log is separate "
        "(legalsearch serve --no-access-log turns it off).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins browsers may call the API from (JSON list, e.g. ["https://app.example"]; ["*"] for '
        "any), answered with CORS headers by Starlette's CORSMiddleware. Empty (default): no CORS headers, so "
        "browsers allow only same-origin pages.",
    )
    fast_path: bool = Field(
        True,
        description="POST /recommend, GET /search and GET /suggest read their requests themselves instead of through "
        "FastAPI's dependency solving (same answers, less CPU; api.direct); false: FastAPI's handler reads every "
        "request.",
    )
    train_lock_timeout_s: float = Field(
        0.0, ge=0, le=86_400,
        description="How long `legalsearch train` waits for another run's lock on the models folder or on its "
        "token-cache entry (seconds, 0 to 86,400); 0: exit at once with code 7 and a one-line reason.",
    )
    cache_max_age_days: float = Field(
        30.0, ge=0, le=3_650,
        description="`legalsearch gc` removes token-cache entries that no kept model uses and no run used for more "
        "than this many days (0 to 3,650; 0: every unused entry).",
    )
    max_json_depth: int = Field(
        8, ge=3, le=64,
        description="Deepest nesting of arrays and objects accepted in a JSON body or the filters parameter (filters "
        "need 3 in a body); deeper ones get 422 before any parser sees them.",
    )
    request_budget_s: float = Field(
        5.0, ge=0, le=600,
        description="CPU-bound work one request may take: ranking checks the clock between its steps and answers 503 "
        "past it, so no request holds a worker longer; 0 turns the budget off.",
    )
    body_timeout_s: float = Field(
        15.0, gt=0, le=600,
        description="Time a client has to send a whole request body; a slower one gets 408 and the connection closes.",
    )
    head_timeout_s: float = Field(
        10.0, gt=0, le=600,
        description="Time a client has to send a request's line and headers once it connects or starts the next "
        "request; a slower one gets 408 (an idle new connection is closed).",
    )
    keep_alive_s: float = Field(
        5.0, gt=0, le=600, description="An idle kept-alive connection is closed after this many seconds."
    )
    max_url_bytes: int = Field(
        65_535, ge=1024, le=65_535,
        description="Longest request URL accepted (at most 65,535: httptools parses no longer); longer ones get 414.",
    )
    max_header_bytes: int = Field(
        32_768, ge=1024, le=1_048_576,
        description="Largest total size of the request headers accepted; larger ones get 431.",
    )
    limit_concurrency: int = Field(
        256, ge=0, le=100_000,
        description="Open connections or requests in flight per worker beyond which uvicorn answers 503; 0: no limit.",
    )
    memo_mb: int = Field(
        64, ge=1, le=65_536,
        description="Memory per worker for the memos of query preprocessing (word -> tokens); a full memo is emptied "
        "and refilled, so a flood of new words cannot grow a worker.",
    )
    worker_max_requests: int = Field(
        0, ge=0, le=1_000_000_000,
        description="With --workers >= 2: a worker is replaced after serving this many requests (a new one starts, "
        "then the old one finishes its requests and exits); 0: never.",
    )
    worker_max_memory_mb: int = Field(
        4096, ge=0, le=1_048_576,
        description="With --workers >= 2: a worker whose private resident memory (RSS without the memory-mapped model "
        "files) passes this is replaced the same way; 0: never.",
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry instrumentation (traces, metrics and logs to the globally "
        "configured providers). Off by default: with no provider configured it records nothing but still costs "
        "time per request. Prometheus metrics (/metrics) do not depend on it.",
    )


def settings_markdown() -> str:
    """The configuration tables of docs/configuration.md, generated from the declarations above (tested against it)."""
    lines = ["| section | key | default | meaning |", "|---|---|---|---|"]
    for section, name, default, help_text in describe_settings():
        shown = str(default).lower() if isinstance(default, bool) else repr(default).replace("'", '"')
        lines.append(f"| `[{section}]` | `{name}` | `{shown}` | {help_text} |")
    lines += ["", "| environment variable | default | meaning |", "|---|---|---|"]
    for name, info in ServiceSettings.model_fields.items():
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        lines.append(f"| `LEGALSEARCH_{name.upper()}` | `{default}` | {info.description} |")
    return "\n".join(lines)
