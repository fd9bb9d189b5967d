"""uvicorn's httptools protocol with the service's HTTP limits, answered in JSON like every other error.

uvicorn (0.54, httptools) accepts request heads of any size: a 20 MB header was read whole; a URL over 64 KiB is
answered with a plain-text 400 (httptools' URL parser keeps 16-bit offsets); a connection that sends nothing, or a
request head byte by byte, is held forever (its keep-alive timer only runs between requests); and the concurrency
limit answers plain text. ``LimitedHttpToolsProtocol`` answers these with ``{"detail": ...}``: 414 for a long URL,
431 for long headers (both counted as the bytes arrive, so at most one read beyond the limit is buffered), 408 and
a closed connection for a head that does not arrive in time, 503 for too many requests at once.

The limits come from ``ServiceSettings`` (the ``LEGALSEARCH_*`` environment, which worker processes inherit).
``legalsearch serve`` runs uvicorn with this protocol (``http=PROTOCOL``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from legalsearch.api.metrics import Receive, Scope, Send
from legalsearch.config import ServiceSettings

log = logging.getLogger(__name__)

#: the import string uvicorn's ``http`` option takes
PROTOCOL = "legalsearch.api.http:LimitedHttpToolsProtocol"
#: httptools parses URLs with 16-bit offsets: a longer URL cannot be served by it at all
HTTPTOOLS_MAX_URL = 65_535
#: how long a refused request's remaining bytes are read (and dropped) before the connection closes
_LINGER_S = 1.0


@functools.lru_cache(maxsize=1)
def _settings() -> ServiceSettings:
    return ServiceSettings()


class _HeadTooLarge(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def json_service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's answer to a request over ``limit_concurrency``, as JSON."""
    body = json.dumps({"detail": "too many requests at once: try again shortly"}).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"retry-after", b"1"),
    ]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with URL and header size limits and a deadline for each request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = _settings()
        self._max_url = min(settings.max_url_bytes, HTTPTOOLS_MAX_URL)
        self._max_headers = settings.max_header_bytes
        self._head_timeout = settings.head_timeout_s
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's, then the clock for the first request head starts."""
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's, and no head timer left behind."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head limits checked as the bytes arrive."""
        if self._refused:
            return  # the rest of a refused request, read only so that the client gets the answer (see _refuse)
        room = len(data)
        if self._in_head:
            if self._head_timer is None:
                self._start_head_timer()  # the first byte of a request on a kept-alive connection
            room = self._max_url + self._max_headers + 8192 - self._head_bytes
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            if room >= len(data):
                self.parser.feed_data(data)
                return
            # a head this long fails a check in the callbacks: feed only what fits, so that httptools buffers no
            # more of it and the callbacks tell a long URL from long headers
            self.parser.feed_data(data[:max(room, 0)])
            if self._in_head:
                raise self._headers_error() if getattr(self, "headers", None) else self._url_error()
            self.parser.feed_data(data[max(room, 0):])  # the head ended in time: the rest is its body
        except _HeadTooLarge as exc:
            self._refuse(exc.status, exc.detail)
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, _HeadTooLarge):
                self._refuse(cause.status, cause.detail)
                return
            log.warning("invalid HTTP request received: %s", exc)
            self._refuse(400, "invalid HTTP request")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        """uvicorn's, and the headers' byte count starts again."""
        super().on_message_begin()
        self._header_bytes = 0

    def on_message_complete(self) -> None:
        """uvicorn's; what arrives next is the head of the next request."""
        super().on_message_complete()
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        """uvicorn's, refusing a URL over the limit."""
        super().on_url(url)
        if len(self.url) > self._max_url:
            raise self._url_error()

    def on_header(self, name: bytes, value: bytes) -> None:
        """uvicorn's, refusing headers over the limit."""
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self._max_headers:
            raise self._headers_error()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """uvicorn's; the head arrived in time."""
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if app is service_unavailable:
            app = json_service_unavailable
        super()._start_asgi_task(cycle, app)

    # ------------------------------------------------------------------ helpers

    def _url_error(self) -> _HeadTooLarge:
        return _HeadTooLarge(414, f"URL too long: more than {self._max_url} bytes")

    def _headers_error(self) -> _HeadTooLarge:
        return _HeadTooLarge(431, f"request headers too large: more than {self._max_headers} bytes")

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            # an idle connection: nothing to answer, as with uvicorn's keep-alive timeout
            self.transport.close()
            return
        self._refuse(408, f"the request head did not arrive within {self._head_timeout:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer an error in JSON and close the connection (the rest of the request is not read)."""
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        log.warning("%s %s: %s", status, self.client[0] if self.client else "?", detail)
        body = json.dumps({"detail": detail}).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode(),
                    b"\r\nconnection: close\r\n\r\n", body]
        self.transport.write(b"".join(content))
        self._refused = True
        # closing with unread bytes from the client makes the kernel reset the connection, and the client then
        # loses the answer: read and drop for a moment after the answer (a "lingering close"), then close
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_S, self.transport.close)
