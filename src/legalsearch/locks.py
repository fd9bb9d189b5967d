"""Advisory file locks (``fcntl.flock``) that keep two training runs off the same models folder and token cache.

A lock belongs to the open file, so the kernel releases it when its process dies, however it dies: a killed run
never leaves a stale lock behind, and a lock that can be taken proves that nobody is using what it guards.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from legalsearch.errors import BusyError, StorageError

log = logging.getLogger(__name__)

#: how often a waiting run retries the lock
_POLL_S = 0.1


def describe_os_error(exc: OSError, doing: str) -> str:
    """One line for an I/O failure: what was being done, on which path, and the system's reason."""
    where = f" {exc.filename}" if exc.filename else ""
    doing = doing if where else doing.removesuffix(" on").removesuffix(" at")
    reason = exc.strerror or (errno.errorcode.get(exc.errno or 0) if exc.errno else None) or str(exc)
    return f"{doing}{where}: {reason}"


class FileLock:
    """An exclusive lock on ``path`` (a file, created if missing, or a folder), taken with a timeout.

    Locking a folder itself leaves no file behind; a lock file records who holds it, for the error message.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it ("pid 123 since ..."), best effort."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return "another process"
        return text or "another process"

    def _try_once(self) -> bool:
        for _ in range(5):
            try:
                is_dir = self.path.is_dir()
                flags = os.O_RDONLY | os.O_DIRECTORY if is_dir else os.O_RDWR | os.O_CREAT
                fd = os.open(self.path, flags | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise StorageError(describe_os_error(exc, f"cannot lock {self.what} at")) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:
                # gc may delete the file between our open and our flock: a lock on a deleted inode guards nothing
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            if is_dir:
                self._fd = fd
                return True
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n".encode())
            except OSError:
                pass  # the note is for people; a full disk must not stop the lock itself
            self._fd = fd
            return True
        return False

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this object")
        return self._try_once()

    def acquire(self, timeout_s: float) -> FileLock:
        """Take the lock, waiting up to ``timeout_s`` seconds (0: try once); BusyError when it stays taken."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        if self.try_acquire():
            return self
        if timeout_s > 0:
            log.warning("%s is in use (%s); waiting up to %.0f s", self.what, self.holder(), timeout_s)
        while time.monotonic() < deadline:
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))
            if self._try_once():
                return self
        raise BusyError(
            f"{self.what} is in use by another training run ({self.holder()}); wait for it to finish, or let "
            f"this run wait with --lock-timeout SECONDS (LEGALSEARCH_TRAIN_LOCK_TIMEOUT_S)"
        )

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> FileLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
