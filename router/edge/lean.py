"""A lean HTTP/1.1 connection: the requests a listener serves most, parsed and answered without aiohttp.

Why: under load, aiohttp's request machinery (parser callbacks, request and response objects, the writer)
was about a third of the daemon's CPU per synchronous Invoke, and about as much of the HTTP gateway's
(docs/performance.md). A listener that has a common case simple enough to parse by hand serves it here and
leaves everything else to its aiohttp server, which stays the reference: the lean path must give the same
answers.

Contract:

* `LeanConnection(service)` is an `asyncio.Protocol`; `service` is a `LeanService` subclass (the control
  plane's front, router/control/front.py; the HTTP gateway, router/sources/http/lean.py), whose
  `protocol` makes them and `close()` closes those still on the lean path.
* For each whole request head in the buffer, `service.parse(head)` returns the request and its body length,
  or `(None, 0)` when the lean path does not take it. Then, with the body in, `await service.answer(request,
  transport)` gives `(status, headers, body)`, or None when the service leaves that request (and the
  connection) to someone else. `service.answered(request, status)` is told of each answer written.
* The first request not taken hands the connection for good to `service.hand_over(transport, data)`, with
  that request's bytes and all that follow (`hand_to_server` gives it to an aiohttp `web.Server`).
* One request at a time per connection: what arrives meanwhile waits, and pipelined requests are answered in
  order; past MAX_HEAD bytes waiting, the connection stops reading until the answer is written (so a client
  cannot make the buffer grow without bound). `Connection: close`, and HTTP/1.0 without keep-alive, close
  the connection after the answer.
* Timeouts: a connection with no request for `service.idle_s`, or whose head takes longer than that to
  arrive, is closed (as aiohttp's keep-alive timeout does); a body not whole within `service.body_s` of its
  head gets `service.late()` and the connection is closed.
* An answer's status without a body by definition (1xx, 204, 304) is sent without Content-Length and body;
  so is the body of an answer to HEAD (`request.head_only`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Protocol

from aiohttp import web

MAX_HEAD = 64 * 1024

Answer = tuple[int, Iterable[tuple[str, str]], bytes]


class Headers(dict[str, str]):
    """Request headers by lower-case name, the first of repeats; `get` takes any case (as aiohttp's
    CIMultiDict does)."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)


class LeanRequest(Protocol):
    body: bytes
    raw: bytes  # the request's bytes as received, kept when the service may leave it to someone else
    keep_alive: bool
    head_only: bool


class LeanService:
    """What a listener gives its lean connections: the parsing and answering of its requests (the methods
    below that raise), its timeouts, and the set of its connections still on the lean path."""

    keep_raw = False  # True when answer() may return None: the request's bytes are kept for the hand-over

    def __init__(self, idle_s: float, body_s: float) -> None:
        self.idle_s = idle_s
        self.body_s = body_s
        self.connections: set[LeanConnection] = set()

    def protocol(self, received: bytes = b"") -> LeanConnection:
        """A connection's protocol (for `loop.create_server`); `received`: bytes read from it elsewhere."""
        return LeanConnection(self, received)

    def close(self) -> None:
        """Close the connections still on the lean path."""
        for connection in list(self.connections):
            connection.close()

    async def settle(self, timeout_s: float) -> None:
        """Let the answers being made finish (up to `timeout_s`)."""
        serving = [task for c in self.connections if (task := c.serving) is not None]
        if serving:
            await asyncio.wait(serving, timeout=timeout_s)

    def parse(self, head: bytes) -> tuple[Any, int]:
        """The request of a whole head and its body's length; (None, 0) to hand the connection over."""
        raise NotImplementedError

    async def answer(self, request: Any, transport: asyncio.Transport) -> Answer | None:
        raise NotImplementedError

    def answered(self, request: Any, status: int) -> None:
        """Told of each answer written."""

    def late(self) -> Answer:
        """The answer to a body that did not arrive within body_s."""
        raise NotImplementedError

    def hand_over(self, transport: asyncio.Transport, data: bytes) -> None:
        raise NotImplementedError


def hand_to_server(server: web.Server, transport: asyncio.Transport, data: bytes) -> None:
    """From now on the aiohttp server serves this connection, starting with `data`."""
    handler = server()
    transport.set_protocol(handler)
    handler.connection_made(transport)
    if data:
        handler.data_received(data)


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def http_date() -> str:
    """The Date header's value, made once a second."""
    return _http_date(int(time.time()))


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(second))


def reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def render(
    status: int, headers: Iterable[tuple[str, str]], body: bytes, keep_alive: bool, head_only: bool = False
) -> bytes:
    """The answer's bytes: the service's headers (Date and Server included: see `http_date`), then
    Content-Length and Connection. Header names and values must not hold CR or LF (the service checks)."""
    fields = "".join([f"{name}: {value}\r\n" for name, value in headers])
    bodiless = status < 200 or status in (204, 304)
    length = "" if bodiless else f"Content-Length: {len(body)}\r\n"
    close = "" if keep_alive else "Connection: close\r\n"
    text = f"HTTP/1.1 {status} {reason(status)}\r\n{fields}{length}{close}\r\n".encode()
    return text if bodiless or head_only else text + body


class LeanConnection(asyncio.Protocol):
    def __init__(self, service: LeanService, received: bytes = b"") -> None:
        self._service = service
        self._received = received
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._handed_over = False
        self._loop = asyncio.get_running_loop()
        self._active = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_s = service.idle_s  # a keep-alive connection's wait, and a head's whole arrival
        self._body_s = service.body_s  # a body's whole arrival once its head is in
        self._started: float | None = None  # loop time the request in the buffer began to arrive
        self._body_timer: asyncio.TimerHandle | None = None
        self._paused = False  # reading paused: a request is being answered and MAX_HEAD more wait

    @property
    def serving(self) -> asyncio.Task[None] | None:
        """The task answering this connection's current request, if any."""
        return self._task

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._service.connections.add(self)
        self._idle_timer = self._loop.call_later(self._idle_s, self._idle_check)
        if self._received:  # before anything the transport reads: they came first
            received, self._received = self._received, b""
            self.data_received(received)

    def connection_lost(self, exc: Exception | None) -> None:
        self._service.connections.discard(self)
        self._transport = None
        self._stop_timers()
        if self._task is not None:
            self._task.cancel()

    def _idle_check(self) -> None:
        """One timer per connection, re-armed for what is left, rather than one per request."""
        self._idle_timer = None
        if self._handed_over or self._transport is None:
            return
        now = self._loop.time()
        if self._task is None and self._body_timer is None and self._buf and self._started is not None:
            # A head still incomplete after idle_s (however it trickles in): closed, as aiohttp does.
            if now - self._started >= self._idle_s:
                self._transport.close()
                return
            left = self._started + self._idle_s - now
        else:
            left = self._active + self._idle_s - now
            if left <= 0 and self._task is None and not self._buf:
                self._transport.close()
                return
        self._idle_timer = self._loop.call_later(max(left, 0.05), self._idle_check)

    def data_received(self, data: bytes) -> None:
        if not self._buf:
            self._started = self._loop.time()
        self._buf += data
        self._active = self._loop.time()
        if self._task is None:
            self._next()
        elif len(self._buf) > MAX_HEAD and not self._paused and self._transport is not None:
            # Pipelined requests wait for the one being answered; past MAX_HEAD of them, stop reading (as
            # aiohttp's flow control does), so that a client cannot make the buffer grow without bound.
            self._paused = True
            self._transport.pause_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _next(self) -> None:
        """Take the next whole request in the buffer, if there is one."""
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                self._hand_over()
            return
        request, length = self._service.parse(bytes(self._buf[:end]))
        if request is None:
            self._hand_over()
            return
        if len(self._buf) < end + 4 + length:
            if self._body_timer is None:
                self._body_timer = self._loop.call_later(self._body_s, self._body_late)
            return
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        request.body = bytes(self._buf[end + 4 : end + 4 + length])
        if self._service.keep_raw:
            request.raw = bytes(self._buf[: end + 4 + length])
        del self._buf[: end + 4 + length]
        self._started = self._loop.time() if self._buf else None
        self._task = self._loop.create_task(self._serve(request))

    def _body_late(self) -> None:
        """The body did not arrive within body_s: the service's 408, and the connection closed."""
        self._body_timer = None
        transport = self._transport
        if transport is None or self._handed_over or self._task is not None:
            return
        status, headers, body = self._service.late()
        transport.write(render(status, headers, body, keep_alive=False))
        transport.close()

    async def _serve(self, request: LeanRequest) -> None:
        transport = self._transport
        if transport is None:
            return
        answer = await self._service.answer(request, transport)
        self._task = None
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        if answer is None:  # left to someone else: the connection goes, this request first
            self._buf[:0] = request.raw
            self._hand_over()
            return
        status, headers, body = answer
        self._service.answered(request, status)
        if self._transport is None:
            return
        self._active = self._loop.time()
        transport.write(render(status, headers, body, request.keep_alive, request.head_only))
        if not request.keep_alive:
            transport.close()
        elif self._buf:
            self._next()

    def _hand_over(self) -> None:
        """From now on the service's other server serves this connection, starting with what is buffered."""
        transport = self._transport
        if transport is None or self._handed_over:
            return
        self._handed_over = True
        self._service.connections.discard(self)
        self._stop_timers()
        data, self._buf = bytes(self._buf), bytearray()
        self._service.hand_over(transport, data)

    def _stop_timers(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
