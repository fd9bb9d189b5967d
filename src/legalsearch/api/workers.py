"""Several uvicorn workers behind one port, each new connection handed to the worker with the fewest open ones.

uvicorn's own ``--workers`` shares the listening socket among the workers and lets them race for each new
connection. The first worker to wake takes every connection waiting at that moment, and a keep-alive client then
stays with it: 16 connections opened together were split 2/14 or 10/6 between two workers on this project's
machine, and the crowded worker's queue set the tail latency while the other idled. Here the main process does
the accepting (as Node's cluster module does by default, for the same reason): it hands the socket to the least
busy worker over a Unix socket (SCM_RIGHTS), and the worker serves it with uvicorn's own HTTP protocol. Workers
report each closed connection back, so the counts stay right for clients that come and go.

The main process never imports the application or loads a model; a worker that dies is replaced. A worker that
has served ``LEGALSEARCH_WORKER_MAX_REQUESTS`` requests or whose private memory passed
``LEGALSEARCH_WORKER_MAX_MEMORY_MB`` is recycled without dropping requests: it asks to retire, the main process
starts its replacement and gives it the new connections once it is ready, the retiring worker closes each of its
connections after the answer in progress (or when idle past the keep-alive time), and it is stopped gracefully
once it has none left (or after a drain timeout).

A replacement that dies before it is ready is retried with a growing delay, so a model that kills its workers
cannot make the main process spin. The main process also relays between the workers (api/peers.py): a reload
asked of one worker reaches all of them, and each worker's status reaches every worker's /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import psutil
import uvicorn

from legalsearch.api import peers

log = logging.getLogger("uvicorn.error")

#: worker -> main: the worker finished starting up (its model is loaded) and takes connections
READY = b"r"
#: worker -> main: one connection the worker was given is closed
CLOSED = b"c"
#: worker -> main: the worker passed its request or memory limit and wants to be replaced
RETIRE = b"x"
#: how many descriptors one message may carry (the main process sends one per accepted connection)
MAX_FDS = 64
#: how often a worker compares itself with its limits
_LIMIT_CHECK_S = 0.5
#: the largest message either side reads (statuses and the table of them are JSON)
MAX_MESSAGE = peers.MAX_MESSAGE + 64
#: delays before restarting a replacement worker that died before it was ready: doubling, capped
RESTART_BACKOFF_S = (0.5, 30.0)


@dataclass
class _Worker:
    """The main process's view of one worker."""

    process: BaseProcess
    channel: socket.socket
    connections: int = 0
    ready: bool = False
    given: int = 0
    #: when it asked to retire (monotonic clock); None while it serves normally
    retiring_since: float | None = None
    stop_sent: bool = False
    #: started to replace one that exited (the first ones stop the server when they cannot start)
    replacement: bool = False
    #: its last reported status (peers.STATUS), shown by every worker's /readyz
    status: dict[str, Any] | None = None


class _HandedServer(uvicorn.Server):
    """A uvicorn server that listens on nothing and serves the connections the main process sends it."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._pending: set[asyncio.Task[Any]] = set()
        self.retiring = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup (lifespan: the model loads here) without listeners, then take connections."""
        await super().startup(sockets=[])
        if self.should_exit or not self.started:
            return
        loop = asyncio.get_running_loop()
        channel = self.channel

        def report_closed() -> None:
            with contextlib.suppress(OSError):
                channel.send(CLOSED)

        base: Any = self.config.http_protocol_class
        server = self

        class CountedProtocol(base):
            """uvicorn's HTTP protocol, telling the main process when its connection is gone."""

            def connection_lost(self, exc: Exception | None) -> None:
                super().connection_lost(exc)
                report_closed()

            def on_headers_complete(self) -> None:
                super().on_headers_complete()
                if server.retiring and self.cycle is not None:
                    self.cycle.keep_alive = False  # this connection closes after this answer: it drains

        factory = functools.partial(
            CountedProtocol, config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        channel.setblocking(False)
        loop.add_reader(channel.fileno(), self._receive, loop, factory)
        channel.send(READY)
        task = loop.create_task(self._watch_limits())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _watch_limits(self) -> None:
        """Ask the main process to be replaced once past the request or memory limit (then drain)."""
        from legalsearch.config import ServiceSettings

        settings = ServiceSettings()
        max_requests, max_bytes = settings.worker_max_requests, settings.worker_max_memory_mb * 2**20
        if not max_requests and not max_bytes:
            return
        me = psutil.Process()
        while not self.should_exit:
            await asyncio.sleep(_LIMIT_CHECK_S)
            served = self.server_state.total_requests
            memory = me.memory_info()
            # resident memory minus file-backed pages: the memory-mapped model files are shared, not this worker's
            private = memory.rss - getattr(memory, "shared", 0)
            if (max_requests and served >= max_requests) or (max_bytes and private > max_bytes):
                log.info("worker %d: %d requests served, %.0f MB private memory: asking to be replaced",
                         os.getpid(), served, private / 2**20)
                self.retiring = True
                for connection in list(self.server_state.connections):
                    cycle = getattr(connection, "cycle", None)
                    # only answers not yet begun: one whose head went out without "connection: close" must keep
                    # the connection open, or the client's next request on it meets a reset
                    if cycle is not None and not cycle.response_started:
                        cycle.keep_alive = False
                with contextlib.suppress(OSError):
                    self.channel.send(RETIRE)
                return

    def _receive(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol]) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, MAX_MESSAGE, MAX_FDS)
            except BlockingIOError:
                return
            except OSError as exc:
                data, fds = b"", []
                log.error("worker %d: channel to the main process failed: %s", os.getpid(), exc)
            if not data and not fds:
                # the main process is gone: nobody will send connections or count them any more
                log.error("worker %d: lost the main process, shutting down", os.getpid())
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            if not fds and peers.LINK is not None:
                peers.LINK.receive(data)
                continue
            for fd in fds:
                sock = socket.socket(fileno=fd)
                task = loop.create_task(self._connect(loop, factory, sock))
                # the loop keeps only weak references to tasks
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _connect(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol],
                       sock: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(factory, sock)
        except OSError as exc:  # the client hung up before we got to it
            log.debug("worker %d: dropped a connection: %s", os.getpid(), exc)
            sock.close()
            with contextlib.suppress(OSError):
                self.channel.send(CLOSED)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop taking connections, then uvicorn's graceful shutdown of the open ones."""
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets=[])


def _run_worker(config_kwargs: dict[str, Any], channel: socket.socket) -> None:
    """A worker process's entry point."""
    config = uvicorn.Config(**config_kwargs)
    # before the app starts: its lifespan reports the first model it loads over this link
    peers.LINK = peers.PeerLink(channel)
    _HandedServer(config, channel).run()


class Balancer:
    """The main process: accepts connections and gives each to the least busy live worker."""

    def __init__(self, config_kwargs: dict[str, Any], workers: int) -> None:
        if workers < 2:
            raise ValueError("the balancer needs at least two workers")
        self.config_kwargs = config_kwargs
        self.n_workers = workers
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.listener: socket.socket | None = None
        self.accepting = False
        #: why the balancer gave up (a worker that could not even start), None while all is well
        self.failure: str | None = None
        self._ctx = multiprocessing.get_context("spawn")
        #: how long a retiring worker may keep connections before it is stopped anyway
        self.drain_timeout_s = 30.0
        #: when the replacements waiting for their delay are due (time.monotonic())
        self._restarts: list[float] = []
        self._backoff = RESTART_BACKOFF_S[0]
        self._reload_ids = 0

    def _start_worker(self, replacement: bool = False) -> _Worker:
        # datagram-like: one message per handed connection or report, never merged or split
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = self._ctx.Process(target=_run_worker, args=(self.config_kwargs, theirs), daemon=False)
        process.start()
        theirs.close()
        mine.setblocking(False)
        worker = _Worker(process, mine, replacement=replacement)
        self.selector.register(mine, selectors.EVENT_READ, ("channel", worker))
        self.selector.register(process.sentinel, selectors.EVENT_READ, ("exit", worker))
        log.info("started worker process [%d]", process.pid)
        return worker

    def _pick(self) -> _Worker | None:
        live = [w for w in self.workers if w.process.is_alive()]
        if not live:
            return None
        # ready workers first (a starting one would keep the client waiting for its model to load), then those not
        # retiring, then the one with fewest open connections, then the one given fewest so far, so ties rotate
        return min(live, key=lambda w: (not w.ready, w.retiring_since is not None, w.connections, w.given))

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of descriptors: keep serving the connections we have
                log.warning("accept failed: %s", exc)
                return
            with conn:
                worker = self._pick()
                if worker is None:
                    continue
                try:
                    socket.send_fds(worker.channel, [b"f"], [conn.fileno()])
                except OSError as exc:
                    log.warning("could not hand a connection to worker %d: %s", worker.process.pid, exc)
                    continue
                worker.connections += 1
                worker.given += 1

    def _on_channel(self, worker: _Worker) -> None:
        try:
            data = worker.channel.recv(MAX_MESSAGE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # the worker is exiting; its sentinel reports the exit
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.channel)
            return
        kind = data[:1]
        if data == CLOSED:
            worker.connections = max(0, worker.connections - 1)
        elif data == RETIRE and worker.retiring_since is None and not self.stopping:
            worker.retiring_since = time.monotonic()
            log.info("worker process [%d] retires: starting its replacement", worker.process.pid)
            self.workers.append(self._start_worker(replacement=True))
        elif data == READY and not worker.ready:
            self._on_ready(worker)
        elif kind == peers.STATUS:
            self._on_status(worker, data[1:])
        elif kind == peers.RELOAD_ALL:
            self._reload_all(worker)

    def _on_ready(self, worker: _Worker) -> None:
        worker.ready = True
        log.info("worker process [%d] is taking connections", worker.process.pid)
        if worker.replacement:
            self._backoff = RESTART_BACKOFF_S[0]
        if self.listener is not None and not self.accepting and all(w.ready for w in self.workers):
            # the first connections wait until every worker has its model, or they would all go to the first
            self.selector.register(self.listener, selectors.EVENT_READ, ("listen", None))
            self.accepting = True

    def _on_status(self, worker: _Worker, body: bytes) -> None:
        try:
            status = json.loads(body)
        except ValueError:
            log.warning("worker process [%d] sent an unreadable status", worker.process.pid)
            return
        if isinstance(status, dict):
            worker.status = status
            self._send_table()

    def _send_table(self) -> None:
        """Every worker's status to every worker, so that each /readyz shows them all."""
        table = {str(w.process.pid): w.status for w in self.workers if w.status is not None}
        message = peers.TABLE + json.dumps(table, separators=(",", ":")).encode()
        for worker in self.workers:
            self._send(worker, message)

    def _reload_all(self, origin: _Worker) -> None:
        """A reload one worker was asked for: every other worker reloads too, and the asking one learns which."""
        self._reload_ids += 1
        others = [w for w in self.workers if w is not origin and w.process.is_alive()]
        order = peers.RELOAD + json.dumps({"id": self._reload_ids}).encode()
        for worker in others:
            self._send(worker, order)
        pids = [w.process.pid for w in others]
        self._send(origin, peers.ACK + json.dumps({"id": self._reload_ids, "pids": pids}).encode())
        log.info("reload %d: asked workers %s", self._reload_ids, pids)

    @staticmethod
    def _send(worker: _Worker, message: bytes) -> None:
        try:
            worker.channel.send(message)
        except OSError as exc:  # exiting, or its queue is full: its sentinel or next status sorts it out
            log.warning("could not send to worker process [%d]: %s", worker.process.pid, exc)

    def _on_exit(self, worker: _Worker) -> None:
        for key in (worker.channel, worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(key)
        worker.channel.close()
        worker.process.join(timeout=1)
        self.workers.remove(worker)
        if self.stopping:
            return
        self._send_table()
        if worker.retiring_since is not None:
            log.info("worker process [%s] retired", worker.process.pid)
            return
        if not worker.ready and not worker.replacement:
            # one of the first workers died while starting: a replacement would fail the same way, forever
            self.failure = f"worker process [{worker.process.pid}] exited with {worker.process.exitcode} while starting"
            log.error("%s: stopping", self.failure)
            self.stopping = True
            return
        if not worker.ready:
            # a replacement that died before it was ready (say, on the damaged model that killed the one before):
            # retry later, ever later, while the other workers serve
            delay, self._backoff = self._backoff, min(self._backoff * 2, RESTART_BACKOFF_S[1])
            log.error("replacement worker process [%s] exited with %s while starting: retrying in %.1f s",
                      worker.process.pid, worker.process.exitcode, delay)
            self._restarts.append(time.monotonic() + delay)
            return
        log.error("worker process [%s] exited with %s: starting a new one", worker.process.pid,
                  worker.process.exitcode)
        self.workers.append(self._start_worker(replacement=True))

    def _restart_due(self) -> float | None:
        """Start the replacements whose delay is over; the seconds until the next one (None: none waiting)."""
        now = time.monotonic()
        due = [t for t in self._restarts if t <= now]
        self._restarts = [t for t in self._restarts if t > now]
        for _ in due:
            self.workers.append(self._start_worker(replacement=True))
        return max(0.0, min(self._restarts) - now) if self._restarts else None

    def run(self, listener: socket.socket) -> int:
        """Serve until SIGINT or SIGTERM, then stop the workers gracefully; the exit status (0: stopped)."""
        wake_r, wake_w = socket.socketpair()
        wake_w.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake_w.fileno())
        handlers = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        listener.setblocking(False)
        self.listener = listener
        try:
            self.selector.register(wake_r, selectors.EVENT_READ, ("wake", None))
            self.workers = [self._start_worker() for _ in range(self.n_workers)]
            wait: float | None = None
            while not self.stopping:
                self._stop_drained()
                timeout = _LIMIT_CHECK_S if wait is None else min(wait, _LIMIT_CHECK_S)
                for key, _ in self.selector.select(timeout=timeout):
                    kind, worker = key.data
                    if kind == "listen":
                        self._accept(listener)
                    elif kind == "channel":
                        self._on_channel(worker)
                    elif kind == "exit":
                        self._on_exit(worker)
                    else:
                        with contextlib.suppress(OSError):
                            wake_r.recv(512)
                wait = self._restart_due()
        finally:
            self.stopping = True
            if self.accepting:
                self.selector.unregister(listener)
            listener.close()
            self._stop_workers()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            wake_r.close()
            wake_w.close()
        return 0 if self.failure is None else 1

    def _stop_drained(self) -> None:
        """SIGTERM to retiring workers once their replacements are ready and they have no connections left (or after
        the drain timeout: clients that keep idle connections open get them closed, as the keep-alive time would)."""
        if sum(w.ready and w.retiring_since is None for w in self.workers) < self.n_workers:
            return
        now = time.monotonic()
        for worker in self.workers:
            if worker.retiring_since is None or worker.stop_sent or worker.process.pid is None:
                continue
            if worker.connections == 0 or now - worker.retiring_since > self.drain_timeout_s:
                worker.stop_sent = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)

    def _stop(self, signum: int, frame: object) -> None:
        log.info("received %s: stopping the workers", signal.Signals(signum).name)
        self.stopping = True

    def _stop_workers(self, timeout: float = 30.0) -> None:
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                # SIGTERM: uvicorn finishes the requests in flight, then exits
                os.kill(worker.process.pid, signal.SIGTERM)
        for worker in self.workers:
            worker.process.join(timeout)
            if worker.process.is_alive():
                log.error("worker process [%d] did not stop in %.0f s: killing it", worker.process.pid, timeout)
                worker.process.kill()
                worker.process.join()
            worker.channel.close()
        self.workers = []


def run_workers(config_kwargs: dict[str, Any], workers: int) -> int:
    """Bind ``host``/``port`` of ``config_kwargs`` and serve them with ``workers`` balanced uvicorn workers until
    SIGINT/SIGTERM; the exit status."""
    config = uvicorn.Config(**config_kwargs)  # configures uvicorn's logging in this process too
    listener = config.bind_socket()
    # uvicorn leaves listen() to the event loop's create_server; here nobody else calls it
    listener.listen(config.backlog)
    log.info("balancing connections over %d workers [main process %d]", workers, os.getpid())
    status = Balancer(config_kwargs, workers).run(listener)
    log.info("stopped [main process %d]", os.getpid())
    return status
