"""The gateway's lean path answers exactly as its aiohttp path does (router/sources/http/lean.py).

Each request is sent on a fresh connection twice: as the connection's first request (the lean path takes
it), and after a chunked request (the lean path hands that connection to aiohttp for good). Status,
headers (Date, Server and the request id aside), body and the event the function got must agree. Then what
only the lean path does: pipelining, a body in pieces, the 408, and what it hands over.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from router.sources.http.lean import GatewayRequest
from tests.support import http_answers
from tests.unit.test_http_source import gateway  # noqa: F401  (the fixture)

CHUNKED = b"POST /primer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
VOLATILE_CONTEXT = {"requestId", "time", "timeEpoch", "extendedRequestId", "requestTime", "requestTimeEpoch",
                    "resourceId"}  # fmt: skip
VOLATILE_HEADERS = {"date", "server", "apigw-requestid", "x-amzn-requestid"}


def stable(event: dict[str, Any]) -> dict[str, Any]:
    """The event without what differs from one request to the next (ids, times, the made-up trace id)."""
    event = json.loads(json.dumps(event))
    for key in VOLATILE_CONTEXT:
        event["requestContext"].pop(key, None)
    for field in ("headers", "multiValueHeaders"):
        if event.get(field):
            event[field] = {k: v for k, v in event[field].items() if k.lower() != "x-amzn-trace-id"}
    return event


async def both_paths(port: int, request: bytes) -> tuple[Any, Any]:
    (lean,) = await http_answers(port, [request])
    _, aiohttp_answer = await http_answers(port, [CHUNKED, request])
    return lean, aiohttp_answer


def comparable(answer: tuple[int, list[tuple[str, str]], bytes]) -> tuple[int, list[tuple[str, str]], Any]:
    status, headers, body = answer
    kept = sorted((k, v) for k, v in headers if k not in VOLATILE_HEADERS)
    try:
        value: Any = json.loads(body)
    except ValueError:
        value = body
    if isinstance(value, dict) and "requestContext" in value:
        value = stable(value)
    return status, kept, value


def request(method: str, target: str, body: bytes = b"", *headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def event_echo(event: dict[str, Any]) -> Any:
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}


async def shaped(event: dict[str, Any]) -> Any:
    """A reply shaped by the request's JSON body (what the test wants the function to return)."""
    return json.loads(event["body"])


CASES: list[tuple[str, bytes]] = [
    ("get with query and repeats", request(
        "GET", "/items/42?q=1&q=2&empty=", b"", "User-Agent: t/1", "Cookie: a=1; b=2",
        "X-Forwarded-For: 10.0.0.9", "Accept: */*", "accept: text/plain", "X-Unicode: caf\u00e9")),
    ("post json", request("POST", "/items/7", b'{"a": [1, 2]}', "Content-Type: application/json")),
    ("post binary", request("POST", "/items/7", bytes(range(256)), "Content-Type: application/octet-stream")),
    ("empty post", request("POST", "/items/7", b"")),
    ("head", request("HEAD", "/items/42")),
    ("encoded path", request("GET", "/items/a%2Fb%20c")),
    ("no route", request("GET", "/nothing/here")),
    ("wrong method", request("DELETE", "/items/42")),
    ("connection close", request("GET", "/items/1", b"", "Connection: close")),
    ("reply 204", request("POST", "/shaped", b'{"statusCode": 204}')),
    ("reply headers and cookies", request("POST", "/shaped", json.dumps({
        "statusCode": 201, "headers": {"X-One": "1", "Content-Type": "text/plain"},
        "multiValueHeaders": {"X-Many": ["a", "b"]}, "cookies": ["c=1", "d=2"], "body": "made"}).encode())),
    ("reply with its own Date and Server", request("POST", "/shaped", json.dumps({
        "statusCode": 200, "headers": {"Date": "yesterday", "Server": "mine"}, "body": "x"}).encode())),
    ("reply base64", request("POST", "/shaped", json.dumps({
        "statusCode": 200, "isBase64Encoded": True, "body": "AAEC",
        "headers": {"content-type": "x/y"}}).encode())),
    ("reply header with CRLF", request("POST", "/shaped", json.dumps({
        "statusCode": 200, "headers": {"X-Bad": "a\r\nSet-Cookie: evil=1"}, "body": "x"}).encode())),
    ("reply header name not a token", request("POST", "/shaped", json.dumps({
        "statusCode": 200, "headers": {"X Bad": "a"}, "body": "x"}).encode())),
    ("reply not a proxy result", request("POST", "/shaped", b'"just a string"')),
]  # fmt: skip


@pytest.mark.parametrize("version", ["2.0", "1.0"])
@pytest.mark.parametrize("name,raw", CASES, ids=[c[0] for c in CASES])
async def test_lean_and_aiohttp_paths_answer_alike(gateway, version, name, raw) -> None:  # noqa: F811
    gw = await gateway([("ANY /items/{id}", "items"), ("POST /shaped", "shaped")], payload_version=version)
    gw.dispatcher.behaviour["items"] = event_echo
    gw.dispatcher.behaviour["shaped"] = shaped
    lean, slow = await both_paths(gw.source.port, raw)
    assert comparable(lean) == comparable(slow)
    if name == "reply header with CRLF":
        assert lean[0] == 502 and not any(k == "set-cookie" for k, _ in lean[1])


async def test_cors_preflight_and_replies_alike(gateway) -> None:  # noqa: F811
    gw = await gateway([("GET /items/{id}", "items")], cors={"allow_origins": ["https://a.example"]})
    preflight = request(
        "OPTIONS", "/items/1", b"", "Origin: https://a.example", "Access-Control-Request-Method: GET"
    )
    for raw in (preflight, request("GET", "/items/1", b"", "Origin: https://a.example")):
        lean, slow = await both_paths(gw.source.port, raw)
        assert comparable(lean) == comparable(slow)
        assert ("access-control-allow-origin", "https://a.example") in lean[1]


async def test_pipelined_requests_are_answered_in_order(gateway) -> None:  # noqa: F811
    gw = await gateway([("GET /items/{id}", "items")])
    gw.dispatcher.behaviour["items"] = event_echo
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.source.port)
    writer.write(b"".join(request("GET", f"/items/{i}") for i in range(5)))
    seen = []
    for _ in range(5):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
        seen.append(json.loads(await reader.readexactly(length))["pathParameters"]["id"])
    writer.close()
    assert seen == ["0", "1", "2", "3", "4"]


async def test_a_flood_of_pipelined_requests_is_not_buffered_without_bound(gateway) -> None:  # noqa: F811
    gw = await gateway([("GET /items/{id}", "items")])
    release = asyncio.Event()

    async def slow(event: dict[str, Any]) -> Any:
        await release.wait()
        return {"statusCode": 200, "body": event["pathParameters"]["id"]}

    gw.dispatcher.behaviour["items"] = slow
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.source.port)
    writer.write(request("GET", "/items/first"))
    flood = request("GET", "/items/next") * 2000  # 84 KB
    for _ in range(100):  # 8.4 MB, sent while the first request is being answered
        writer.write(flood)
        await asyncio.sleep(0)
    await asyncio.sleep(0.5)
    (connection,) = gw.source._front.connections
    assert len(connection._buf) < 1024 * 1024  # without flow control: all 8.4 MB
    assert writer.transport.get_write_buffer_size() > 0  # the rest waits on the client's side
    release.set()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert head.startswith("HTTP/1.1 200 ")
    assert await reader.readexactly(5) == b"first"
    for _ in range(3):  # reading resumed: the pipelined ones are answered in turn
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert await reader.readexactly(4) == b"next"
    writer.close()


async def test_a_body_in_pieces_is_read_whole(gateway) -> None:  # noqa: F811
    gw = await gateway([("POST /items/{id}", "items")])
    gw.dispatcher.behaviour["items"] = event_echo
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.source.port)
    raw = request("POST", "/items/1", b'{"long": "' + b"x" * 5000 + b'"}')
    for i in range(0, len(raw), 700):
        writer.write(raw[i : i + 700])
        await writer.drain()
        await asyncio.sleep(0.005)
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
    event = json.loads(await reader.readexactly(length))
    writer.close()
    assert json.loads(event["body"]) == {"long": "x" * 5000}


async def test_a_late_body_gets_408_in_the_gateway_form(gateway) -> None:  # noqa: F811
    gw = await gateway([("POST /items/{id}", "items")], body_timeout_s=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.source.port)
    writer.write(b"POST /items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
    answer = await asyncio.wait_for(reader.read(), 5)  # the connection is closed after the answer
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"apigw-requestid: " in head.lower()
    assert json.loads(body) == {"message": "Request Timeout"}
    assert gw.dispatcher.calls == []


LEFT = [
    (b"GET /items/1 HTTP/1.0", b""),
    (b"GET http://x/items/1 HTTP/1.1", b""),  # absolute form
    (b"POST /items/1 HTTP/1.1", b"\r\nTransfer-Encoding: chunked"),
    (b"POST /items/1 HTTP/1.1", b"\r\nContent-Length: 1\r\nContent-Length: 1"),
    (b"POST /items/1 HTTP/1.1", b"\r\nExpect: 100-continue\r\nContent-Length: 1"),
    (b"GET /items/1 HTTP/1.1", b"\r\nContent-Encoding: gzip"),
    (b"GET /items/1 HTTP/1.1", b"\r\nUpgrade: websocket"),
    (b"GET /items/1 HTTP/1.1", b"\r\nHost: y"),  # two Hosts
    (b"GET /items/1 HTTP/1.1", b"\r\nBad Name: x"),
    (b"GET /items/1 HTTP/1.1", b"\r\nX: a\x00b"),
    (b"GET /items/1 HTTP/1.1", b"\r\n folded: x"),
    (b"TRACE /items/1 HTTP/1.1", b""),
    (b"GET /items/1 HTTP/1.1", b"\r\nContent-Length: 99999999999"),
    (b"GET /items/1 HTTP/1.1", b"\r\nContent-Length: -1"),
    (b"GET /items/" + b"a" * 9000 + b" HTTP/1.1", b""),
    (b"GET /items/1 HTTP/1.1", b"\r\nX: " + b"a" * 9000),
    (b"GET /items/1 HTTP/1.1", b"\r\nX: a" * 200),
    (b"GET /caf\xc3\xa9 HTTP/1.1", b""),
]


@pytest.mark.parametrize("line,rest", LEFT)
async def test_what_the_lean_path_leaves_to_aiohttp(gateway, line, rest) -> None:  # noqa: F811
    gw = await gateway([("ANY /items/{id}", "items")])
    front = gw.source._front
    assert front is not None
    assert front.parse(b"GET /items/1 HTTP/1.1\r\nHost: x")[0] is not None
    assert front.parse(line + b"\r\nHost: x" + rest)[0] is None
    assert front.parse(b"GET /items/1 HTTP/1.1")[0] is None  # no Host


def test_the_lean_path_takes_a_plain_request() -> None:
    from router.edge.http import HttpLimits
    from router.sources.http.lean import GatewayFront

    class Source:
        max_bytes = 1024

    front = GatewayFront(Source(), None, HttpLimits())  # type: ignore[arg-type]
    taken, length = front.parse(b"PUT /a/b?c=d HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nX-Y:  z ")
    assert isinstance(taken, GatewayRequest) and length == 12
    assert (taken.method, taken.raw_path, taken.pairs) == (
        "PUT",
        "/a/b?c=d",
        [("Host", "x"), ("Content-Length", "12"), ("X-Y", "z")],
    )
    assert taken.keep_alive and not taken.head_only
    assert front.parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close")[0].keep_alive is False  # type: ignore[union-attr]
