"""The HTTP gateway in-process, driven by a real HTTP client, with a fake dispatcher behind its routes.

These check the gateway's own logic (events, routing, mapping, CORS, limits) quickly; the same behaviours
through a running router with real function processes are in tests/integration/test_http_source.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from router.config import HttpRouteConfig, RouteConfig
from router.config.sources.http import Config
from router.core.clock import SystemClock
from router.core.errors import ConfigError, ShuttingDown, Throttled
from router.core.ports import Delivery, SourceContext
from router.core.results import InvocationResult
from router.dispatch.routing import BoundRoute
from router.sources.http.source import HttpSource, create
from router.validate import parse_config

Behaviour = Callable[[dict[str, Any]], Awaitable[Any]]


async def proxy_echo(event: dict[str, Any]) -> Any:
    """What most fake functions do: answer 200 with the event they got as a JSON body."""
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}


class FakeDispatcher:
    def __init__(self) -> None:
        self.behaviour: dict[str, Behaviour] = {}
        self.calls: list[tuple[str, Any, str | None]] = []
        self.finished: list[str] = []

    async def invoke(
        self,
        function: str,
        payload: bytes,
        *,
        trace: str | None = None,
        client_context: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
    ) -> InvocationResult:
        event = json.loads(payload)
        self.calls.append((function, event, trace))
        value = await self.behaviour.get(function, proxy_echo)(event)
        self.finished.append(function)
        if isinstance(value, InvocationResult):
            return value
        return InvocationResult(request_id=f"fn-{len(self.calls)}", payload=json.dumps(value).encode())


class Gateway:
    def __init__(self, source: HttpSource, dispatcher: FakeDispatcher, task: asyncio.Task[None]) -> None:
        self.source, self.dispatcher, self.task = source, dispatcher, task
        self.url = source.url

    @property
    def events(self) -> list[Any]:
        return [event for _, event, _ in self.dispatcher.calls]


Route = tuple[str, str] | tuple[str, str, dict[str, Any]]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    started: list[Gateway] = []

    async def start(routes: list[Route], **settings: Any) -> Gateway:
        config = msgspec.convert({"kind": "http", "port": 0, **settings}, Config)
        dispatcher = FakeDispatcher()
        bound = []
        for spec in routes:
            key, function = spec[0], spec[1]
            extra: dict[str, Any] = spec[2] if len(spec) == 3 else {}  # type: ignore[misc]
            method, _, path = key.partition(" ") if key != "$default" else ("ANY", "", "$default")
            rc = RouteConfig(source="api", function=function, http=HttpRouteConfig(method=method, path=path))
            bound.append(
                BoundRoute(
                    "api",
                    function,
                    "http",
                    Config.traits,
                    rc,
                    extra.get("format", "aws"),
                    dispatcher,
                    predicate=extra.get("predicate"),
                )
            )
        ready = asyncio.Event()

        async def submit(envelopes: Any) -> Delivery:
            raise AssertionError("the HTTP gateway invokes synchronously, never through submit")

        ctx = SourceContext(
            name="api",
            config=config,
            routes=bound,
            state_dir=tmp_path,
            clock=SystemClock(),
            submit=submit,
            ready=ready.set,
        )
        source = create(ctx)
        task = asyncio.create_task(source.run())
        await asyncio.wait_for(ready.wait(), 5)
        gw = Gateway(source, dispatcher, task)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.task.cancel()
        await asyncio.gather(gw.task, return_exceptions=True)


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(client: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any, bytes]:
    async with client.request(method, url, **kw) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_v2_event_carries_path_query_headers_and_cookies(gateway, client) -> None:
    gw = await gateway([("GET /items/{id}", "items")])
    headers = [("X-Multi", "a"), ("X-Multi", "b"), ("Cookie", "s=1; theme=dark"), ("User-Agent", "tester/1")]
    status, resp_headers, body = await call(
        client, "GET", f"{gw.url}/items/4%202?color=red&color=blue&size=L", headers=headers
    )
    assert status == 200
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/4%202"
    assert event["rawQueryString"] == "color=red&color=blue&size=L"
    assert event["queryStringParameters"] == {"color": "red,blue", "size": "L"}
    assert event["pathParameters"] == {"id": "4 2"}
    assert event["cookies"] == ["s=1", "theme=dark"]
    assert event["headers"]["x-multi"] == "a,b"
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-port"] == str(gw.source.port)
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert all(k == k.lower() for k in event["headers"])
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "GET",
        "path": "/items/4%202",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tester/1",
    }
    assert ctx["requestId"] == resp_headers["apigw-requestid"]
    assert ctx["stage"] == "$default" and ctx["routeKey"] == "GET /items/{id}"
    assert isinstance(ctx["timeEpoch"], int) and ctx["time"].endswith(" +0000")
    assert len(ctx["apiId"]) == 10 and ctx["accountId"] == "123456789012"
    assert "body" not in event and event["isBase64Encoded"] is False


async def test_v1_event_has_multi_value_fields_resource_and_stage(gateway, client) -> None:
    gw = await gateway(
        [("GET /items/{id}", "items")], payload_version="1.0", stage="dev", stage_variables={"a": "b"}
    )
    status, resp_headers, body = await call(
        client, "GET", f"{gw.url}/items/7?tag=x&tag=y", headers=[("X-Multi", "a"), ("X-Multi", "b")]
    )
    assert status == 200
    event = json.loads(body)
    assert event["resource"] == "/items/{id}" and event["path"] == "/items/7" and event["httpMethod"] == "GET"
    assert event["headers"]["X-Multi"] == "b"
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["queryStringParameters"] == {"tag": "y"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["x", "y"]}
    assert event["pathParameters"] == {"id": "7"}
    assert event["stageVariables"] == {"a": "b"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "dev" and ctx["path"] == "/dev/items/7" and ctx["resourcePath"] == "/items/{id}"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["requestId"] == resp_headers["x-amzn-RequestId"]


async def test_a_named_stage_is_in_the_url_and_the_v2_raw_path_but_not_in_the_routes(gateway, client) -> None:
    gw = await gateway([("GET /items/{id}", "items"), ("$default", "all")], stage="prod")
    base = f"http://127.0.0.1:{gw.source.port}"
    assert gw.url == f"{base}/prod"
    status, _, body = await call(client, "GET", f"{base}/prod/items/7?x=1")
    assert status == 200
    event = json.loads(body)
    assert event["routeKey"] == "GET /items/{id}" and event["pathParameters"] == {"id": "7"}
    assert event["rawPath"] == "/prod/items/7" and event["rawQueryString"] == "x=1"
    assert event["requestContext"]["http"]["path"] == "/prod/items/7"
    assert event["requestContext"]["stage"] == "prod"
    _, _, body = await call(client, "GET", f"{base}/prod")
    assert json.loads(body)["rawPath"] == "/prod" and json.loads(body)["routeKey"] == "$default"
    for outside in ("/items/7", "/production/items/7", "/Prod/items/7"):
        status, _, body = await call(client, "GET", f"{base}{outside}")
        assert (status, json.loads(body)) == (404, {"message": "Not Found"}), outside
    assert [f for f, _, _ in gw.dispatcher.calls] == ["items", "all"]


async def test_v1_default_route_under_a_named_stage_proxies_the_path_without_it(gateway, client) -> None:
    gw = await gateway([("$default", "all")], payload_version="1.0", stage="dev")
    status, _, body = await call(client, "GET", f"{gw.url}/a/b")
    event = json.loads(body)
    assert status == 200 and event["version"] == "1.0"
    assert (event["path"], event["pathParameters"]) == ("/a/b", {"proxy": "a/b"})
    assert event["requestContext"]["path"] == "/dev/a/b"


async def test_v1_default_route_looks_like_the_proxy_resource(gateway, client) -> None:
    gw = await gateway([("$default", "all")], payload_version="1.0")
    status, _, body = await call(client, "DELETE", f"{gw.url}/a/b%20c")
    event = json.loads(body)
    assert status == 200
    assert event["resource"] == "/{proxy+}" and event["pathParameters"] == {"proxy": "a/b c"}


async def test_text_bodies_pass_as_is_binary_as_base64(gateway, client) -> None:
    gw = await gateway([("POST /upload", "up")], binary_media_types=["image/*"])
    _, _, body = await call(client, "POST", f"{gw.url}/upload", json={"name": "widget"})
    event = json.loads(body)
    assert json.loads(event["body"]) == {"name": "widget"} and event["isBase64Encoded"] is False

    data = bytes(range(256))
    await call(
        client, "POST", f"{gw.url}/upload", data=data, headers={"Content-Type": "application/octet-stream"}
    )
    event = gw.events[-1]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == data

    await call(client, "POST", f"{gw.url}/upload", data=b"<svg/>", headers={"Content-Type": "image/svg+xml"})
    assert gw.events[-1]["isBase64Encoded"] is True  # listed in binary_media_types

    # A client that waits for "100 Continue" before sending its body (curl does, above 1 KB) gets it.
    text = {"Content-Type": "text/plain"}
    status, _, _ = await call(
        client, "POST", f"{gw.url}/upload", data=b"t" * 5000, headers=text, expect100=True
    )
    assert status == 200 and gw.events[-1]["body"] == "t" * 5000


async def test_binary_response_bodies_are_decoded(gateway, client) -> None:
    data = bytes(range(255, -1, -1))

    async def png(event: dict[str, Any]) -> Any:
        b64 = base64.b64encode(data).decode()
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png"},
            "body": b64,
            "isBase64Encoded": True,
        }

    gw = await gateway([("GET /img", "img")])
    gw.dispatcher.behaviour["img"] = png
    status, headers, body = await call(client, "GET", f"{gw.url}/img")
    assert (status, headers["Content-Type"], body) == (200, "image/png", data)


async def test_not_found_and_method_not_allowed(gateway, client) -> None:
    gw = await gateway([("GET /items/{id}", "items"), ("DELETE /items/{id}", "items")])
    status, headers, body = await call(client, "GET", f"{gw.url}/nothing/here")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert headers["apigw-requestid"]
    status, headers, body = await call(client, "PUT", f"{gw.url}/items/1")
    assert (status, json.loads(body), headers["Allow"]) == (
        405,
        {"message": "Method Not Allowed"},
        "DELETE, GET",
    )
    assert gw.dispatcher.calls == []


async def test_bodies_over_the_limit_are_413_before_the_function_runs(gateway, client) -> None:
    gw = await gateway([("POST /up", "up")], max_body_mb=0.001)  # 1048 bytes
    status, _, body = await call(client, "POST", f"{gw.url}/up", data=b"x" * 2000)
    assert status == 413 and json.loads(body) == {"message": "Request Entity Too Large"}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"y" * 500

    status, _, _ = await call(client, "POST", f"{gw.url}/up", data=chunks())  # chunked: no Content-Length
    assert status == 413
    status, _, _ = await call(client, "POST", f"{gw.url}/up", data=b"z" * 1000)
    assert status == 200
    assert len(gw.dispatcher.calls) == 1


async def test_dispatch_errors_become_429_and_503(gateway, client) -> None:
    async def throttled(event: Any) -> Any:
        raise Throttled("reserved concurrency reached")

    async def draining(event: Any) -> Any:
        raise ShuttingDown("draining")

    gw = await gateway([("GET /t", "t"), ("GET /d", "d")])
    gw.dispatcher.behaviour.update(t=throttled, d=draining)
    status, _, body = await call(client, "GET", f"{gw.url}/t")
    assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})
    status, _, body = await call(client, "GET", f"{gw.url}/d")
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})


async def test_integration_timeout_is_504_and_the_call_runs_on(gateway, client) -> None:
    release = asyncio.Event()

    async def slow(event: Any) -> Any:
        await release.wait()
        return {"done": True}

    gw = await gateway([("GET /slow", "slow")], timeout_s=0.2)
    gw.dispatcher.behaviour["slow"] = slow
    status, _, body = await call(client, "GET", f"{gw.url}/slow")
    assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})
    assert gw.dispatcher.finished == []
    release.set()
    await gw.source.aclose()  # waits for calls still running
    assert gw.dispatcher.finished == ["slow"]


@pytest.mark.parametrize(("drain_s", "answer"), [(10, 200), (0.05, 503)])
async def test_closing_lets_requests_in_flight_be_answered_within_drain(
    gateway, client, drain_s, answer
) -> None:
    started, release, closing = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow(event: Any) -> Any:
        started.set()
        await release.wait()
        return {"finished": True}

    gw = await gateway([("GET /slow", "slow")], drain_s=drain_s)
    gw.dispatcher.behaviour["slow"] = slow
    close = gw.source.aclose

    async def observed_close() -> None:
        closing.set()
        await close()

    gw.source.aclose = observed_close  # type: ignore[method-assign]
    pending = asyncio.create_task(call(client, "GET", f"{gw.url}/slow"))
    await started.wait()
    gw.task.cancel()  # what the daemon does on stop: the listener closes, the request in flight goes on
    await closing.wait()
    if answer == 200:
        release.set()
    status, _, _ = await pending
    assert status == answer
    await asyncio.gather(gw.task, return_exceptions=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(client, "GET", f"{gw.url}/slow")


async def test_cors_preflight_is_answered_by_the_gateway(gateway, client) -> None:
    cors = {
        "allow_origins": ["https://app.test"],
        "allow_methods": ["GET", "POST"],
        "expose_headers": ["X-Id"],
    }
    gw = await gateway([("ANY /things", "things")], cors=cors)
    pre = {"Origin": "https://app.test", "Access-Control-Request-Method": "POST"}
    status, headers, _ = await call(client, "OPTIONS", f"{gw.url}/things", headers=pre)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "https://app.test"
    assert headers["Access-Control-Allow-Methods"] == "GET,POST"
    assert gw.dispatcher.calls == []
    status, headers, _ = await call(client, "GET", f"{gw.url}/things", headers={"Origin": "https://app.test"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.test"
    assert headers["Access-Control-Expose-Headers"] == "X-Id"
    status, headers, _ = await call(
        client, "GET", f"{gw.url}/things", headers={"Origin": "https://other.test"}
    )
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


async def test_cloudevents_binary_and_structured_reach_a_cloudevents_function(gateway, client) -> None:
    gw = await gateway([("POST /events", "ce", {"format": "cloudevents"})])
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "e-1",
        "ce-source": "urn:test",
        "ce-type": "com.example.created",
        "ce-subject": "a%20b",
        "Content-Type": "application/json",
    }
    status, _, _ = await call(client, "POST", f"{gw.url}/events", data=b'{"n": 1}', headers=binary)
    assert status == 200
    event = gw.events[-1]
    assert event["id"] == "e-1" and event["type"] == "com.example.created" and event["subject"] == "a b"
    assert event["data"] == {"n": 1} and event["datacontenttype"] == "application/json"

    structured = {"specversion": "1.0", "id": "e-2", "source": "urn:test", "type": "t", "data": "hi"}
    headers = {"Content-Type": "application/cloudevents+json"}
    status, _, _ = await call(
        client, "POST", f"{gw.url}/events", data=json.dumps(structured), headers=headers
    )
    assert status == 200 and gw.events[-1] == structured

    status, _, _ = await call(client, "POST", f"{gw.url}/events", json={"plain": True})
    wrapped = gw.events[-1]  # not a CloudEvent: the API Gateway event, wrapped in one
    assert wrapped["type"] == "com.amazonaws.apigateway.request"
    assert wrapped["data"]["version"] == "2.0" and json.loads(wrapped["data"]["body"]) == {"plain": True}

    bad = {**binary}
    del bad["ce-id"]
    status, _, body = await call(client, "POST", f"{gw.url}/events", data=b"{}", headers=bad)
    assert status == 400 and "id" in json.loads(body)["message"]
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    status, _, _ = await call(
        client, "POST", f"{gw.url}/events", data=json.dumps([structured]), headers=headers
    )
    assert status == 415
    assert len(gw.dispatcher.calls) == 3


async def test_cloudevent_headers_are_plain_headers_for_aws_functions(gateway, client) -> None:
    gw = await gateway([("POST /events", "aws")])
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t"}
    await call(client, "POST", f"{gw.url}/events", data=b"{}", headers=headers)
    assert gw.events[-1]["headers"]["ce-id"] == "1"


async def test_a_filter_that_says_no_falls_through_to_the_next_route(gateway, client) -> None:
    def tenant_a(envelope: Any) -> bool:
        return envelope.record["headers"].get("x-tenant") == "a"

    gw = await gateway(
        [
            ("GET /x", "for-a", {"predicate": tenant_a}),
            ("GET /{any}", "general", {"predicate": lambda e: False}),
        ]
    )
    assert (await call(client, "GET", f"{gw.url}/x", headers={"X-Tenant": "a"}))[0] == 200
    assert (await call(client, "GET", f"{gw.url}/x", headers={"X-Tenant": "b"}))[0] == 404
    assert [f for f, _, _ in gw.dispatcher.calls] == ["for-a"]


async def test_trace_header_is_passed_on_for_loop_protection(gateway, client) -> None:
    gw = await gateway([("GET /x", "x")])
    incoming = "Root=1-65a1b2c3-0123456789abcdef01234567;Sampled=0;Lineage=1f2e3d4c:3"
    await call(client, "GET", f"{gw.url}/x", headers={"X-Amzn-Trace-Id": incoming})
    assert gw.dispatcher.calls[-1][2] == incoming
    assert gw.events[-1]["headers"]["x-amzn-trace-id"] == incoming
    await call(client, "GET", f"{gw.url}/x")  # from outside: a fresh trace, made by the dispatcher
    assert gw.dispatcher.calls[-1][2] is None
    assert gw.events[-1]["headers"]["x-amzn-trace-id"].startswith("Root=1-")


async def test_custom_request_id_header_and_close_is_idempotent(gateway, client) -> None:
    gw = await gateway([("GET /x", "x")], request_id_header="X-Request-Id")
    _, headers, body = await call(client, "GET", f"{gw.url}/x")
    assert headers["X-Request-Id"] == json.loads(body)["requestContext"]["requestId"]
    gw.task.cancel()
    await asyncio.gather(gw.task, return_exceptions=True)
    await gw.source.aclose()
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(client, "GET", f"{gw.url}/x")


def _config(routes: str, source: str = "{kind: http, port: 0}") -> str:
    echo = Path(__file__).resolve().parent.parent / "functions" / "echo"
    return f"""
functions:
  a: {{runtime: python3.11, handler: app.handler, code: "{echo}"}}
  b: {{runtime: python3.11, handler: app.handler, code: "{echo}"}}
sources:
  api: {source}
routes:
{routes}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    return e.value.problems


def test_validate_reports_bad_routes_with_their_paths() -> None:
    problems = _problems(
        _config(
            """
  - {source: api, function: a, http: {method: GET, path: "/a/{x+}/b"}}
  - {source: api, function: [a, b], http: {method: GET, path: /two}}
  - {source: api, function: a, http: {method: GET, path: /same}}
  - {source: api, function: b, http: {method: GET, path: /same}}
"""
        )
    )
    assert any(p.startswith("routes[0].http: path '/a/{x+}/b': greedy") for p in problems)
    assert any(p.startswith("routes[1].function: an http route answers with one function") for p in problems)
    assert any(
        p.startswith("routes[3].http: route key 'GET /same' is already taken by routes[2]") for p in problems
    )


def test_validate_reports_bad_source_settings() -> None:
    source = "{kind: http, port: 0, stage: 'no spaces', max_body_mb: 0, cors: {allow_credentials: true}}"
    problems = _problems(_config("  - {source: api, function: a, http: {path: $default}}", source))
    assert any(p.startswith("sources.api.max_body_mb:") for p in problems)
    config = parse_config(
        _config("  - {source: api, function: a, http: {path: $default}}", "{kind: http, port: 0}")
    )
    assert config.sources["api"].payload_version == "2.0"
    problems = _problems(
        _config(
            "  - {source: api, function: a, http: {path: $default}}", "{kind: http, port: 0, stage: 'a b'}"
        )
    )
    assert problems == ["sources.api.stage: 'a b' is not a stage name (letters, digits, '-', '_')"]
