"""The model folder: versioned, hashed, written atomically, verified on load, selected by ``current``.

Layout::

    models/
      20261128-151200-a1b2c3/      one trained model (immutable once committed)
        manifest.json              schema, versions, config, counts, sha256 + size of every other file
        ...                        the stages' artifacts
      current.json                 the record of the model in use: its version and its manifest's sha256
      current -> 20261128-151200-a1b2c3   relative symlink to the same version, for people and older tools
      .tmp-<version>/              a run in progress (never read; removed when the run fails, or by the next
                                   run when a killed run left it)
      .train.lock                  held by the training run that writes here (see pipeline.train)
      .serving/<host>-<pid>-<id>.json   one per serving process: the version it serves (see mark_serving)
      .pruned-<version>-<hex>/     a version prune is deleting

A committed folder's files are read-only, and loading reads only the files its manifest lists: a folder with
anything else in it is refused. ``current.json`` is replaced atomically (written first, then the symlink
follows); its manifest hash means that editing a served model's manifest (and its file hashes with it) makes
the model refused instead of trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import numpy as np

import legalsearch
from legalsearch.errors import ArtifactError, NoModelError
from legalsearch.locks import FileLock

logger = logging.getLogger(__name__)

#: 2: word vectors as .npy + a key list (schema 1 stored them as a gensim pickle, which loading would execute)
SCHEMA_VERSION = 2
#: manifest schema versions this code can read
SUPPORTED_SCHEMA_VERSIONS = frozenset({2})

MANIFEST_NAME = "manifest.json"
CURRENT_NAME = "current"
#: the record of the model in use (version + manifest sha256), beside the ``current`` symlink
CURRENT_RECORD = "current.json"
#: committed model files are read-only for everyone: a model is never edited in place
READ_ONLY = 0o444
TMP_PREFIX = ".tmp-"
TRAIN_LOCK = ".train.lock"
#: moving ``current`` takes a moment; a writer stuck longer than this is a bug, not a queue
_CURRENT_LOCK_TIMEOUT_S = 30.0
#: folder of the serving markers, one file per server process
SERVING_DIR = ".serving"
#: a version being deleted by prune (hidden from listings; not .tmp-, which training's cleanup owns)
PRUNED_PREFIX = ".pruned-"

#: fields commit() owns; callers must not overwrite them through ``manifest``
_RESERVED_FIELDS = frozenset(
    {"schema_version", "package_version", "git_sha", "version", "created_at", "counts", "files"}
)
#: fields update_manifest() must never change, or the hashes would no longer mean anything
_FROZEN_FIELDS = frozenset({"schema_version", "version", "files"})
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model version as listed by :func:`list_models`."""

    version: str
    path: Path
    created_at: str
    documents: int
    vocabulary: int
    current: bool


def new_version_name() -> str:
    """A sortable, unique version name: ``YYYYMMDD-HHMMSS-<6 hex>`` (UTC)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _git_sha() -> str:
    """Commit of the repository the package runs from, or "unknown" (never fails)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else "unknown"


def _json_default(value: Any) -> Any:
    # numpy scalars and paths end up in manifests (timings, sizes, config); keep them readable
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict[str, Any], mode: int | None = None) -> None:
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"cannot write {path}: manifest is not JSON serialisable: {exc}") from exc
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


@dataclass(frozen=True, slots=True)
class CurrentRecord:
    """What ``current.json`` says: the version in use and the sha256 its manifest must have."""

    version: str
    manifest_sha256: str


def read_current_record(models_dir: Path) -> CurrentRecord | None:
    """The parsed ``current.json``; None when there is none, ArtifactError when it is malformed."""
    path = Path(models_dir) / CURRENT_RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{CURRENT_RECORD} is unreadable: {exc}") from exc
    version = data.get("version") if isinstance(data, dict) else None
    sha = data.get("manifest_sha256") if isinstance(data, dict) else None
    if not isinstance(version, str) or not isinstance(sha, str) or len(sha) != 64:
        raise ArtifactError(f"{CURRENT_RECORD} must hold a version and a manifest_sha256")
    _check_version_name(version)
    return CurrentRecord(version, sha)


def _point_current(models_dir: Path, version: str) -> None:
    """Atomically make ``current.json`` name ``version`` (with its manifest's hash), then the symlink follow."""
    link = models_dir / CURRENT_NAME
    if link.exists() and not link.is_symlink():
        raise ArtifactError(f"{link} exists and is not a symlink; remove it so it can name the current model")
    try:
        sha = sha256_file(models_dir / version / MANIFEST_NAME)
    except OSError as exc:
        raise ArtifactError(f"cannot point {link} at {version}: {exc}") from exc
    # the record first: readers go by it, and the symlink is only its mirror for people and older tools
    _write_json_atomic(models_dir / CURRENT_RECORD, {"version": version, "manifest_sha256": sha})
    tmp = models_dir / f".{CURRENT_NAME}-{secrets.token_hex(4)}"
    try:
        os.symlink(version, tmp)
        os.replace(tmp, link)
    except OSError as exc:
        raise ArtifactError(f"cannot point {link} at {version}: {exc}") from exc
    finally:
        if tmp.is_symlink():
            tmp.unlink()
    _fsync_dir(models_dir)
    logger.info("current model is now %s", version)


def _check_version_name(version: str) -> None:
    if (
        not version
        or version in (".", "..", CURRENT_NAME)
        or version.startswith(".")
        or "/" in version
        or "\\" in version
        or "\x00" in version
    ):
        raise ArtifactError(f"invalid model version name: {version!r}")


class ModelWriter:
    """Writes one model version into a temporary folder and publishes it only on :meth:`commit`.

    Use as a context manager; leaving the block with an exception (or without committing) deletes the
    temporary folder, so a failed run leaves nothing half-written and never moves ``current``.
    """

    def __init__(self, models_dir: Path, version: str | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.version = version if version is not None else new_version_name()
        _check_version_name(self.version)
        self.final_path = self.models_dir / self.version
        self.path = self.models_dir / f"{TMP_PREFIX}{self.version}"
        if self.final_path.exists():
            raise ArtifactError(f"model version {self.version} already exists in {self.models_dir}")
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            self.path.mkdir()
        except FileExistsError as exc:
            raise ArtifactError(f"{self.path} exists: another run with version {self.version}?") from exc
        except OSError as exc:
            raise ArtifactError(f"cannot create {self.path}: {exc}") from exc
        self._committed = False

    def __enter__(self) -> ModelWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.abort()

    def abort(self) -> None:
        """Remove the temporary folder (idempotent)."""
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
            logger.info("discarded unfinished model %s", self.version)

    def _file_entries(self) -> dict[str, dict[str, Any]]:
        files: dict[str, dict[str, Any]] = {}
        for p in sorted(self.path.rglob("*")):
            rel = p.relative_to(self.path).as_posix()
            if rel == MANIFEST_NAME:
                continue
            if p.is_symlink():
                raise ArtifactError(f"{p}: symlinks are not allowed inside a model folder")
            if p.is_file():
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                files[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        return files

    def commit(self, manifest: dict[str, Any], counts: dict[str, int], make_current: bool = True) -> Path:
        """Hash every file, write manifest.json, publish the folder as ``models_dir/<version>``.

        ``manifest`` holds the caller's fields (config, corpus_hash, timings, sizes...); ``counts`` the
        sizes shown by :func:`list_models` ("documents", "vocabulary", ...). Returns the final path.
        """
        if self._committed:
            raise ArtifactError(f"model {self.version} is already committed")
        if not self.path.is_dir():
            raise ArtifactError(f"{self.path} vanished before commit")
        clash = sorted(_RESERVED_FIELDS & set(manifest))
        if clash:
            raise ArtifactError(f"manifest field(s) {', '.join(clash)} are written by commit() itself")
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "package_version": legalsearch.__version__,
            "git_sha": _git_sha(),
            "version": self.version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "counts": dict(counts),
            "files": self._file_entries(),
            **manifest,
        }
        _write_json_atomic(self.path / MANIFEST_NAME, data, mode=READ_ONLY)
        _make_read_only(self.path, data["files"])
        _fsync_dir(self.path)
        if self.final_path.exists():
            raise ArtifactError(f"model version {self.version} appeared in {self.models_dir} during the run")
        try:
            os.rename(self.path, self.final_path)
        except OSError as exc:
            raise ArtifactError(f"cannot publish {self.path} as {self.final_path}: {exc}") from exc
        self._committed = True
        _fsync_dir(self.models_dir)
        logger.info("committed model %s (%d files)", self.version, len(data["files"]))
        if make_current:
            with _current_lock(self.models_dir):
                _point_current(self.models_dir, self.version)
        return self.final_path


def _make_read_only(folder: Path, files: dict[str, Any]) -> None:
    # a model file changed in place breaks the memory maps of every worker serving it (a truncated one raised
    # SIGBUS in all of them); read-only files stop the accidents of tools and people that are not root
    for rel in files:
        try:
            os.chmod(folder / rel, READ_ONLY)
        except OSError as exc:
            raise ArtifactError(f"cannot make {folder / rel} read-only: {exc}") from exc


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The parsed manifest.json of a model folder; ArtifactError when missing or invalid."""
    return _parse_manifest(model_dir, _manifest_bytes(model_dir))


def _manifest_bytes(model_dir: Path) -> bytes:
    try:
        return (Path(model_dir) / MANIFEST_NAME).read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"{model_dir}: {MANIFEST_NAME} is missing (not a model, or unfinished)") from exc
    except OSError as exc:
        raise ArtifactError(f"{model_dir}: cannot read {MANIFEST_NAME}: {exc}") from exc


def _parse_manifest(model_dir: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{model_dir}: cannot read {MANIFEST_NAME}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{model_dir}: {MANIFEST_NAME} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{model_dir}: {MANIFEST_NAME} must hold a JSON object")
    return data


def verify_model(model_dir: Path, check_hashes: bool = True, manifest_sha256: str | None = None) -> dict[str, Any]:
    """Check the manifest (against ``manifest_sha256`` when given), its schema version, every listed file
    (presence, size, sha256), and that the folder holds nothing the manifest does not list.

    Raises ArtifactError naming the file and what is wrong; returns the manifest.
    """
    model_dir = Path(model_dir)
    raw = _manifest_bytes(model_dir)
    if manifest_sha256 is not None and hashlib.sha256(raw).hexdigest() != manifest_sha256:
        raise ArtifactError(
            f"{model_dir}: {MANIFEST_NAME} is not the one {CURRENT_RECORD} recorded (edited after it was made "
            "current): point current at it again to trust it"
        )
    manifest = _parse_manifest(model_dir, raw)
    schema = manifest.get("schema_version")
    if schema not in SUPPORTED_SCHEMA_VERSIONS:
        raise ArtifactError(
            f"{model_dir}: unsupported manifest schema_version {schema!r}; this legalsearch "
            f"({legalsearch.__version__}) reads {sorted(SUPPORTED_SCHEMA_VERSIONS)}: retrain the model"
            + (" (schema 1 stored its word vectors as a pickle, which is no longer loaded)" if schema == 1 else "")
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArtifactError(f"{model_dir}: {MANIFEST_NAME} has no 'files' table")
    for rel, entry in files.items():
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or not isinstance(entry, dict):
            raise ArtifactError(f"{model_dir}: invalid file entry {rel!r} in {MANIFEST_NAME}")
        _verify_file(model_dir, rel, entry, check_hashes)
    _refuse_unlisted(model_dir, files)
    return manifest


def _verify_file(model_dir: Path, rel: str, entry: dict[str, Any], check_hashes: bool) -> None:
    path = model_dir / rel
    if path.is_symlink() or not path.is_file():
        raise ArtifactError(f"{model_dir}: file {rel} is missing" + (" (a symlink)" if path.is_symlink() else ""))
    size = path.stat().st_size
    expected_size = entry.get("bytes")
    if size != expected_size:
        raise ArtifactError(
            f"{model_dir}: file {rel} has {size} bytes, the manifest says {expected_size} (truncated or replaced)"
        )
    if check_hashes:
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            raise ArtifactError(
                f"{model_dir}: file {rel} is corrupted or modified: sha256 {actual[:12]}… does not match "
                f"the manifest's {str(entry.get('sha256'))[:12]}…"
            )


def _refuse_unlisted(model_dir: Path, files: dict[str, Any]) -> None:
    """ArtifactError when the folder holds a file or folder the manifest does not list.

    Loaders read files by name, so an unlisted file would be read unverified the day a loader globs (as the
    thesaurus loader once did for ``thesaurus/seed-*``); a folder is allowed only as a parent of listed files.
    """
    parents = {p.as_posix() for rel in files for p in PurePosixPath(rel).parents}
    for path in model_dir.rglob("*"):
        rel = path.relative_to(model_dir).as_posix()
        if rel in files or rel == MANIFEST_NAME or (path.is_dir() and not path.is_symlink() and rel in parents):
            continue
        if path.name.startswith(f".{MANIFEST_NAME}.") and path.name.endswith(".tmp"):
            continue  # update_manifest() writing a new manifest right now
        raise ArtifactError(f"{model_dir}: {rel} is not listed in {MANIFEST_NAME}: the folder was changed")


def current_version(models_dir: Path) -> str | None:
    """The version ``current.json`` names (or, without one, the ``current`` symlink); no verification."""
    with contextlib.suppress(ArtifactError):
        record = read_current_record(models_dir)
        if record is not None:
            return record.version
    try:
        target = os.readlink(Path(models_dir) / CURRENT_NAME)
    except OSError:
        return None
    return PurePosixPath(target).name or None


def resolve_model_dir(models_dir: Path, version: str | None = None) -> Path:
    """The real folder of a model version; ``None`` means the one ``current`` points at."""
    models_dir = Path(models_dir)
    if version is None or version == CURRENT_NAME:
        link = models_dir / CURRENT_NAME
        named = current_version(models_dir)
        if named is None:
            if link.exists():
                raise ArtifactError(f"{link} is not a symlink and there is no {CURRENT_RECORD}")
            raise NoModelError(f"no model in {models_dir}: run `legalsearch train` first")
        target = (models_dir / named).resolve()
        if not target.is_dir():
            raise ArtifactError(f"{link} points at {named!r}, which does not exist")
        return target
    _check_version_name(version)
    path = models_dir / version
    if not path.is_dir():
        known = [m.version for m in list_models(models_dir)] if models_dir.is_dir() else []
        raise ArtifactError(
            f"unknown model version {version!r} in {models_dir}; known: {', '.join(known) or 'none'}"
        )
    return path.resolve()


def _current_lock(models_dir: Path) -> FileLock:
    # the folder itself is locked for the instant current is compared and moved: no lock file in models/
    return FileLock(models_dir, f"'current' of {models_dir}").acquire(_CURRENT_LOCK_TIMEOUT_S)


def set_current(models_dir: Path, version: str, verify: bool = True) -> None:
    """Point ``current`` at ``version`` atomically, after verifying that model completely.

    ``verify=False`` is for callers that have just verified it themselves (``Model.load``).
    """
    models_dir = Path(models_dir)
    path = resolve_model_dir(models_dir, version)
    if verify:
        verify_model(path)
    with _current_lock(models_dir):
        _point_current(models_dir, path.name)


def compare_and_set_current(models_dir: Path, version: str, expected: str | None) -> str | None:
    """Point ``current`` at ``version`` only if it still names ``expected`` (None: no current yet).

    The check and the move happen under a lock on the models folder that every writer of ``current`` takes, so a
    version chosen meanwhile (by set_current or another run) is never overwritten. Returns None when
    ``current`` moved, else what it names now (``"(none)"`` when it was removed).
    """
    models_dir = Path(models_dir)
    with _current_lock(models_dir):
        now = current_version(models_dir)
        if now != expected:
            return now or "(none)"
        _point_current(models_dir, version)
    return None


def _is_leftover(entry: Path) -> bool:
    name = entry.name
    if name.startswith(TMP_PREFIX):
        return entry.is_dir() and not entry.is_symlink()
    if name.startswith(f".{CURRENT_NAME}-"):
        return entry.is_symlink()
    # _write_json_atomic's temporary files (".<name>.<hex>.tmp"), e.g. of a record of current
    return name.startswith(".") and name.endswith(".tmp") and entry.is_file() and not entry.is_symlink()


def remove_leftovers(models_dir: Path, dry_run: bool = False) -> list[Path]:
    """Delete the unfinished ``.tmp-*`` folders and temporary files of ``current`` that killed runs left.

    Only call this while holding the models folder's training lock: then no run that could own them is alive;
    the lock on ``current`` is taken as well, so that nobody is moving ``current`` right now either.
    """
    models_dir = Path(models_dir)
    removed: list[Path] = []
    if not models_dir.is_dir():
        return removed
    with _current_lock(models_dir):
        for entry in sorted(models_dir.iterdir()):
            if not _is_leftover(entry):
                continue
            if not dry_run:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                logger.warning("removed %s, left by a training run that did not finish", entry)
            removed.append(entry)
    return removed


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Every committed model version, newest first; unfinished ``.tmp-*`` folders are ignored."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    cur = current_version(models_dir)
    infos: list[ModelInfo] = []
    for entry in models_dir.iterdir():
        hidden = entry.name.startswith(".") or entry.name == CURRENT_NAME
        if hidden or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            manifest = read_manifest(entry)
        except ArtifactError as exc:
            logger.warning("skipping %s: %s", entry, exc)
            continue
        raw_counts = manifest.get("counts")
        counts: dict[str, Any] = raw_counts if isinstance(raw_counts, dict) else {}
        infos.append(
            ModelInfo(
                version=entry.name,
                path=entry,
                created_at=str(manifest.get("created_at", "")),
                documents=int(counts.get("documents", 0)),
                vocabulary=int(counts.get("vocabulary", 0)),
                current=entry.name == cur,
            )
        )
    infos.sort(key=lambda m: (m.created_at, m.version), reverse=True)
    return infos


def update_manifest(model_dir: Path, **fields: Any) -> None:
    """Add or replace manifest fields (e.g. evaluation scores), rewriting manifest.json atomically.

    manifest.json is not listed in its own "files", so this keeps the model verifiable; the fields that
    make verification meaningful (schema_version, version, files) cannot be changed.
    """
    frozen = sorted(_FROZEN_FIELDS & set(fields))
    if frozen:
        raise ArtifactError(f"manifest field(s) {', '.join(frozen)} cannot be updated")
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    manifest.update(fields)
    _rewrite_manifest(model_dir, manifest)


def _rewrite_manifest(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace a published model's manifest (read-only, atomically) and re-pin it when it is current."""
    _write_json_atomic(model_dir / MANIFEST_NAME, manifest, mode=READ_ONLY)
    models_dir = model_dir.resolve().parent
    with _current_lock(models_dir):
        if current_version(models_dir) == model_dir.resolve().name:
            # the record pins the manifest's hash: the one current it names must stay trusted
            _point_current(models_dir, model_dir.resolve().name)


def add_files(model_dir: Path, paths: Sequence[Path]) -> None:
    """List files written into a published model afterwards (``legalsearch fit-recommend``'s fusion and tables)
    in its manifest with their hashes, so that ``verify_model`` checks them like the files of training."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    files = dict(manifest.get("files") or {})
    for p in paths:
        rel = Path(p).resolve().relative_to(model_dir.resolve()).as_posix()
        files[rel] = {"sha256": sha256_file(Path(p)), "bytes": Path(p).stat().st_size}
    manifest["files"] = dict(sorted(files.items()))
    _make_read_only(model_dir, {Path(p).resolve().relative_to(model_dir.resolve()).as_posix(): None for p in paths})
    _rewrite_manifest(model_dir, manifest)


def remove_files(model_dir: Path, names: Sequence[str]) -> None:
    """Delete files ``add_files`` listed (a fusion about to be fitted again) and drop them from the manifest;
    names that are not there are skipped. Only files added after training may go: the model must stay whole."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    files = dict(manifest.get("files") or {})
    for name in names:
        (model_dir / name).unlink(missing_ok=True)
        files.pop(name, None)
    if files != manifest.get("files"):
        manifest["files"] = files
        _rewrite_manifest(model_dir, manifest)


def load_array(path: Path, mmap: bool = True) -> np.ndarray:
    """A model's .npy array, memory-mapped read-only by default so that server workers share its pages.

    Returned as a plain ndarray view of the map: numpy's ``memmap`` subclass costs microseconds on every slice,
    which the query path does thousands of times per request.
    """
    return np.asarray(np.load(path, mmap_mode="r" if mmap else None))


def load_arrays(folder: Path, files: Mapping[str, str], what: str, mmap: bool = True) -> dict[str, np.ndarray]:
    """Each of ``files`` (name -> file name in ``folder``) read by :func:`load_array`; a file that cannot be read
    raises ArtifactError naming ``what`` ("snippet index in <folder> is unreadable: ...")."""
    try:
        return {name: load_array(folder / file, mmap) for name, file in files.items()}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{what} in {folder} is unreadable: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ServingMarker:
    """One server process's record of the model version it serves."""

    path: Path
    version: str
    host: str
    pid: int
    #: the process's start time in clock ticks since boot (Linux), to tell a reused PID from the server
    started: int | None


def _process_start(pid: int) -> int | None:
    """Start time of a process (field 22 of /proc/<pid>/stat), or None where /proc does not tell."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after its closing one
    fields = raw[raw.rfind(")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _marker_path(models_dir: Path, holder: str) -> Path:
    # the PID is read at each call: a holder created before a fork must not share its child's marker
    return Path(models_dir) / SERVING_DIR / f"{socket.gethostname()}-{os.getpid()}-{holder}.json"


def mark_serving(models_dir: Path, version: str, holder: str) -> None:
    """Record that this process serves ``version`` (its folder name), so that prune keeps that folder.

    ``holder`` tells apart several holders of one process (tests run many apps in one process). Never fails
    the caller: a models folder the server may not write to only costs prune's protection (logged).
    """
    path = _marker_path(models_dir, holder)
    record = {"version": version, "host": socket.gethostname(), "pid": os.getpid(),
              "started": _process_start(os.getpid()), "since": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        path.parent.mkdir(exist_ok=True)
        _write_json_atomic(path, record)
    except (OSError, ArtifactError) as exc:
        logger.warning("cannot record the served model in %s (prune will not know it is served): %s", path, exc)


def unmark_serving(models_dir: Path, holder: str) -> None:
    """Remove this process's serving marker (on shutdown; idempotent)."""
    try:
        _marker_path(models_dir, holder).unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("cannot remove the serving marker in %s: %s", models_dir, exc)


def _marker_alive(marker: ServingMarker) -> bool:
    if marker.host != socket.gethostname():
        return True  # another machine's process cannot be checked from here: trust its marker
    try:
        os.kill(marker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    except OSError:
        return True
    started = _process_start(marker.pid)
    return marker.started is None or started is None or started == marker.started


def serving_markers(models_dir: Path, include_stale: bool = False) -> list[ServingMarker]:
    """The serving markers of live server processes (and of dead ones too with ``include_stale``).

    A marker is stale when its process is gone (or its PID now belongs to a process started later); markers of
    other hosts are trusted, as their processes cannot be checked. Unreadable markers are skipped (logged).
    """
    folder = Path(models_dir) / SERVING_DIR
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    out: list[ServingMarker] = []
    for entry in entries:
        if entry.name.startswith(".") or entry.suffix != ".json":
            continue
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            marker = ServingMarker(entry, str(data["version"]), str(data["host"]), int(data["pid"]),
                                   None if data.get("started") is None else int(data["started"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable serving marker %s: %s", entry, exc)
            continue
        if include_stale or _marker_alive(marker):
            out.append(marker)
    return out


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What :func:`prune_models` removed and why it kept the rest."""

    removed: tuple[str, ...]
    #: version -> why it was kept: "newest", "current" or "serving (pid 123 on host)"
    kept: dict[str, str]
    #: serving markers of dead processes that were removed
    stale_markers: tuple[str, ...]
    dry_run: bool


def _protected(models_dir: Path) -> dict[str, str]:
    """Versions prune must never remove right now: the current one and every one a live server serves."""
    out: dict[str, str] = {}
    cur = current_version(models_dir)
    if cur is not None:
        out[cur] = "current"
    for marker in serving_markers(models_dir):
        out.setdefault(marker.version, f"serving (pid {marker.pid} on {marker.host})")
    return out


def _remove_tree(path: Path) -> None:
    def make_writable(func: Any, failed: str, exc_info: Any) -> None:
        # committed model files and folders may be read-only; the folder itself must be writable to empty it
        os.chmod(os.path.dirname(failed), stat.S_IRWXU)
        os.chmod(failed, stat.S_IRWXU)
        func(failed)

    shutil.rmtree(path, onerror=make_writable)


def prune_models(models_dir: Path, keep: int, dry_run: bool = False) -> PruneResult:
    """Delete all but the ``keep`` newest versions, never the current one nor one a live server serves.

    Runs under the lock every writer of ``current`` takes, so ``current`` cannot move meanwhile. Each version is
    first renamed to a hidden ``.pruned-*`` folder (gone from listings at once), then the serving markers are read
    again: a version a server started serving in between is renamed back. A ``.pruned-*`` folder found at the
    start is what an interrupted prune left (prunes never overlap, under the lock) and is deleted.
    """
    if keep < 0:
        raise ArtifactError(f"--keep must be 0 or more, not {keep}")
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise NoModelError(f"no models folder {models_dir}")
    with _current_lock(models_dir):
        if not dry_run:
            for leftover in models_dir.glob(f"{PRUNED_PREFIX}*"):
                _remove_tree(leftover)
        found = list_models(models_dir)
        kept = {m.version: "newest" for m in found[:keep]}
        protected = _protected(models_dir)
        removed: list[str] = []
        for info in found[keep:]:
            if info.version in protected:
                kept[info.version] = protected[info.version]
            elif dry_run or _prune_one(models_dir, info, kept):
                removed.append(info.version)
        stale = [m for m in serving_markers(models_dir, include_stale=True) if not _marker_alive(m)]
        if not dry_run:
            for marker in stale:
                marker.path.unlink(missing_ok=True)
        _fsync_dir(models_dir)
    return PruneResult(tuple(removed), kept, tuple(m.path.name for m in stale), dry_run)


def _prune_one(models_dir: Path, info: ModelInfo, kept: dict[str, str]) -> bool:
    """Delete one version; False (and noted in ``kept``) when a server started serving it meanwhile."""
    hidden = models_dir / f"{PRUNED_PREFIX}{info.version}-{secrets.token_hex(3)}"
    try:
        os.rename(info.path, hidden)
    except OSError as exc:
        raise ArtifactError(f"cannot remove model {info.version}: {exc}") from exc
    again = _protected(models_dir)
    if info.version in again:
        os.rename(hidden, info.path)
        kept[info.version] = again[info.version]
        return False
    try:
        _remove_tree(hidden)
    except OSError as exc:
        raise ArtifactError(f"model {info.version} is unlisted but not fully deleted ({hidden}): {exc}") from exc
    logger.info("pruned model %s", info.version)
    return True
