"""The token cache (``cache/tokens/<key>/``): keys, locks, leftovers of killed runs, and ``legalsearch gc``.

Each entry holds one corpus preprocessed with one preprocessing setup; a run holds ``<key>.lock`` while it
reads or writes the entry, so an entry whose lock can be taken is in nobody's hands.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from legalsearch.locks import FileLock
from legalsearch.model import list_models, read_manifest

log = logging.getLogger(__name__)

#: bump when the token cache's layout changes, so old caches are not misread
CACHE_FORMAT = 2
DONE = "COMPLETE"
LOCK_SUFFIX = ".lock"
TMP_MARK = ".tmp-"
MANIFEST_KEY = "token_cache_key"


def cache_key(corpus_hash: str, preprocessor_fingerprint: str) -> str:
    """The entry name for a corpus preprocessed with one preprocessing setup."""
    return hashlib.sha256(f"{CACHE_FORMAT}:{corpus_hash}:{preprocessor_fingerprint}".encode()).hexdigest()[:24]


def entry_lock(tokens_dir: Path, key: str) -> FileLock:
    """The (not yet taken) lock of one cache entry."""
    return FileLock(tokens_dir / f"{key}{LOCK_SUFFIX}", f"token cache entry {tokens_dir / key}")


def mark_used(entry: Path) -> None:
    """Record that a run used the entry now (its COMPLETE marker's mtime), for gc's age rule."""
    try:
        os.utime(entry / DONE)
    except OSError as exc:  # a read-only cache still serves; gc then sees the entry as older than it is
        log.warning("cannot mark %s as used: %s", entry, exc)


def _key_of(name: str) -> str:
    return name.split(".", 1)[0]


def _leftovers(tokens_dir: Path) -> dict[str, list[Path]]:
    """Temporary folders and files of unfinished runs, by the key whose lock their owner held."""
    found: dict[str, list[Path]] = {}
    if not tokens_dir.is_dir():
        return found
    for entry in tokens_dir.iterdir():
        if TMP_MARK in entry.name:
            found.setdefault(_key_of(entry.name), []).append(entry)
        elif entry.is_dir() and not entry.is_symlink():
            inner = [p for p in entry.iterdir() if TMP_MARK in p.name]
            if inner:
                found.setdefault(entry.name, []).extend(inner)
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean_leftovers(tokens_dir: Path, dry_run: bool = False) -> list[Path]:
    """Remove what killed runs left in the cache (``<key>.tmp-<pid>/``, ``<key>/train-*.tmp-*``).

    Only leftovers of keys whose lock is free are touched: a live run holds its key's lock, a dead one does not.
    """
    removed: list[Path] = []
    for key, paths in sorted(_leftovers(tokens_dir).items()):
        lock = entry_lock(tokens_dir, key)
        if not lock.try_acquire():
            log.info("token cache entry %s is in use; its temporary files are left alone", key)
            continue
        with lock:
            for path in paths:
                if not dry_run:
                    _remove(path)
                    log.warning("removed %s, left by a training run that did not finish", path)
                removed.append(path)
    return removed


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def keys_in_use(models_dir: Path) -> set[str]:
    """The cache keys of the kept models (recorded in their manifests at training)."""
    keys = set()
    for info in list_models(models_dir):
        key = read_manifest(info.path).get(MANIFEST_KEY)
        if isinstance(key, str):
            keys.add(key)
        else:
            log.warning("model %s records no token cache key (trained before gc existed)", info.version)
    return keys


@dataclass
class GcReport:
    """What ``gc`` removed (or, in a dry run, would remove) and what it kept, and why."""

    removed: list[Path] = field(default_factory=list)
    removed_bytes: int = 0
    leftovers: list[Path] = field(default_factory=list)
    kept_in_use: int = 0
    kept_recent: int = 0
    kept_locked: int = 0


def _entries(tokens_dir: Path) -> Iterable[Path]:
    if not tokens_dir.is_dir():
        return []
    return sorted(p for p in tokens_dir.iterdir()
                  if p.is_dir() and not p.is_symlink() and "." not in p.name)


def gc(models_dir: Path, cache_dir: Path, older_than_days: float, dry_run: bool = False) -> GcReport:
    """Remove the token cache entries no kept model uses and no run used in ``older_than_days`` days."""
    tokens_dir = Path(cache_dir) / "tokens"
    report = GcReport(leftovers=clean_leftovers(tokens_dir, dry_run))
    in_use = keys_in_use(models_dir)
    cutoff = time.time() - older_than_days * 86400
    for entry in _entries(tokens_dir):
        if entry.name in in_use:
            report.kept_in_use += 1
            continue
        marker = entry / DONE
        if (marker.stat() if marker.exists() else entry.stat()).st_mtime > cutoff:
            report.kept_recent += 1
            continue
        lock = entry_lock(tokens_dir, entry.name)
        if not lock.try_acquire():
            report.kept_locked += 1
            continue
        with lock:
            size = _size(entry)
            if not dry_run:
                shutil.rmtree(entry)
                # deleted while held: a run that opened the old file notices the swap (see FileLock) and retries
                lock.path.unlink(missing_ok=True)
            report.removed.append(entry)
            report.removed_bytes += size
    return report
