"""The package's own exceptions; the API and the CLI map them to HTTP and exit codes."""

from __future__ import annotations


class LegalSearchError(Exception):
    """Base class of every error legalsearch raises on purpose."""

    #: process exit code used by the CLI
    exit_code: int = 1


class ConfigError(LegalSearchError):
    """A configuration file or setting is invalid."""

    exit_code = 2


class CorpusError(LegalSearchError):
    """A corpus cannot be read at all (missing path, unknown format, nothing usable in it)."""

    exit_code = 3


class ArtifactError(LegalSearchError):
    """A model folder is missing, incomplete or damaged (hash or count mismatch)."""

    exit_code = 4


class NoModelError(ArtifactError):
    """No model has been trained or selected yet."""


class UnknownDocumentError(LegalSearchError):
    """None of the given document ids is in the model."""

    exit_code = 5

    def __init__(self, ids: list[str] | str) -> None:
        self.ids = [ids] if isinstance(ids, str) else list(ids)
        super().__init__(f"unknown document id(s): {', '.join(self.ids)}")


class UnknownTermError(LegalSearchError):
    """A term is not in the model's vocabulary."""

    exit_code = 5

    def __init__(self, term: str) -> None:
        self.term = term
        super().__init__(f"unknown term: {term!r} is not in the model's vocabulary")


class EmptyQueryError(LegalSearchError):
    """A query has no usable term after preprocessing (empty, stopwords or numbers only)."""

    exit_code = 6


class InvalidRequestError(LegalSearchError):
    """A request is well-formed but asks for something impossible (bad filter, bad range)."""

    exit_code = 2


class BusyError(LegalSearchError):
    """Another training run holds the lock on the models folder or on the token-cache entry."""

    exit_code = 7


class StorageError(LegalSearchError):
    """Writing or reading the models folder or the cache failed (disk full, no permission, read-only)."""

    exit_code = 8


class CurrentMovedError(LegalSearchError):
    """The new model was kept, but ``current`` was not moved: it no longer named what it named at the start."""

    exit_code = 9


class BudgetExceededError(LegalSearchError):
    """A request used up its time budget before it was answered (see ``legalsearch.budget``)."""

    exit_code = 10
