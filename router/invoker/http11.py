"""A small HTTP/1.1 server protocol for the Runtime API: one request at a time per connection, keep-alive.

Why not aiohttp: one listener is opened per instance, and the warm path crosses it twice per call (the event
out on `/next`, the result back on `/response`); a lean asyncio Protocol keeps both the listener start-up and
the per-request cost to a few tens of microseconds.

Contract:

* `serve(handler)` returns a protocol factory for `loop.create_server`. `handler.accept(transport)` is asked
  once per connection: False closes it at once (the peer is not the instance), a Future[bool] defers the
  answer (what arrives meanwhile is held unread); then
  `handler.handle(request) -> Response | Future[Response]` once per request. A future lets `/next` block;
  when the connection drops while it is pending, the future is cancelled.
* Bodies: Content-Length or chunked; `Expect: 100-continue` is answered. A body longer than `max_body`
  is not buffered: with a Content-Length it is read and discarded and the request is handed over with
  `too_large=True` (so the handler can answer 413 and the client can read it); a chunked one over the limit
  gets 413 (as soon as a chunk's size line says so) and the connection is closed.
* Malformed requests get a JSON 400 (431 for a head over 64 KB) and the connection is closed, in bounded
  memory: a bad request line or header line, a Content-Length that is not decimal digits, both
  Content-Length and chunked, a chunk size that is not hex or a size line over 4 KB, chunk data not ended
  by CRLF.
* Pipelining: requests that arrive back to back are answered in order, and the answers to requests with more
  already buffered behind them are held and sent in one write with the next answer (also one that comes
  later, from a future). The Python runtime sends its answer and the request for the next event together,
  so each call costs one write each way (each write wakes the other process, which dominates the warm path).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Protocol, cast

import msgspec

MAX_HEAD = 64 * 1024
MAX_CHUNK_LINE = 4096
REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class Request(msgspec.Struct):
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    too_large: bool = False


class Response(msgspec.Struct):
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = []
    content_type: str = "application/json"
    wire: bytes = b""  # its keep-alive bytes, for a response made once (`fixed`)


class Parked(asyncio.Future[Response]):
    """A future answer that is written the moment its result is set: a done callback would only run on the
    next turn of the event loop (Runtime API /next hands out every event through one of these)."""

    _on_result: Callable[[Response], None] | None = None

    def set_result(self, result: Response) -> None:
        super().set_result(result)
        if self._on_result is not None:
            on_result, self._on_result = self._on_result, None
            on_result(result)


class Handler(Protocol):
    def accept(self, transport: asyncio.Transport) -> bool | asyncio.Future[bool]: ...

    def handle(self, request: Request) -> Response | asyncio.Future[Response]: ...


def serve(handler: Handler, *, max_body: int) -> Callable[[], asyncio.BaseProtocol]:
    return lambda: Connection(handler, max_body)


def fixed(response: Response) -> Response:
    """A response that never changes (do not modify it afterwards): rendered once here, for every keep-alive
    answer it gives (the Runtime API's 202 ends every call)."""
    response.wire = render(response, True)
    return response


def render(response: Response, keep_alive: bool) -> bytes:
    """The answer's bytes: status line, Content-Type, Content-Length, its own headers, Connection: close."""
    if keep_alive and response.wire:
        return response.wire
    extra = "".join([f"{name}: {value}\r\n" for name, value in response.headers]) if response.headers else ""
    close = "" if keep_alive else "Connection: close\r\n"
    return (
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}\r\n"
        f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n{extra}{close}\r\n"
    ).encode("latin-1") + response.body


class _Head(msgspec.Struct):
    request: Request
    keep_alive: bool
    length: int | None  # None: chunked


READ_CHUNK = 64 * 1024


class Connection(asyncio.BufferedProtocol):
    def __init__(self, handler: Handler, max_body: int) -> None:
        self._handler = handler
        self._max_body = max_body
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        # Read into one reused buffer: a plain Protocol gets a fresh 256 KB bytes object (mmap'ed and
        # unmapped again) for every read.
        self._chunk = bytearray(READ_CHUNK)
        self._view = memoryview(self._chunk)
        self._head: _Head | None = None
        self._discard = 0  # bytes of an oversized body still to drop
        self._chunks: list[bytes] = []
        self._chunked_size = 0
        self._pending: asyncio.Future[Response] | None = None
        self._out: list[bytes] = []  # answers held back for a pipelined request behind them
        self._verdict: asyncio.Future[bool] | None = None  # accept() not decided yet
        self._closed = False

    # asyncio.Protocol --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: other event loops' transports (uvloop's) do not derive from asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        verdict = self._handler.accept(self._transport)
        if isinstance(verdict, asyncio.Future):
            self._verdict = verdict
            verdict.add_done_callback(self._verified)
        elif not verdict:
            self._closed = True
            self._transport.abort()

    def _verified(self, verdict: asyncio.Future[bool]) -> None:
        self._verdict = None
        if self._closed:
            return
        if verdict.cancelled() or not verdict.result():
            self._closed = True
            if self._transport is not None:
                self._transport.abort()
            return
        self._parse_buffered()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self._closed:
            return
        self._buf += data
        if self._verdict is None:
            self._parse_buffered()

    def _parse_buffered(self) -> None:
        try:
            self._parse()
        except _BadRequest as e:
            self._fail(e.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._verdict is not None:
            self._verdict.cancel()
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()

    # parsing -----------------------------------------------------------------------------------------------

    def _parse(self) -> None:
        while not self._closed and self._pending is None:
            if self._head is None and not self._read_head():
                return
            assert self._head is not None
            body = self._read_body(self._head)
            if body is None:
                return
            head, self._head = self._head, None
            head.request.body = body
            self._dispatch(head)
        if self._pending is None:
            self._flush()

    def _read_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0 or end > MAX_HEAD:
            if len(self._buf) > MAX_HEAD:
                raise _BadRequest(431)
            return False
        raw = self._buf[:end].decode("latin-1")
        del self._buf[: end + 4]
        self._head = head = _parse_head(raw)
        length = head.length
        if length is not None and length > self._max_body:
            head.request.too_large = True
            self._discard = length
        headers = head.request.headers
        if "expect" in headers and headers["expect"].lower() == "100-continue":
            self._out.append(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._flush()
        return True

    def _read_body(self, head: _Head) -> bytes | None:
        if head.length is None:
            return self._read_chunked()
        if head.request.too_large:
            dropped = min(self._discard, len(self._buf))
            del self._buf[:dropped]
            self._discard -= dropped
            return b"" if self._discard == 0 else None
        if len(self._buf) < head.length:
            return None
        body = bytes(self._buf[: head.length])
        del self._buf[: head.length]
        return body

    def _read_chunked(self) -> bytes | None:
        while True:
            eol = self._buf.find(b"\r\n")
            if eol < 0 or eol > MAX_CHUNK_LINE:
                if len(self._buf) > MAX_CHUNK_LINE:
                    raise _BadRequest(400)
                return None
            digits = bytes(self._buf[:eol]).split(b";", 1)[0].strip()
            if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                raise _BadRequest(400)
            size = int(digits, 16)
            if self._chunked_size + size > self._max_body:
                raise _BadRequest(413)
            if size == 0:
                # Last chunk, then optional trailers up to an empty line.
                end = self._buf.find(b"\r\n\r\n", eol)
                if end < 0:
                    return None
                del self._buf[: end + 4]
                body, self._chunks, self._chunked_size = b"".join(self._chunks), [], 0
                return body
            if len(self._buf) < eol + 2 + size + 2:
                return None
            if self._buf[eol + 2 + size : eol + 2 + size + 2] != b"\r\n":
                raise _BadRequest(400)
            self._chunked_size += size
            self._chunks.append(bytes(self._buf[eol + 2 : eol + 2 + size]))
            del self._buf[: eol + 2 + size + 2]

    # answering ---------------------------------------------------------------------------------------------

    def _dispatch(self, head: _Head) -> None:
        answer = self._handler.handle(head.request)
        if isinstance(answer, Response):
            self._write(answer, head.keep_alive)
            return
        self._pending = answer
        keep_alive = head.keep_alive
        if isinstance(answer, Parked):
            answer._on_result = lambda response: self._answered(response, keep_alive)
        else:
            answer.add_done_callback(
                lambda fut: self._answered(None if fut.cancelled() else fut.result(), keep_alive)
            )

    def _answered(self, response: Response | None, keep_alive: bool) -> None:
        self._pending = None
        if response is None or self._closed:
            return
        self._write(response, keep_alive)
        if not self._closed and self._buf:
            try:
                self._parse()
            except _BadRequest as e:
                self._fail(e.status)

    def _write(self, response: Response, keep_alive: bool) -> None:
        """Queue an answer; it is sent now unless another request is already buffered behind it."""
        if self._transport is None or self._closed:
            return
        self._out.append(render(response, keep_alive))
        if not keep_alive:
            self._flush()
            self._closed = True
            self._transport.close()
        elif not self._buf:
            self._flush()

    def _flush(self) -> None:
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        if self._transport is not None and not self._closed:
            self._transport.write(data)

    def _fail(self, status: int) -> None:
        body = msgspec.json.encode({"errorMessage": REASONS.get(status, "error"), "errorType": "BadRequest"})
        self._write(Response(status, body), keep_alive=False)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


# The head the router's own bootstraps send (every call's answer and request for the next event): a request
# line, Host and Content-Length, nothing else. One match instead of the general parse below, which gives
# the same for it.
_PLAIN = re.compile(r"(GET|POST) ([!-~]+) HTTP/1\.1\r\nHost: ([!-~]+)\r\nContent-Length: ([0-9]+)")


def _parse_head(raw: str) -> _Head:
    plain = _PLAIN.fullmatch(raw)
    if plain is not None:
        method, target, host, length_text = plain.groups()
        path = target.split("?", 1)[0] if "?" in target else target
        return _Head(
            Request(method, path, {"host": host, "content-length": length_text}), True, int(length_text)
        )
    lines = raw.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400)
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400)
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        if "content-length" in headers:
            raise _BadRequest(400)  # both: which one frames the body is ambiguous (request smuggling)
        length: int | None = None
    else:
        value = headers.get("content-length", "0")
        if not (value.isascii() and value.isdigit()):
            raise _BadRequest(400)
        length = int(value)
    path = target.split("?", 1)[0]
    return _Head(Request(method, path, headers), keep_alive, length)
