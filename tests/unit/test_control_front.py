"""The front's lean Invoke path answers exactly as the aiohttp app does (router/control/front.py).

Each request is sent on a fresh connection twice: as the connection's first request (the lean path takes
it), and after a `GET /healthz` (the front has handed that connection to aiohttp). Status, error name, body
(request ids aside) and the Lambda headers must agree; so must the request counter.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from router.core import errors as E
from tests.support import http_answers
from tests.unit.test_control_support import ApiHarness, app_zip

CREATE = {"FunctionName": "f1", "Runtime": "python3.11", "Role": "arn:aws:iam::123456789012:role/x",
          "Handler": "app.handler", "Code": {"ZipFile": app_zip()}}  # fmt: skip
LAMBDA = "/2015-03-31/functions/{}/invocations"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:f1"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def exchange(port: int, requests: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    """Send each request on one connection, one after the other; the parsed answers."""
    return [(status, dict(headers), body) for status, headers, body in await http_answers(port, requests)]


def post(path: str, body: bytes = b"{}", **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
CONTEXT = base64.b64encode(b'{"custom": {"k": "v"}}').decode()
CASES: list[tuple[str, bytes]] = [
    ("ok", post(LAMBDA.format("f1"), b'{"a": 1}', Content_Type="application/json")),
    ("no content type", post(LAMBDA.format("f1"), b'{"a": 1}')),
    ("empty body", post(LAMBDA.format("f1"), b"")),
    ("function error", post(LAMBDA.format("f1"), b'{"fail": true}')),
    ("tail", post(LAMBDA.format("f1"), X_Amz_Log_Type="Tail")),
    ("client context", post(LAMBDA.format("f1"), X_Amz_Client_Context=CONTEXT)),
    ("arn, encoded", post(LAMBDA.format(ARN.replace(":", "%3A")))),
    ("qualifier", post(LAMBDA.format("f1") + "?Qualifier=%24LATEST")),
    ("alias", post("/invoke/f1", b'{"via": "curl"}', Content_Type="application/x-www-form-urlencoded")),
    ("not found", post(LAMBDA.format("nope"))),
    ("other qualifier", post(LAMBDA.format("f1:prod"))),
    ("qualifier mismatch", post(LAMBDA.format("f1:v1") + "?Qualifier=v2")),
    ("bad name", post(LAMBDA.format("bad%20name"))),
    ("not json", post(LAMBDA.format("f1"), b"{not json")),
    ("media type", post(LAMBDA.format("f1"), Content_Type="text/html")),
    ("log type", post(LAMBDA.format("f1"), X_Amz_Log_Type="Everything")),
    ("bad context", post(LAMBDA.format("f1"), X_Amz_Client_Context="!!")),
    ("invocation type", post(LAMBDA.format("f1"), X_Amz_Invocation_Type="Sometimes")),
]
COMPARED = ("content-type", "x-amzn-errortype", "x-amz-function-error", "x-amz-executed-version")


def same_answer(lean: tuple[int, dict[str, str], bytes], app: tuple[int, dict[str, str], bytes]) -> None:
    assert lean[0] == app[0]
    assert {k: lean[1].get(k) for k in COMPARED} == {k: app[1].get(k) for k in COMPARED}
    assert UUID.fullmatch(lean[1]["x-amzn-requestid"].encode()) and UUID.fullmatch(
        app[1]["x-amzn-requestid"].encode()
    )
    assert UUID.sub(b"<id>", lean[2]) == UUID.sub(b"<id>", app[2])
    if "x-amz-log-result" in app[1]:
        tail = [base64.b64decode(a[1]["x-amz-log-result"]) for a in (lean, app)]
        assert [UUID.sub(b"<id>", t) for t in tail] == [UUID.sub(b"<id>", tail[1])] * 2


@pytest.mark.parametrize(("case", "request_bytes"), CASES, ids=[c for c, _ in CASES])
async def test_lean_and_app_answers_agree(tmp_path: Path, case: str, request_bytes: bytes) -> None:
    async with ApiHarness(tmp_path) as h:
        await asyncio.to_thread(h.client().create_function, **CREATE)
        (lean,) = await exchange(h.port, [request_bytes])
        health, app = await exchange(h.port, [HEALTHZ, request_bytes])
        assert health[0] == 200
        same_answer(lean, app)
        # Who answered: the lean path takes every case but an invocation type other than RequestResponse.
        lean_path = case != "invocation type"
        assert (lean[1]["server"] == "router") is lean_path and "aiohttp" in app[1]["server"]
        if case == "ok":
            assert lean[0] == 200 and json.loads(lean[2])["echo"] == {"a": 1}


async def test_keep_alive_pipelining_and_close(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h:
        await asyncio.to_thread(h.client().create_function, **CREATE)
        reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
        one, two = (
            post(LAMBDA.format("f1"), b'{"n": 1}'),
            post(LAMBDA.format("f1"), b'{"n": 2}', Connection="close"),
        )
        writer.write(one + two)  # pipelined: answered in order
        data = await reader.read()  # up to the close
        writer.close()
        assert data.count(b"HTTP/1.1 200 OK") == 2 and data.count(b"Server: router") == 2
        assert data.index(b'"n": 1') < data.index(b'"n": 2') and b"Connection: close" in data


async def test_the_token_is_checked_on_the_lean_path_too(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path, token="s3cret") as h:
        await asyncio.to_thread(h.client().create_function, **CREATE)
        for headers, status, error in (
            ({}, 401, E.MISSING_TOKEN),
            ({"Authorization": "Bearer wrong"}, 403, E.UNRECOGNIZED_CLIENT),
            ({"Authorization": "Bearer s3cret"}, 200, None),
        ):
            request = post(LAMBDA.format("f1"), **{k.replace("-", "_"): v for k, v in headers.items()})
            (lean,) = await exchange(h.port, [request])
            (_, app) = await exchange(h.port, [HEALTHZ, request])
            same_answer(lean, app)
            assert lean[0] == status and lean[1].get("x-amzn-errortype") == error


async def test_requests_are_counted_by_route_and_status(tmp_path: Path) -> None:
    async with ApiHarness(tmp_path) as h:
        await asyncio.to_thread(h.client().create_function, **CREATE)
        await exchange(h.port, [post(LAMBDA.format("f1")), post(LAMBDA.format("nope")), post("/invoke/f1")])
        text = h.metrics.render().decode()
        route = "POST /2015-03-31/functions/{name}/invocations"
        assert f'router_api_requests_total{{operation="{route}",status="200"}} 1.0' in text
        assert f'router_api_requests_total{{operation="{route}",status="404"}} 1.0' in text
        assert 'router_api_requests_total{operation="POST /invoke/{name}",status="200"} 1.0' in text


async def test_a_flood_of_pipelined_invokes_is_not_buffered_without_bound(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """While a call runs, what a client pipelines behind it waits in a bounded buffer (router/edge/lean.py):
    the front stops reading, and the rest stays on the client's side until the answer is out."""
    from tests.unit.test_control_support import EchoInstance

    release = asyncio.Event()
    original = EchoInstance.invoke

    async def held(self: EchoInstance, request: Any) -> Any:
        if b'"hold"' in request.payload:
            await release.wait()
        return await original(self, request)

    monkeypatch.setattr(EchoInstance, "invoke", held)
    async with ApiHarness(tmp_path) as h:
        await asyncio.to_thread(h.client().create_function, **CREATE)
        reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
        writer.write(post(LAMBDA.format("f1"), b'{"hold": 1}'))
        flood = post(LAMBDA.format("f1"), b'{"n": 2}') * 1000
        for _ in range(100):  # about 12 MB while the first call is held
            writer.write(flood)
            await asyncio.sleep(0)
        await asyncio.sleep(0.5)
        (connection,) = h.front.connections
        assert len(connection._buf) < 1024 * 1024
        assert writer.transport.get_write_buffer_size() > 0
        release.set()
        for expected in ({"hold": 1}, {"n": 2}, {"n": 2}):
            head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
            assert head.startswith("http/1.1 200 ")
            length = int(head.split("content-length: ")[1].split("\r\n")[0])
            assert json.loads(await reader.readexactly(length))["echo"] == expected
        writer.close()


async def test_a_length_in_other_digits_is_left_to_aiohttp(tmp_path: Path) -> None:
    """`Content-Length: 1²` passes str.isdigit (the head is read as latin-1) but is no number: the lean path
    leaves it to aiohttp, which refuses it, instead of failing in the middle of parsing (the connection
    was dropped without an answer)."""
    async with ApiHarness(tmp_path) as h:
        await asyncio.to_thread(h.client().create_function, **CREATE)
        head = f"POST {LAMBDA.format('f1')} HTTP/1.1\r\nHost: x\r\nContent-Length: 1".encode()
        ((status, _, _),) = await exchange(h.port, [head + b"\xb2\r\n\r\n{}"])
        assert status == 400
