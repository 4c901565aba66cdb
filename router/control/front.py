"""The control plane's HTTP front: synchronous Invoke on a lean HTTP/1.1 path, everything else on aiohttp.

Why: a synchronous Invoke is the call the router serves most, and under load aiohttp's request machinery
and the app's three middlewares were about a third of the daemon's CPU per call (docs/performance.md). This
protocol parses the request itself and runs the same checks through the same code (router/control/invoke.py
`prepare`, `call_sync`; router/control/errors.py for the error shape) as the aiohttp app, so the answer is the
same either way.

Contract:

* `Front(plane, server)`; `server` is the aiohttp `web.Server` of the control-plane app (`AppRunner.server`).
  `front.protocol` is the factory for `loop.create_server`.
* A connection starts on the lean path. It answers itself `POST /2015-03-31/functions/{name}/invocations` and
  `POST /invoke/{name}` when the request has a Content-Length body of at most 6 MB, no Transfer-Encoding,
  Content-Encoding or Expect, no `X-Amz-Invocation-Type` but RequestResponse, and a name without an encoded
  `/`. It does what the
  app's middlewares do: a fresh request id on every error answer (x-amzn-RequestId), the token check when
  server.auth_token is set, `router_api_requests_total` by route and status, ServiceException (logged) for an
  unexpected failure.
* The first request it does not take (another route or method, Event or DryRun, chunked, too large, ...)
  hands the connection to aiohttp's RequestHandler for good, with that request's bytes and all that follow.
* One request at a time per connection: what arrives meanwhile waits, and pipelined requests are answered in
  order. `Connection: close` and HTTP/1.0 without keep-alive close the connection after the answer.
* `close()` closes the connections still on the lean path (after the dispatcher drained; aiohttp's runner
  closes the ones it took).
* `Front(plane, server, hand_over=...)`: a front process (router/process_main.py) gives what it does not
  take to the primary process instead of aiohttp: `hand_over(transport, data)` gets the connection and the
  bytes read from it and not answered. Its `answer()` may also return None for a request it leaves to the
  primary (that request's bytes are handed over too).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from router.control import invoke
from router.control.auth import check_token
from router.control.errors import ApiError
from router.control.plane import ControlPlane
from router.control.requests import check_content_type
from router.core import errors as E

log = logging.getLogger("router.control")

LAMBDA_PREFIX = "/2015-03-31/functions/"
LAMBDA_SUFFIX = "/invocations"
ALIAS_PREFIX = "/invoke/"
MAX_HEAD = 64 * 1024
SINGLE = frozenset({"content-length", "content-type", "host", "x-amz-invocation-type", "x-amz-log-type"})
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


class Headers(dict[str, str]):
    """Request headers by lower-case name; `get` takes any case (as aiohttp's CIMultiDict does)."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)


class _Request:
    __slots__ = ("alias", "body", "headers", "keep_alive", "name", "qualifier", "raw")

    def __init__(self, alias: bool, name: str, qualifier: str | None, headers: Headers, keep_alive: bool):
        self.alias = alias
        self.name = name
        self.qualifier = qualifier
        self.headers = headers
        self.keep_alive = keep_alive
        self.body = b""
        self.raw = b""  # the request's bytes as received (kept for a hand-over of the connection)


HandOver = Callable[[asyncio.Transport, bytes], None]


class Front:
    def __init__(self, plane: ControlPlane, server: web.Server | None, hand_over: HandOver | None = None):
        self.plane = plane
        self.server = server
        self.hand_over = hand_over
        self.token = plane.config.server.auth_token
        self.connections: set[FrontConnection] = set()
        self._counter = None
        self._ok: dict[bool, Any] = {}
        if plane.metrics is not None:
            self._counter = plane.metrics.counter(
                "router_api_requests_total",
                "Control-plane requests, by operation and status",
                ("operation", "status"),
            )
            self._ok = {alias: self._counter.labels(_operation(alias), "200") for alias in (False, True)}
        self._date_second = -1
        self._date = b""

    def protocol(self, received: bytes = b"") -> FrontConnection:
        """A connection's protocol; `received`: bytes read from it elsewhere (a front process), read first."""
        return FrontConnection(self, received)

    def count(self, alias: bool, status: int, n: int = 1) -> None:
        if self._counter is None:
            return
        if status == 200:
            self._ok[alias].inc(n)
        else:
            self._counter.labels(_operation(alias), str(status)).inc(n)

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
        return self._date

    def close(self) -> None:
        for connection in list(self.connections):
            connection.close()

    async def answer(self, request: _Request) -> tuple[int, dict[str, str], bytes] | None:
        """What the aiohttp app would answer (its middlewares and invoke handler, in their order)."""
        try:
            if self.token:
                error = check_token(request.headers.get("Authorization"), self.token)
                if error is not None:
                    raise error
            if not request.alias:
                check_content_type(request.headers.get("Content-Type"))
            call = invoke.prepare(self.plane, request.name, request.qualifier, request.headers)
            payload = request.body or b"{}"
            invoke.check_json(payload)
            headers, body = await invoke.call_sync(self.plane, call, payload)
            return 200, headers, body
        except ApiError as e:
            return e.wire(str(uuid.uuid4()))
        except Exception:
            request_id = str(uuid.uuid4())
            log.exception(
                "control plane: unexpected error",
                extra={"fields": {"path": _operation(request.alias), "request_id": request_id}},
            )
            error = ApiError(500, E.SERVICE_EXCEPTION, "The router failed to process the request")
            return error.wire(request_id)


def _operation(alias: bool) -> str:
    return f"POST {invoke.ALIAS_ROUTE if alias else invoke.LAMBDA_ROUTE}"


class FrontConnection(asyncio.Protocol):
    def __init__(self, front: Front, received: bytes = b"") -> None:
        self._front = front
        self._received = received
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._handed_over = False
        self._loop = asyncio.get_running_loop()
        self._active = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None
        server = front.plane.config.server
        self._idle_s = server.idle_timeout_s  # a keep-alive connection's wait, and a head's whole arrival
        self._body_s = server.body_timeout_s  # a body's whole arrival once its head is in
        self._started: float | None = None  # loop time the request in the buffer began to arrive
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._front.connections.add(self)
        self._idle_timer = self._loop.call_later(self._idle_s, self._idle_check)
        if self._received:  # before anything the transport reads: they came first
            received, self._received = self._received, b""
            self.data_received(received)

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.connections.discard(self)
        self._transport = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._body_timer is not None:
            self._body_timer.cancel()
        if self._task is not None:
            self._task.cancel()

    def _idle_check(self) -> None:
        """One timer per connection, re-armed for what is left, rather than one per request."""
        self._idle_timer = None
        if self._handed_over or self._transport is None:
            return
        now = self._loop.time()
        if self._task is None and self._body_timer is None and self._buf and self._started is not None:
            # A head still incomplete after idle_timeout_s (however it trickles in): closed, as aiohttp does.
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
        request, length = _parse(bytes(self._buf[:end]))
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
        if self._front.hand_over is not None:
            request.raw = bytes(self._buf[: end + 4 + length])
        del self._buf[: end + 4 + length]
        self._started = self._loop.time() if self._buf else None
        self._task = self._loop.create_task(self._serve(request))

    def _body_late(self) -> None:
        """The body did not arrive within body_timeout_s: 408 in Lambda's form, and the connection closed."""
        self._body_timer = None
        transport = self._transport
        if transport is None or self._handed_over or self._task is not None:
            return
        error = ApiError(408, E.REQUEST_TIMEOUT, f"The request body did not arrive within {self._body_s:g}s")
        status, headers, body = error.wire(str(uuid.uuid4()))
        transport.write(self._render(status, headers, body, keep_alive=False))
        transport.close()

    async def _serve(self, request: _Request) -> None:
        answer = await self._front.answer(request)
        self._task = None
        if answer is None:  # left to the primary process: the connection goes, this request first
            self._buf[:0] = request.raw
            self._hand_over()
            return
        status, headers, body = answer
        self._front.count(request.alias, status)
        transport = self._transport
        if transport is None:
            return
        self._active = self._loop.time()
        transport.write(self._render(status, headers, body, request.keep_alive))
        if not request.keep_alive:
            transport.close()
        elif self._buf:
            self._next()

    def _render(self, status: int, headers: dict[str, str], body: bytes, keep_alive: bool) -> bytes:
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
        head.extend(f"{name}: {value}" for name, value in headers.items())
        head.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            head.append("Connection: close")
        text = "\r\n".join(head).encode("latin-1")
        return b"".join((text, b"\r\nDate: ", self._front.date(), b"\r\nServer: router\r\n\r\n", body))

    def _hand_over(self) -> None:
        """From now on aiohttp serves this connection, starting with what is buffered."""
        transport = self._transport
        if transport is None or self._handed_over:
            return
        self._handed_over = True
        self._front.connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        data, self._buf = bytes(self._buf), bytearray()
        if self._front.hand_over is not None:
            self._front.hand_over(transport, data)
            return
        assert self._front.server is not None
        handler = self._front.server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if data:
            handler.data_received(data)


def _parse(raw: bytes) -> tuple[_Request | None, int]:
    """The request and its body length, or (None, 0) when the lean path does not take it."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "POST" or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        return None, 0
    target = _target(parts[1])
    if target is None:
        return None, 0
    alias, name, qualifier = target
    headers = Headers()
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if not sep:
            return None, 0
        field = key.strip().lower()
        if field in headers and field in SINGLE:
            return None, 0  # aiohttp's path refuses what is ambiguous (two lengths) in the listener's form
        headers.setdefault(field, value.strip())
    if "transfer-encoding" in headers or "expect" in headers or "content-encoding" in headers:
        return None, 0  # aiohttp's path reads those (router.edge.bodies decodes with its caps)
    if headers.get("x-amz-invocation-type", invoke.REQUEST_RESPONSE) != invoke.REQUEST_RESPONSE:
        return None, 0
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit() or int(length_text) > invoke.SYNC_LIMIT:
        return None, 0
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if parts[2] == "HTTP/1.1" else connection == "keep-alive"
    return _Request(alias, name, qualifier, headers, keep_alive), int(length_text)


def _target(target: str) -> tuple[bool, str, str | None] | None:
    """(alias route?, function name, Qualifier) of an Invoke URL, or None for anything else."""
    path, _, query = target.partition("?")
    if path.startswith(LAMBDA_PREFIX) and path.endswith(LAMBDA_SUFFIX):
        alias, name = False, path[len(LAMBDA_PREFIX) : -len(LAMBDA_SUFFIX)]
    elif path.startswith(ALIAS_PREFIX):
        alias, name = True, path[len(ALIAS_PREFIX) :]
    else:
        return None
    if "%" in name:
        name = unquote(name)
    if not name or "/" in name or "{" in name or "}" in name:
        return None
    qualifier = None
    if query:
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "Qualifier":
                qualifier = value
                break
    return alias, name, qualifier
