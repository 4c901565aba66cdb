"""The HTTP gateway's lean path: plain requests parsed and answered without aiohttp (router/edge/lean.py).

Why: under load the gateway's aiohttp server (parser, request and response objects, writer) was a large part
of the router's CPU per gateway request (docs/performance.md, "The gateway's lean path"). The lean path
parses the head itself and then runs the very same steps as the aiohttp handler (`HttpSource.answer`: CORS,
method and size checks, routing, the event, the call, the reply), so the answer is the same either way; a
test compares both paths answer by answer (tests/unit/test_http_lean.py).

It takes an HTTP/1.1 request with:

* a method the gateway serves (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS) and an origin-form target
  (`/...`, ASCII);
* one Host; no Transfer-Encoding, Content-Encoding, Expect or Upgrade; at most one Content-Length, and that
  at most the source's `max_body_mb`;
* a request line and header lines within the source's `max_url_bytes`, `max_header_bytes` and
  `max_headers`, header names that are tokens, a head in ASCII (header values in UTF-8 go to aiohttp,
  which reads them the same way), and no control characters.

The first request on a connection that is anything else (HTTP/1.0, a chunked or compressed body, `Expect:
100-continue`, a malformed or oversized head, ...) hands the connection for good to the source's aiohttp
server (router.edge.http.GuardedServer), which answers it, or refuses it in the gateway's form, as before.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from router.edge.http import HttpLimits
from router.edge.lean import Answer, Headers, LeanService, hand_to_server, http_date
from router.sources.http.events import RequestFacts, new_request_id
from router.sources.http.response import TOKEN, Reply, error_reply


class Gateway(Protocol):
    """What the lean path uses of its http source (router/sources/http/source.py, `HttpSource`)."""

    max_bytes: int
    port: int | None
    config: Any
    version: str

    async def answer(self, request: Any) -> Reply: ...


METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # but CR, LF: those only as CRLF (`_lone`)
LEFT_TO_AIOHTTP = ("transfer-encoding", "content-encoding", "expect", "upgrade")
SINGLE = frozenset({"content-length", "host"})  # two of these: aiohttp refuses the request


class GatewayRequest:
    """One request on the lean path, with the attributes of aiohttp's request that the gateway reads."""

    __slots__ = (
        "body",
        "content_length",
        "head_only",
        "headers",
        "keep_alive",
        "local_port",
        "method",
        "pairs",
        "raw",
        "raw_path",
        "remote",
    )

    def __init__(
        self, method: str, raw_path: str, pairs: list[tuple[str, str]], headers: Headers, length: int | None
    ):
        self.method = method
        self.raw_path = raw_path  # the target as sent, query included (aiohttp's raw_path)
        self.pairs = pairs  # arrival order, original spelling
        self.headers = headers
        self.content_length = length
        self.body = b""
        self.raw = b""
        self.keep_alive = "close" not in headers.get("connection", "").lower()
        self.head_only = method == "HEAD"
        self.remote: str | None = None
        self.local_port = 0

    def facts(self, request_id: str, raw_path: str, raw_query: str, body: bytes) -> RequestFacts:
        return RequestFacts(
            method=self.method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=self.pairs,
            body=body,
            source_ip=self.remote or "127.0.0.1",
            time=time.time(),
            request_id=request_id,
            local_port=self.local_port,
        )


class GatewayFront(LeanService):
    """The http source's `LeanService`; `server` is its aiohttp server, for what the lean path leaves."""

    def __init__(self, source: Gateway, server: web.Server, limits: HttpLimits) -> None:
        super().__init__(limits.idle_timeout_s, limits.body_timeout_s)
        self.source = source
        self.server = server
        self.limits = limits

    def parse(self, head: bytes) -> tuple[GatewayRequest | None, int]:
        """The request and its body length, or (None, 0) for aiohttp to answer."""
        if not head.isascii() or CONTROL.search(head) or _lone(head):
            return None, 0
        limits = self.limits
        lines = head.decode("ascii").split("\r\n")
        first = lines[0]
        if len(first) > limits.max_url_bytes or len(lines) - 1 > limits.max_headers:
            return None, 0
        parts = first.split(" ")
        if len(parts) != 3 or parts[2] != "HTTP/1.1" or parts[0] not in METHODS or parts[1][:1] != "/":
            return None, 0
        pairs: list[tuple[str, str]] = []
        headers = Headers()
        max_line = limits.max_header_bytes
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or len(line) > max_line or not TOKEN.fullmatch(name):
                return None, 0
            value = value.strip(" \t")
            lower = name.lower()
            if lower not in headers:
                headers[lower] = value
            elif lower in SINGLE:
                return None, 0
            pairs.append((name, value))
        if "host" not in headers or any(name in headers for name in LEFT_TO_AIOHTTP):
            return None, 0
        length_text = headers.get("content-length")
        length = None
        if length_text is not None:
            if not length_text.isdigit() or int(length_text) > self.source.max_bytes:
                return None, 0
            length = int(length_text)
        return GatewayRequest(parts[0], parts[1], pairs, headers, length), length or 0

    async def answer(self, request: GatewayRequest, transport: asyncio.Transport) -> Answer:
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        request.remote = peer[0] if peer else None
        request.local_port = sock[1] if sock else (self.source.port or 0)
        reply = await self.source.answer(request)
        return reply.status, _common(reply), reply.body

    def late(self) -> Answer:
        reply = error_reply(408)
        reply.headers.append((self.source.config.request_id_header_name, new_request_id(self.source.version)))
        return reply.status, _common(reply), reply.body

    def hand_over(self, transport: asyncio.Transport, data: bytes) -> None:
        hand_to_server(self.server, transport, data)


def _lone(head: bytes) -> bool:
    """A CR or LF in the head that is not part of a CRLF."""
    pairs = head.count(b"\r\n")
    return head.count(b"\r") != pairs or head.count(b"\n") != pairs


def _common(reply: Reply) -> list[tuple[str, str]]:
    """The reply's headers with Date and Server, as aiohttp adds them (unless the function set them)."""
    names = {name.lower() for name, _ in reply.headers}
    headers = list(reply.headers)
    if "date" not in names:
        headers.append(("Date", http_date()))
    if "server" not in names:
        headers.append(("Server", SERVER_SOFTWARE))
    return headers
