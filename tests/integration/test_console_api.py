"""The console's endpoints against a real `router serve` (no browser): the page and its files, the JSON
endpoints, the live feed (server-sent events) and the token (docs/console.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from router.dispatch.history import FIELDS
from tests.integration.stream_support import (
    create_topic,
    kafka_router_config,
    produce,
    unique,
    wait_for_lines,
)
from tests.support import wait_for

pytestmark = pytest.mark.integration

TOKEN = "console-test-token"
CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
functions:
  echo:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/inspect_echo"
    memory_mb: 256
    timeout_s: 2
    reserved_concurrency: 3
    async: {max_retries: 0, on_failure: {directory: failed/echo}}
sources:
  uploads: {kind: s3, bucket: uploads, directory: bucket, stable_s: 0.1}
routes:
  - {source: uploads, function: echo, filter: {s3: {object: {key: [{suffix: ".jpg"}]}}}}
"""


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str = "") -> None:
        self.session, self.url = session, url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def get(self, path: str, status: int = 200) -> Any:
        async with self.session.get(self.url + path, headers=self.headers) as r:
            body = await r.json(content_type=None)
            assert r.status == status, (r.status, body)
            return body

    async def invoke(self, function: str, payload: Any, kind: str = "RequestResponse") -> str:
        headers = {**self.headers, "X-Amz-Invocation-Type": kind}
        path = f"/2015-03-31/functions/{function}/invocations"
        async with self.session.post(self.url + path, json=payload, headers=headers) as r:
            await r.read()
            assert r.status in (200, 202), r.status
            return r.headers["x-amzn-RequestId"]


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str | None, Any]]:
    """(event, id, data) of a text/event-stream, as they come."""
    event, event_id, data = "message", None, ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            yield event, event_id, json.loads(data) if data else None
            event, event_id, data = "message", None, ""
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data += line[6:]


async def next_event(stream: AsyncIterator[tuple[str, str | None, Any]], name: str) -> tuple[str | None, Any]:
    async with asyncio.timeout(30):
        async for event, event_id, data in stream:
            if event == name:
                return event_id, data
    raise AssertionError(f"the stream ended before a {name!r} event")


async def test_functions_history_and_templates_describe_the_running_router(make_router) -> None:
    router = await make_router(CONFIG)
    async with aiohttp.ClientSession() as session:
        client = Client(session, router.url)
        await client.invoke("echo", {"n": 1})
        await client.invoke("echo", {"fail": True})

        listing = await client.get("/console/api/functions")
        (echo,) = listing["functions"]
        assert echo["origin"] == "config" and echo["runtime"] == "python3.11"
        assert (echo["memory_mb"], echo["timeout_s"], echo["reserved_concurrency"]) == (256, 2, 3)
        assert echo["async"]["on_failure"]["kind"] == "directory"
        assert echo["stats"]["invocations"] == 2 and echo["stats"]["errors"] == 1
        assert echo["stats"]["cold_starts"] == 1
        assert listing["account"]["concurrency"] >= 3

        history = await client.get("/console/api/history?function=echo")
        assert history["fields"] == list(FIELDS) and history["step_s"] == 10
        open_point = dict(zip(FIELDS, history["functions"]["echo"][-1], strict=True))
        # the open bucket already counts both calls (or they fell in the bucket closed just before it)
        points = [dict(zip(FIELDS, p, strict=True)) for p in history["functions"]["echo"]]
        assert sum(p["invocations"] for p in points) == 2 and sum(p["errors"] for p in points) == 1
        assert max(p["p99_ms"] for p in points) > 0 and max(p["max_memory_mb"] for p in points) > 0
        assert open_point["t"] <= history["now"] < open_point["t"] + 10
        missing = await client.get("/console/api/history?function=nope", status=404)
        assert missing["Type"] == "User" and "nope" in missing["Message"]

        templates = await client.get("/console/api/templates")
        assert set(templates["kinds"]) >= {"s3", "dynamodb", "kafka", "kinesis", "sqs", "sns", "http"}
        assert templates["kinds"]["s3"]["Records"][0]["eventSource"] == "aws:s3"


async def test_the_live_feed_sends_backlog_invocations_with_report_lines_and_stats(make_router) -> None:
    router = await make_router(CONFIG)
    async with aiohttp.ClientSession() as session:
        client = Client(session, router.url)
        before = await client.invoke("echo", {"n": "before"})
        async with session.get(f"{router.url}/console/api/stream?interval_s=0.2") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            stream = events(response)
            _, hello = await next_event(stream, "hello")
            assert hello["inspect"] is True and hello["fields"] == list(FIELDS)
            seq, backlog = await next_event(stream, "invocation")
            assert backlog["request_id"] == before and seq == str(backlog["seq"])
            assert "event" not in backlog and "result" not in backlog  # opened with /inspect/requests/{id}
            assert backlog["report"].startswith(f"REPORT RequestId: {before}\tDuration: ")

            live = await client.invoke("echo", {"fail": True})
            _, failed = await next_event(stream, "invocation")
            assert (failed["request_id"], failed["outcome"]) == (live, "error")
            assert "Max Memory Used: " in failed["report"] and failed["source"] == "invoke"

            _, stats = await next_event(stream, "stats")
            assert stats["functions"]["echo"]["invocations"] == 2
            point = dict(zip(FIELDS, stats["points"]["echo"], strict=True))
            assert point["t"] == stats["opened"]


async def test_the_feed_filters_resumes_after_a_cursor_and_rejects_bad_queries(make_router) -> None:
    router = await make_router(CONFIG)
    async with aiohttp.ClientSession() as session:
        client = Client(session, router.url)
        ok = await client.invoke("echo", {"n": 1})
        bad = await client.invoke("echo", {"fail": True})
        async with session.get(f"{router.url}/console/api/stream?outcome=error&interval_s=60") as response:
            stream = events(response)
            _, only = await next_event(stream, "invocation")
            assert only["request_id"] == bad  # the success before it is not sent
            seq_of_bad = only["seq"]
        path = f"/console/api/stream?backlog=0&interval_s=60&after={seq_of_bad - 1}"
        async with session.get(router.url + path) as response:
            _, hello = await next_event(events(response), "hello")
            assert hello["cursor"] == seq_of_bad - 1
        async with session.get(f"{router.url}/console/api/stream?after={seq_of_bad - 2}") as response:
            _, resumed = await next_event(events(response), "invocation")
            assert resumed["request_id"] == ok
        for query, name in (("interval_s=0", "interval_s"), ("backlog=x", "backlog"), ("after=-1", "after")):
            async with session.get(f"{router.url}/console/api/stream?{query}") as response:
                assert response.status == 400
                assert response.headers["X-Amzn-ErrorType"] == "InvalidParameterValueException"
                assert name in (await response.json())["message"]


async def test_sources_show_state_routes_and_last_event(make_router) -> None:
    router = await make_router(CONFIG)
    (router.base_dir / "bucket").mkdir(exist_ok=True)
    (router.base_dir / "bucket" / "cat.jpg").write_bytes(b"meow")
    async with aiohttp.ClientSession() as session:
        client = Client(session, router.url)

        async def sources() -> Any:
            (uploads,) = (await client.get("/console/api/sources"))["sources"]
            return uploads

        uploads = await wait_for(sources, lambda u: u["last_event"] is not None, within_s=30)
        assert uploads["name"] == "uploads" and uploads["kind"] == "s3" and uploads["shape"] == "s3"
        assert uploads["state"] == "running" and uploads["restarts"] == 0 and uploads["mapping"] is False
        (route,) = uploads["routes"]
        assert route["functions"] == ["echo"] and route["filter"]["s3"]["object"]["key"] == [
            {"suffix": ".jpg"}
        ]
        assert uploads["last_event"]["function"] == "echo" and uploads["last_event"]["outcome"] == "success"
        assert uploads["settings"]["bucket"] == "uploads"


async def test_stream_sources_publish_checkpoints_and_counters(make_router, kafka_broker) -> None:
    topic, group = unique("console"), unique("g")
    await create_topic(kafka_broker, topic, 2)
    await produce(kafka_broker, topic, [(n % 2, None, f"v{n}".encode()) for n in range(10)])
    router = await make_router(kafka_router_config(kafka_broker, topic, group=group))
    await wait_for_lines([router.base_dir / "log.jsonl"], 10, context=router.log_text)
    async with aiohttp.ClientSession() as session:
        client = Client(session, router.url)

        async def status() -> Any:
            (stream,) = (await client.get("/console/api/sources"))["sources"]
            (part,) = stream["status"].values()
            return part

        def settled(part: Any) -> bool:
            return part.get("delivered") == 10 and len(part.get("checkpoints", {})) == 2

        part = await wait_for(status, settled, within_s=30)
        assert part["function"] == "log" and part["failed"] == 0
        assert sorted(part["checkpoints"]) == [f"{topic}-0", f"{topic}-1"]
        assert all(lag == 0 for lag in part["lag"].values())


async def test_with_a_token_the_page_is_open_and_the_api_is_not(make_router) -> None:
    router = await make_router(CONFIG.replace('server: {port: "${ROUTER_PORT}"}', SERVER_WITH_TOKEN))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{router.url}/console", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/console/"
        async with session.get(f"{router.url}/console/") as r:
            page = await r.text()
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        for src in ('static/js/app.js"', 'static/console.css"'):
            assert src in page
        async with session.get(f"{router.url}/console/static/js/app.js") as r:
            assert r.status == 200 and "javascript" in r.headers["Content-Type"]
        for path in ("/console/api/functions", "/console/api/stream", "/console/api/sources"):
            async with session.get(router.url + path) as r:
                assert r.status == 401, path
                assert r.headers["X-Amzn-ErrorType"] == "MissingAuthenticationTokenException"
        wrong = Client(session, router.url, "wrong")
        await wrong.get("/console/api/functions", status=403)
        right = Client(session, router.url, TOKEN)
        assert [f["name"] for f in (await right.get("/console/api/functions"))["functions"]] == ["echo"]


SERVER_WITH_TOKEN = f'server: {{port: "${{ROUTER_PORT}}", auth_token: {TOKEN}}}'
