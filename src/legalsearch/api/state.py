"""The served model and its hot swap: load and verify off the event loop, publish by one assignment."""

from __future__ import annotations

import gc
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from legalsearch.engine import Model
from legalsearch.errors import LegalSearchError, NoModelError
from legalsearch.model import (
    CURRENT_NAME,
    CURRENT_RECORD,
    MANIFEST_NAME,
    current_version,
    list_models,
    mark_serving,
    read_current_record,
    unmark_serving,
)
from legalsearch.ranking import warm_up

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadFailure:
    """A model version that failed to load or verify, and why."""

    version: str | None
    reason: str
    at: str
    #: mtime of the refused manifest: the watcher retries a refused version only when it changed
    stamp: float | None = None


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did."""

    changed: bool
    model: str | None
    previous: str | None
    #: a new version was tried and refused
    refused: bool = False


class ModelHolder:
    """Holds the served model; requests read ``.model`` once, reloads replace it atomically.

    The old model is never closed explicitly: an in-flight request may still read its memory maps, and
    CPython releases them (and the file handles) as soon as the last reference goes.
    """

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self.model: Model | None = None
        #: the folder name ``current`` pointed at when the served model was loaded (its manifest's version
        #: normally, but a copied folder keeps the version it was trained as)
        self.served_name: str | None = None
        self.last_failure: ReloadFailure | None = None
        #: why the served model is not the one ``current`` names (None while it is)
        self.fallback: str | None = None
        self.watching = False
        # one reload at a time; requests never take it
        self._lock = threading.Lock()
        #: names this holder's serving marker (several apps may share a process in tests)
        self._marker = secrets.token_hex(4)

    def unavailable_reason(self) -> str:
        """Why no model is served (for 503 answers)."""
        if self.last_failure is not None:
            return f"no model is being served: {self.last_failure.reason}"
        return "no model is being served: no model in the models folder (run `legalsearch train`)"

    def require(self) -> Model:
        """The served model, or NoModelError with the reason."""
        model = self.model
        if model is None:
            raise NoModelError(self.unavailable_reason())
        return model

    def pointer(self) -> str | None:
        """The version ``current`` names now (current.json, no verification)."""
        return current_version(self.models_dir)

    def _stamp(self, version: str) -> float | None:
        try:
            return os.stat(self.models_dir / version / MANIFEST_NAME).st_mtime
        except OSError:
            return None

    def status(self) -> dict[str, Any]:
        """What this process serves, for /readyz and for the other workers' /readyz."""
        model, failure = self.model, self.last_failure
        return {
            "pid": os.getpid(),
            "ready": model is not None,
            "model": model.version if model is not None else None,
            "current": self.pointer(),
            "fallback": self.fallback,
            "last_reload_error": asdict(failure) if failure is not None else None,
        }

    def refresh(self, force: bool = False) -> ReloadOutcome:
        """Load the model ``current`` names if it is not the served one (blocking: call in a thread).

        When it cannot be loaded, the served model stays; with none served, the newest other version that
        verifies is loaded instead, and ``fallback`` says why.
        """
        with self._lock:
            previous = self.model.version if self.model is not None else None
            unchanged = ReloadOutcome(False, previous, previous)
            try:
                record = read_current_record(self.models_dir)
            except LegalSearchError as exc:
                record = None
                self._refuse(CURRENT_RECORD, str(exc))
                return self._fall_back(previous, force) or unchanged
            version = record.version if record is not None else self.pointer()
            if version is None:
                if (self.models_dir / CURRENT_NAME).exists():
                    # a plain folder named current: let Model.load explain what is wrong with it
                    version = CURRENT_NAME
                else:
                    if self.model is None:
                        self.last_failure = None
                    return unchanged
            if version == self.served_name and self.fallback is None:
                return unchanged
            failed = self.last_failure
            # a refused version is only retried when forced or when its manifest changed: re-hashing a
            # damaged model every watch interval would burn the CPU the requests need
            refused_before = failed is not None and failed.version == version and failed.stamp == self._stamp(version)
            if refused_before and not force:
                return unchanged
            if record is None:
                self._refuse(version, f"{CURRENT_RECORD} is missing, so the manifest of {version} cannot be "
                                      "checked: make it current again (legalsearch train, or set_current)")
            else:
                model = self._try_load(version, record.manifest_sha256)
                if model is not None:
                    self._publish(model, version, None)
                    return ReloadOutcome(True, model.version, previous)
            return self._fall_back(previous, force) or ReloadOutcome(False, previous, previous, refused=True)

    def _try_load(self, version: str, manifest_sha256: str | None) -> Model | None:
        """The verified, warmed-up model of ``version``; None (and the refusal recorded) when it fails."""
        try:
            model = Model.load(self.models_dir / version, manifest_sha256=manifest_sha256)
            warm_up(model)  # before the swap, so that no request pays for the caches
            return model
        except LegalSearchError as exc:
            self._refuse(version, str(exc))
        except Exception as exc:  # a damaged file can break a third-party loader in any way
            log.exception("loading model %s failed unexpectedly", version)
            self._refuse(version, f"{type(exc).__name__}: {exc}")
        return None

    def _fall_back(self, previous: str | None, force: bool) -> ReloadOutcome | None:
        """With ``current`` refused: keep the served model, or load the newest other version that verifies."""
        failure = self.last_failure
        why = f"current ({failure.version}) is refused: {failure.reason}" if failure else "current is refused"
        if self.model is not None:
            self.fallback = f"{why}; still serving {self.served_name}"
            return None
        for info in list_models(self.models_dir):
            if failure is not None and info.version == failure.version:
                continue
            model = self._try_load(info.version, None)
            if model is not None:
                self._publish(model, info.version, f"{why}; serving {info.version}, the newest version that verifies")
                # the refusal of current stays on record: /readyz shows both
                self.last_failure = failure
                return ReloadOutcome(True, model.version, previous, refused=True)
        self.last_failure = failure
        return None

    def _publish(self, model: Model, name: str, fallback: str | None) -> None:
        previous = self.model.version if self.model is not None else None
        # the swap: one reference assignment; requests that already took the old model keep it
        self.model = model
        self.served_name = name
        self.fallback = fallback
        self.last_failure = None
        # after the swap: `legalsearch models prune` keeps what any live server process serves
        mark_serving(self.models_dir, name, self._marker)
        _freeze_heap()
        if fallback is None:
            log.info("serving model %s (was %s)", model.version, previous)
        else:
            log.warning("serving model %s (was %s) as a fallback: %s", model.version, previous, fallback)

    def close(self) -> None:
        """Drop this process's serving marker (at shutdown): prune may then remove the version it served."""
        unmark_serving(self.models_dir, self._marker)

    def _refuse(self, version: str | None, reason: str) -> None:
        # answers show reasons to clients: name files relative to the models folder, not by absolute path
        for prefix in {str(self.models_dir.resolve()), str(self.models_dir)}:
            reason = reason.replace(prefix + os.sep, "").replace(prefix, "<models>")
        self.last_failure = ReloadFailure(
            version=version,
            reason=reason,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            stamp=self._stamp(version) if version else None,
        )
        served = self.model.version if self.model is not None else "none"
        log.error("refused model %s, still serving %s: %s", version, served, reason)


def _freeze_heap() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach.

    A loaded model is hundreds of thousands of long-lived objects (vocabularies, memos, spaCy's tables); a full
    collection walked all of them and paused a worker for ~200 ms, which became the p99 of every route. Frozen
    objects are still freed by reference counting; what the previous model left in cycles is collected here,
    once per swap, before the new heap is frozen.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
