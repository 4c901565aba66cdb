"""The HTTP gateway through a running router (`router serve`) with real function processes, via a real client.

Fixture functions: tests/functions/http_api (answers as its `mode` query parameter says) and echo.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import free_port

pytestmark = pytest.mark.integration

FUNCTIONS = """
invoker: {isolation: "off"}  # http_api leaves a mark in the test's folder when a held call starts
functions:
  api: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/http_api", timeout_s: 1}
  echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", timeout_s: 2}
  held: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/http_api", timeout_s: 30,
         reserved_concurrency: 2}
  ce: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", event_format: cloudevents}
"""

ROUTES = """
routes:
  - {source: api, function: api, http: {method: ANY, path: "/api/{proxy+}"}}
  - {source: api, function: echo, http: {method: GET, path: "/items/{id}"}}
  - {source: api, function: echo, http: {method: DELETE, path: "/items/{id}"}}
  - {source: api, function: held, http: {method: GET, path: /held}}
  - {source: api, function: ce, http: {method: POST, path: /events}}
"""


DEFAULT_SOURCE = "{kind: http, port: '${HTTP_PORT}'}"


def config(source: str, extra: str = "") -> str:
    return f"server:\n  port: ${{ROUTER_PORT}}\n{extra}{FUNCTIONS}\nsources:\n  api: {source}\n{ROUTES}"


async def start(make_router: Any, source: str = DEFAULT_SOURCE, extra: str = "") -> tuple[Any, str]:
    """A running router with the given http source; returns it and the gateway's base URL."""
    port = free_port()
    router = await make_router(config(source, extra), env={"HTTP_PORT": str(port)})
    return router, f"http://127.0.0.1:{port}"


async def call(method: str, url: str, **kw: Any) -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as s, s.request(method, url, **kw) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_v2_path_query_headers_and_cookies_reach_the_function(make_router: Any) -> None:
    _, url = await start(make_router)
    headers = [("X-Multi", "a"), ("X-Multi", "b"), ("Cookie", "sid=42; lang=en"), ("User-Agent", "it/1")]
    status, resp_headers, body = await call(
        "GET", f"{url}/api/shop/item%201?mode=echo&tag=x&tag=y", headers=headers
    )
    assert status == 200, body
    event = json.loads(body)
    assert event["routeKey"] == "ANY /api/{proxy+}" and event["rawPath"] == "/api/shop/item%201"
    assert event["pathParameters"] == {"proxy": "shop/item 1"}
    assert event["rawQueryString"] == "mode=echo&tag=x&tag=y"
    assert event["queryStringParameters"] == {"mode": "echo", "tag": "x,y"}
    assert event["headers"]["x-multi"] == "a,b" and event["cookies"] == ["sid=42", "lang=en"]
    assert event["requestContext"]["http"]["userAgent"] == "it/1"
    assert event["requestContext"]["requestId"] == resp_headers["apigw-requestid"]
    # The function's reply: its own header and two cookies, each a Set-Cookie.
    assert resp_headers["X-Mode"] == "echo"
    assert resp_headers.getall("Set-Cookie") == ["session=abc; Path=/", "theme=dark"]


async def test_v2_result_without_status_code_is_a_json_200(make_router: Any) -> None:
    _, url = await start(make_router)
    status, headers, body = await call("GET", f"{url}/items/7?x=1")
    assert status == 200 and headers["Content-Type"] == "application/json"
    answer = json.loads(body)  # the echo fixture returns {"event": ..., "function_name": ...}
    assert answer["function_name"] == "echo"
    assert (
        answer["event"]["pathParameters"] == {"id": "7"} and answer["event"]["routeKey"] == "GET /items/{id}"
    )
    status, _, body = await call("GET", f"{url}/api/x?mode=plain")
    assert (status, json.loads(body)) == (200, {"plain": "object"})


async def test_binary_request_and_response_bodies_round_trip(make_router: Any) -> None:
    _, url = await start(make_router)
    data = bytes(range(256)) * 64
    headers = {"Content-Type": "application/octet-stream"}
    status, resp_headers, body = await call("POST", f"{url}/api/blob?mode=binary", data=data, headers=headers)
    assert (status, resp_headers["Content-Type"], body) == (200, "application/octet-stream", data)
    text = {"Content-Type": "text/plain; charset=utf-8"}
    status, _, body = await call(
        "POST", f"{url}/api/text?mode=echo", data="héllo wörld".encode(), headers=text
    )
    event = json.loads(body)
    assert event["body"] == "héllo wörld" and event["isBase64Encoded"] is False
    status, _, body = await call("POST", f"{url}/api/bin?mode=echo", data=data, headers=headers)
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == data


async def test_v1_events_and_responses(make_router: Any) -> None:
    _, url = await start(
        make_router, "{kind: http, port: '${HTTP_PORT}', payload_version: '1.0', stage: prod}"
    )
    headers = [("X-Multi", "a"), ("X-Multi", "b")]
    status, resp_headers, body = await call("PUT", f"{url}/prod/api/a/b?mode=echo&t=1&t=2", headers=headers)
    assert status == 200, body
    event = json.loads(body)
    assert (
        event["resource"] == "/api/{proxy+}" and event["path"] == "/api/a/b" and event["httpMethod"] == "PUT"
    )
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"] and event["headers"]["X-Multi"] == "b"
    assert event["queryStringParameters"] == {"mode": "echo", "t": "2"}
    assert event["multiValueQueryStringParameters"] == {"mode": ["echo"], "t": ["1", "2"]}
    assert event["requestContext"]["stage"] == "prod" and event["requestContext"]["path"] == "/prod/api/a/b"
    assert event["requestContext"]["requestId"] == resp_headers["x-amzn-RequestId"]
    assert resp_headers.getall("Set-Cookie") == [
        "session=abc; Path=/",
        "theme=dark",
    ]  # from multiValueHeaders
    # REST APIs take only the proxy shape: a plain object is a malformed response.
    status, _, body = await call("GET", f"{url}/prod/api/x?mode=plain")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


async def test_every_error_maps_as_api_gateway_does(make_router: Any) -> None:
    _, url = await start(make_router, "{kind: http, port: '${HTTP_PORT}', max_body_mb: 0.01}")
    cases = [
        ("GET", "/api/x?mode=error", 502, {"message": "Internal Server Error"}),
        ("GET", "/api/x?mode=malformed", 502, {"message": "Internal Server Error"}),
        ("GET", "/api/x?mode=sleep&seconds=3", 504, {"message": "Endpoint request timed out"}),
        ("GET", "/nowhere", 404, {"message": "Not Found"}),
        ("POST", "/items/1", 405, {"message": "Method Not Allowed"}),
    ]
    for method, path, want_status, want_body in cases:
        status, headers, body = await call(method, url + path)
        assert (status, json.loads(body)) == (want_status, want_body), path
        assert headers["apigw-requestid"]
    _, headers, _ = await call("POST", f"{url}/items/1")
    assert headers["Allow"] == "DELETE, GET"
    status, _, body = await call("POST", f"{url}/api/x", data=b"x" * 20000)
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
    status, _, body = await call("GET", f"{url}/api/x?mode=status&code=418")
    assert (status, body) == (418, b"")
    # The instance that timed out was replaced: the function answers again.
    status, _, _ = await call("GET", f"{url}/api/x?mode=echo")
    assert status == 200


async def test_concurrent_requests_over_reserved_concurrency_get_429(
    make_router: Any, tmp_path: Path
) -> None:
    _, url = await start(make_router)
    release = tmp_path / "release"

    async def one(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{url}/held", params={"mode": "hold", "file": str(release)}) as resp:
            await resp.read()
            return resp.status

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(one(session)) for _ in range(6)]
        statuses: list[int] = []
        for next_done in asyncio.as_completed(tasks):
            statuses.append(await next_done)
            if len(statuses) == 4:  # two calls hold the two reserved slots until released
                assert statuses == [429] * 4
                release.touch()
    assert sorted(statuses) == [200, 200, 429, 429, 429, 429]


async def test_cors_preflight_and_response_headers(make_router: Any) -> None:
    source = "{kind: http, port: '${HTTP_PORT}', cors: {allow_origins: ['http://app.test'], max_age_s: 300}}"
    _, url = await start(make_router, source)
    asks = {"Origin": "http://app.test", "Access-Control-Request-Method": "DELETE"}
    status, headers, _ = await call("OPTIONS", f"{url}/items/1", headers=asks)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://app.test"
    assert headers["Access-Control-Allow-Methods"] == "DELETE" and headers["Access-Control-Max-Age"] == "300"
    status, headers, _ = await call("GET", f"{url}/items/1", headers={"Origin": "http://app.test"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://app.test"
    status, headers, _ = await call("GET", f"{url}/items/1", headers={"Origin": "http://evil.test"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


async def test_cloudevents_in_binary_and_structured_mode(make_router: Any) -> None:
    _, url = await start(make_router)
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "evt-1",
        "ce-source": "urn:shop",
        "ce-type": "com.example.order.created",
        "Content-Type": "application/json",
    }
    status, _, body = await call("POST", f"{url}/events", data=b'{"order": 1}', headers=binary)
    assert status == 200, body
    got = json.loads(body)["event"]
    assert (got["id"], got["type"], got["data"]) == ("evt-1", "com.example.order.created", {"order": 1})
    structured = {"specversion": "1.0", "id": "evt-2", "source": "urn:shop", "type": "t", "data": [1, 2]}
    headers = {"Content-Type": "application/cloudevents+json"}
    status, _, body = await call("POST", f"{url}/events", data=json.dumps(structured), headers=headers)
    assert status == 200 and json.loads(body)["event"] == structured
    status, _, body = await call("POST", f"{url}/events", json={"plain": 1})
    wrapped = json.loads(body)["event"]
    assert wrapped["specversion"] == "1.0" and wrapped["data"]["routeKey"] == "POST /events"


async def test_stopping_the_router_answers_calls_still_running_with_503(
    make_router: Any, tmp_path: Path
) -> None:
    router, url = await start(
        make_router,
        "{kind: http, port: '${HTTP_PORT}', drain_s: 0.2}",
        extra="limits:\n  drain_grace_s: 0.5\n",
    )
    began = tmp_path / "began"
    params = {"mode": "hold", "file": str(tmp_path / "never"), "started": str(began)}
    request = asyncio.create_task(call("GET", f"{url}/held", params=params))
    for _ in range(500):
        if began.exists() or request.done():
            break
        await asyncio.sleep(0.02)
    assert began.exists(), "the held call never started"
    code = await router.stop()
    status, _, body = await request
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
    assert code == 0
