"""A worker's link to the balancing main process (api/workers.py): reloads that reach every worker, and the
status of every worker for /readyz.

Each worker reports its status (served version, fallback, last refusal) to the main process whenever it changes;
the main process sends the table of all of them to every worker, so one /readyz request shows them all. A
``POST /admin/reload`` reloads the worker that got it, then asks the main process to have every other worker
reload too, and waits (up to ``reload_wait_s``) until each has reported back.

Messages are single SEQPACKET datagrams: one byte of kind, then JSON. A process that is not such a worker (one
uvicorn process, or uvicorn's own ``--workers``) has no link: it reports and reloads only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

#: worker -> main: my status changed (JSON status)
STATUS = b"s"
#: worker -> main: please have every other worker reload
RELOAD_ALL = b"a"
#: main -> worker: reload now (JSON {"id": n})
RELOAD = b"l"
#: main -> the worker that asked: your reload request got this id, sent to these workers (JSON {"id", "pids"})
ACK = b"k"
#: main -> worker: every worker's status (JSON {pid: status})
TABLE = b"t"
#: longest status message: a refusal reason is cut to fit
MAX_MESSAGE = 60_000
_MAX_REASON = 2_000


class PeerLink:
    """The worker side of the link (one per worker process)."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        #: every worker's status by pid, as the main process last sent it
        self.table: dict[int, dict[str, Any]] = {}
        #: the newest reload id this worker has carried out
        self.reloaded = 0
        #: set by the app: reload this worker's model (force), then report
        self.on_reload: Callable[[], Awaitable[None]] | None = None
        self._acks: asyncio.Queue[dict[str, Any]] | None = None
        self._changed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, kind: bytes, payload: dict[str, Any] | None = None) -> None:
        """One message to the main process (dropped, with a log line, when the channel is gone)."""
        data = kind + (json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b"")
        try:
            self.channel.send(data)
        except OSError as exc:
            log.warning("worker %d: could not reach the main process: %s", os.getpid(), exc)

    def report(self, status: dict[str, Any]) -> None:
        """Tell the main process (and so every worker) this worker's status."""
        status = {**status, "reloaded": self.reloaded}
        error = status.get("last_reload_error")
        if isinstance(error, dict) and len(str(error.get("reason", ""))) > _MAX_REASON:
            status["last_reload_error"] = {**error, "reason": str(error["reason"])[:_MAX_REASON] + "…"}
        self.table[os.getpid()] = status
        self.send(STATUS, status)

    def receive(self, data: bytes) -> None:
        """A message from the main process (called on the worker's event loop)."""
        kind, body = data[:1], data[1:]
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            log.error("worker %d: unreadable message from the main process", os.getpid())
            return
        if kind == TABLE:
            self.table = {int(pid): status for pid, status in payload.items()}
            self._signal()
        elif kind == ACK:
            self._ack_queue().put_nowait(payload)
        elif kind == RELOAD:
            task = asyncio.get_running_loop().create_task(self._reload(int(payload.get("id", 0))))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _reload(self, reload_id: int) -> None:
        if self.on_reload is not None:
            try:
                await self.on_reload()
            except Exception:  # a reload that fails still has to be reported, or the asking worker waits
                log.exception("worker %d: reload %d failed", os.getpid(), reload_id)
        self.reloaded = max(self.reloaded, reload_id)
        own = self.table.get(os.getpid())
        if own is not None:
            self.report(own)

    async def reload_others(self, timeout: float) -> list[int]:
        """Have every other worker reload, and wait until each reported back; the pids still pending."""
        self.send(RELOAD_ALL)
        try:
            ack = await asyncio.wait_for(self._ack_queue().get(), timeout)
        except TimeoutError:
            return []
        reload_id, pids = int(ack["id"]), {int(p) for p in ack.get("pids", [])}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def pending() -> list[int]:
            # a worker that left the table has exited: nothing to wait for
            return sorted(p for p in pids if p in self.table and int(self.table[p].get("reloaded", 0)) < reload_id)

        event = self._changed_event()
        while True:
            event.clear()  # before looking, so that a table arriving meanwhile is not missed
            waiting = pending()
            if not waiting or loop.time() >= deadline:
                return waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(0.0, deadline - loop.time()))

    def _ack_queue(self) -> asyncio.Queue[dict[str, Any]]:
        if self._acks is None:
            self._acks = asyncio.Queue()
        return self._acks

    def _changed_event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()


#: this process's link, set by the worker before uvicorn starts the app; None outside balanced workers
LINK: PeerLink | None = None


def workers_status(own: dict[str, Any]) -> list[dict[str, Any]]:
    """Every worker's status (this one's as it is now), by pid; only this one outside balanced workers."""
    link = LINK
    table = dict(link.table) if link is not None else {}
    table[int(own["pid"])] = {**table.get(int(own["pid"]), {}), **own}
    return [table[pid] for pid in sorted(table)]
