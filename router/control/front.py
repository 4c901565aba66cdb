"""The control plane's HTTP front: synchronous Invoke on a lean HTTP/1.1 path, everything else on aiohttp.

Why: a synchronous Invoke is the call the router serves most, and under load aiohttp's request machinery
and the app's three middlewares were about a third of the daemon's CPU per call (docs/performance.md). The
connections are router/edge/lean.py's; this module parses the Invoke request itself and runs the same checks
through the same code (router/control/invoke.py `prepare`, `call_sync`; router/control/errors.py for the
error shape) as the aiohttp app, so the answer is the same either way.

Contract:

* `Front(plane, server)`, a `LeanService`; `server` is the aiohttp `web.Server` of the control-plane app
  (`AppRunner.server`). `front.protocol` is the factory for `loop.create_server`.
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
from router.edge.lean import Answer, Headers, LeanService, hand_to_server, http_date

log = logging.getLogger("router.control")

LAMBDA_PREFIX = "/2015-03-31/functions/"
LAMBDA_SUFFIX = "/invocations"
ALIAS_PREFIX = "/invoke/"
SINGLE = frozenset({"content-length", "content-type", "host", "x-amz-invocation-type", "x-amz-log-type"})


class _Request:
    __slots__ = ("alias", "body", "head_only", "headers", "keep_alive", "name", "qualifier", "raw")

    def __init__(self, alias: bool, name: str, qualifier: str | None, headers: Headers, keep_alive: bool):
        self.alias = alias
        self.name = name
        self.qualifier = qualifier
        self.headers = headers
        self.keep_alive = keep_alive
        self.body = b""
        self.raw = b""  # the request's bytes as received (kept for a hand-over of the connection)
        self.head_only = False


HandOver = Callable[[asyncio.Transport, bytes], None]


class Front(LeanService):
    """The control port's `LeanService` (router/edge/lean.py)."""

    def __init__(self, plane: ControlPlane, server: web.Server | None, hand_over: HandOver | None = None):
        super().__init__(plane.config.server.idle_timeout_s, plane.config.server.body_timeout_s)
        self.plane = plane
        self.server = server
        self._hand_over = hand_over
        self.keep_raw = hand_over is not None  # a front process may leave a request to the primary
        self.token = plane.config.server.auth_token
        self._counter = None
        self._ok: dict[bool, Any] = {}
        if plane.metrics is not None:
            self._counter = plane.metrics.counter(
                "router_api_requests_total",
                "Control-plane requests, by operation and status",
                ("operation", "status"),
            )
            self._ok = {alias: self._counter.labels(_operation(alias), "200") for alias in (False, True)}

    def parse(self, head: bytes) -> tuple[_Request | None, int]:
        return _parse(head)

    def answered(self, request: _Request, status: int) -> None:
        self.count(request.alias, status)

    def count(self, alias: bool, status: int, n: int = 1) -> None:
        if self._counter is None:
            return
        if status == 200:
            self._ok[alias].inc(n)
        else:
            self._counter.labels(_operation(alias), str(status)).inc(n)

    def late(self) -> Answer:
        error = ApiError(408, E.REQUEST_TIMEOUT, f"The request body did not arrive within {self.body_s:g}s")
        status, headers, body = error.wire(str(uuid.uuid4()))
        return status, _common(headers), body

    def hand_over(self, transport: asyncio.Transport, data: bytes) -> None:
        if self._hand_over is not None:
            self._hand_over(transport, data)
            return
        assert self.server is not None
        hand_to_server(self.server, transport, data)

    async def answer(self, request: _Request, transport: asyncio.Transport | None = None) -> Answer | None:
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
            return 200, _common(headers), body
        except ApiError as e:
            status, headers, body = e.wire(str(uuid.uuid4()))
            return status, _common(headers), body
        except Exception:
            request_id = str(uuid.uuid4())
            log.exception(
                "control plane: unexpected error",
                extra={"fields": {"path": _operation(request.alias), "request_id": request_id}},
            )
            error = ApiError(500, E.SERVICE_EXCEPTION, "The router failed to process the request")
            status, headers, body = error.wire(request_id)
            return status, _common(headers), body


def _common(headers: dict[str, str]) -> list[tuple[str, str]]:
    """An answer's headers and the two every answer carries."""
    return [*headers.items(), ("Date", http_date()), ("Server", "router")]


def _operation(alias: bool) -> str:
    return f"POST {invoke.ALIAS_ROUTE if alias else invoke.LAMBDA_ROUTE}"


def _parse(raw: bytes) -> tuple[_Request | None, int]:
    """The request and its body length, or (None, 0) when the lean path does not take it."""
    lines = raw.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target, _, version = rest.partition(" ")
    if method != "POST" or (version != "HTTP/1.1" and version != "HTTP/1.0"):
        return None, 0  # (a space in the target makes the version something else)
    found = _target(target)
    if found is None:
        return None, 0
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if not sep:
            return None, 0
        field = key.strip().lower()
        if field in fields:
            if field in SINGLE:  # aiohttp's path refuses what is ambiguous (two lengths) in its own form
                return None, 0
            continue
        fields[field] = value.strip()
    if "transfer-encoding" in fields or "expect" in fields or "content-encoding" in fields:
        return None, 0  # aiohttp's path reads those (router.edge.bodies decodes with its caps)
    kind = fields.get("x-amz-invocation-type")
    if kind is not None and kind != invoke.REQUEST_RESPONSE:
        return None, 0
    length_text = fields.get("content-length", "0")
    if not (length_text.isascii() and length_text.isdigit()):
        return None, 0
    length = int(length_text)
    if length > invoke.SYNC_LIMIT:
        return None, 0
    connection = fields.get("connection")
    if version == "HTTP/1.1":
        keep_alive = connection is None or connection.lower() != "close"
    else:
        keep_alive = connection is not None and connection.lower() == "keep-alive"
    alias, name, qualifier = found
    return _Request(alias, name, qualifier, Headers(fields), keep_alive), length


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
