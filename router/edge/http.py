"""aiohttp servers that answer malformed HTTP in the listener's own form, with one log line at most.

aiohttp parses requests itself; when a request cannot be parsed (request line or header too long, too many
headers, a bad method, URL or version, broken framing) it answers a text/plain 400 and logs
"Error handling request" at ERROR with a traceback, which lets anyone without credentials flood the log.
`GuardedServer` (for `web.Server`) and `GuardedAppRunner` (for a `web.Application`) make every connection
a `GuardedHandler`, which instead:

* picks the status (`classify`): 414 for a request line (URL) longer than `max_url_bytes`, 431 for a header
  line longer than `max_header_bytes` or more than `max_headers` headers, 505 for an HTTP version other
  than 1.0 and 1.1 (also one the parser lets through, as HTTP/0.9 or 2.0), 400 for the rest;
* answers with the listener's `render(status, reason)` (Lambda's JSON error on the control plane, API
  Gateway's `{"message": ...}` on the gateway) and closes the connection;
* logs the refusal through the listener's `RejectLog` (one rate-limited INFO line, no traceback).

A client's error found later, while a handler reads the body or while aiohttp drains what a handler left
unread, is treated the same way, and a client that hangs up is not logged at all; an exception that is not
the client's (a bug) is still logged with its traceback and answered 500 in the listener's form.

`HttpLimits` are the knobs a config gives each listener: the sizes above, `idle_timeout_s` (a connection
that has not sent a whole request head within it is closed, which also ends a slow-header client) and
`body_timeout_s` (for router.edge.bodies.read_body). Every listener runs with aiohttp's auto_decompress off:
bodies are decoded by read_body, under its caps.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, HttpProcessingError, LineTooLong

from router.edge.rejects import RejectLog

Render = Callable[[int, str], web.Response]
HTTP1 = (HttpVersion10, HttpVersion11)


@dataclass(frozen=True)
class HttpLimits:
    max_url_bytes: int = 8190
    max_header_bytes: int = 8190
    max_headers: int = 128
    idle_timeout_s: float = 75.0
    body_timeout_s: float = 60.0

    @classmethod
    def of(cls, settings: Any) -> HttpLimits:
        """The limits a listener's settings hold (server, or an http source: fields of the same names)."""
        return cls(
            max_url_bytes=settings.max_url_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            idle_timeout_s=settings.idle_timeout_s,
            body_timeout_s=settings.body_timeout_s,
        )

    def handler_args(self) -> dict[str, Any]:
        """aiohttp RequestHandler arguments for these limits."""
        return {
            "max_line_size": self.max_url_bytes,
            "max_field_size": self.max_header_bytes,
            "max_headers": self.max_headers,
            "keepalive_timeout": self.idle_timeout_s,
            "auto_decompress": False,
        }


@dataclass(frozen=True)
class Guard:
    """What a guarded server needs from its listener."""

    render: Render
    rejects: RejectLog
    limits: HttpLimits


def classify(exc: HttpProcessingError, limits: HttpLimits) -> tuple[int, str]:
    """The status and a one-line reason for a request aiohttp could not parse."""
    message = " ".join(str(exc.message).split())
    if isinstance(exc, LineTooLong):
        if _in_request_line(exc):
            return 414, f"the request line is longer than {limits.max_url_bytes} bytes"
        return 431, f"a header line is longer than {limits.max_header_bytes} bytes"
    if "Too many headers" in message:
        return 431, f"more than {limits.max_headers} headers"
    if isinstance(exc, BadHttpMethod):
        if "HTTPS" in message:
            return 400, "TLS sent to a plain-HTTP port"
        return 400, "bad method in the request line"
    if isinstance(exc, BadStatusLine) and "version" in message.lower():
        return 505, "unsupported HTTP version"
    return 400, message[:200] or type(exc).__name__


def _in_request_line(exc: LineTooLong) -> bool:
    # The C parser raises from its URL callback (cb_on_url), the Python one says "Status line".
    if "Status line" in str(exc.args[0] if exc.args else ""):
        return True
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    return any("url" in frame.name for frame in frames)


class GuardedHandler(web.RequestHandler):
    def __init__(self, manager: web.Server, *, guard: Guard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            status, reason = classify(exc, self._guard.limits)
            self._guard.rejects.refused(request.remote, status, reason)
        elif isinstance(exc, ConnectionError):
            status, reason = 400, "the client went away"  # nobody to tell, nothing to log
        elif exc is not None:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            status, reason = 500, "the router failed to process the request"
        else:
            reason = "the request could not be handled"
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response")
        response = self._guard.render(status, reason)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, ConnectionError):
            return  # the client hung up while aiohttp drained what a handler left unread
        if isinstance(exc, HttpProcessingError):
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            status, reason = classify(exc, self._guard.limits)
            self._guard.rejects.refused(peer[0] if peer else None, status, reason)
            return
        super().log_exception(*args, **kw)


def _guarded(handler: Any, guard: Guard) -> Any:
    """`handler`, for HTTP/1.0 and 1.1 requests; 505 for the rest, which aiohttp's parser lets through (a
    request line without a version, taken as HTTP/0.9, or "HTTP/2.0" in a text request line). An HTTP
    error raised outside the handler's own error handling (a web.Application answers an unknown `Expect`
    with 417 before any middleware runs) is answered in the listener's form too."""

    async def checked(request: web.BaseRequest) -> web.StreamResponse:
        if request.version not in HTTP1:
            version = f"HTTP/{request.version[0]}.{request.version[1]}"
            return _refuse(guard, request, 505, f"{version} is not served (HTTP/1.0 and 1.1 are)")
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _refuse(guard, request, e.status, e.text or e.reason)

    return checked


def _refuse(guard: Guard, request: web.BaseRequest, status: int, reason: str) -> web.Response:
    guard.rejects.refused(request.remote, status, reason)
    response = guard.render(status, reason)
    response.force_close()
    return response


class GuardedServer(web.Server):
    """A `web.Server` whose connections are GuardedHandlers, serving HTTP/1.0 and 1.1 only."""

    def __init__(self, handler: Any, *, guard: Guard, **kwargs: Any) -> None:
        super().__init__(_guarded(handler, guard), **kwargs)
        self.guard = guard

    def __call__(self) -> web.RequestHandler:
        return GuardedHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """A `web.AppRunner` serving its application through a GuardedServer."""

    def __init__(self, app: web.Application, *, guard: Guard, **kwargs: Any) -> None:
        super().__init__(app, **guard.limits.handler_args(), **kwargs)
        self._guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's startup, builds aiohttp's own Server
        return GuardedServer(
            plain.request_handler,
            guard=self._guard,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **plain._kwargs,
        )
