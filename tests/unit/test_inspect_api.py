"""The inspection API in-process: real app, dispatcher, routes and filters; echo instances, no processes.

Covers what the integration tests do not reach cheaply: inject into each way a kind delivers (queued for
s3, invoked as a batch for kafka, routed by method and path for http), the failure listing of every
destination kind, and request validation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.control.app import create_app
from router.control.catalog import FunctionCatalog
from router.control.plane import INSPECTION, ControlPlane, Inspection
from router.core.clock import SystemClock
from router.core.ports import SourceContext
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.routing import bind_routes
from router.metrics import Metrics
from router.record.memory import InspectStore
from router.validate import parse_config
from tests.unit.test_control_support import echo_factory

CONFIG = """
server: {port: 0}
functions:
  seen:
    runtime: python3.11
    handler: app.handler
    code: code
    async: {max_retries: 0, on_failure: {directory: dlq}}
  other: {runtime: python3.11, handler: app.handler, code: code, async: {on_failure: {function: seen}}}
sources:
  uploads: {kind: s3, bucket: uploads, directory: bucket}
  clicks: {kind: kafka, brokers: ["127.0.0.1:1"], topic: clicks}
  api: {kind: http, port: 0}
routes:
  - {source: uploads, function: seen, filter: {s3: {object: {key: [{suffix: .jpg}]}}}}
  - {source: clicks, function: [seen, other], filter: {value: {type: [keep]}},
     on_error: {destination: {kafka: {brokers: ["127.0.0.1:1"], topic: dead}}}}
  - {source: api, function: seen, http: {method: GET, path: "/items/{id}"}}
"""


class Harness:
    def __init__(self, url: str, dispatcher: Dispatcher, base: Path) -> None:
        self.url, self.dispatcher, self.base = url, dispatcher, base

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.request(method, f"{self.url}{path}", json=body) as r:
            return r.status, await r.json()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(e, c):\n    return e\n")
    config = parse_config(CONFIG, base_dir=tmp_path, env={})
    state = config.state_path
    state.mkdir(parents=True)
    metrics = Metrics()
    dispatcher = Dispatcher(config, state_dir=state, metrics=metrics, instance_factory=echo_factory)
    catalog = FunctionCatalog(config, state, dispatcher)
    await catalog.start()
    await dispatcher.start()
    store = InspectStore()
    store.attach(dispatcher)
    contexts = {}
    for name, settings in config.sources.items():
        routes = bind_routes(config, name, dispatcher)
        contexts[name] = SourceContext(name=name, config=settings, routes=routes, state_dir=state,
                                       clock=SystemClock())  # fmt: skip
    inspection = Inspection(store=store, sources=lambda: contexts, config=lambda: config)
    plane = ControlPlane(config=config, dispatcher=dispatcher, metrics=metrics, is_ready=lambda: True,
                         catalog=catalog, extras={INSPECTION: inspection})  # fmt: skip
    runner = web.AppRunner(create_app(plane), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Harness(f"http://127.0.0.1:{port}", dispatcher, tmp_path)
    store.close()
    await runner.cleanup()
    await dispatcher.aclose()


def s3_record(key: str) -> dict[str, Any]:
    from router.shapes import s3

    return s3.record("uploads", key, size=1, sequencer="01", time=1_700_000_000.0)


async def test_inject_into_an_async_source_queues_through_its_filter(harness: Harness) -> None:
    status, body = await harness.call(
        "POST", "/inspect/sources/uploads/inject", {"records": [s3_record("a.jpg"), s3_record("b.txt")]}
    )
    assert status == 200
    assert (body["mode"], body["queued"], body["filtered"], body["events"]) == ("queued", 1, 1, 2)
    status, found = await harness.call("POST", "/inspect/functions/seen/wait", {"after": 0, "timeout_s": 5})
    invocation = found["invocation"]
    assert invocation["request_id"] == body["request_ids"][0] and invocation["source"] == "uploads"
    assert invocation["result"]["echo"]["Records"][0]["s3"]["object"]["key"] == "a.jpg"

    # A whole event, as `router events --kind s3` prints it, and the kind's sample when nothing is given.
    status, body = await harness.call(
        "POST", "/inspect/sources/uploads/inject", {"event": {"Records": [s3_record("c.jpg")]}}
    )
    assert (status, body["queued"]) == (200, 1)
    status, body = await harness.call("POST", "/inspect/sources/uploads/inject", {})
    assert (status, body["events"]) == (200, 1)  # the sample's key ends in .jpg


async def test_inject_into_a_stream_source_invokes_each_route_with_its_batch(harness: Harness) -> None:
    import base64

    def kafka(value: bytes, offset: int) -> dict[str, Any]:
        value_b64 = base64.b64encode(value).decode()
        return {"topic": "clicks", "partition": 0, "offset": offset, "timestamp": 1_700_000_000_000,
                "timestampType": "CREATE_TIME", "value": value_b64, "headers": []}  # fmt: skip

    records = [kafka(b'{"type": "keep"}', 1), kafka(b'{"type": "drop"}', 2), kafka(b"text", 3)]
    trace = "Root=1-a-b;Lineage=0:4"
    status, body = await harness.call(
        "POST", "/inspect/sources/clicks/inject", {"records": records, "trace": trace}
    )
    assert status == 200 and body["mode"] == "invoked" and body["filtered"] == 4  # 2 refused by each route
    assert [i["function"] for i in body["invocations"]] == ["seen", "other"]
    batch = body["invocations"][0]["result"]["echo"]["records"]["clicks-0"]
    assert [r["offset"] for r in batch] == [1]
    status, listed = await harness.call("GET", "/inspect/functions/seen/invocations")
    assert listed["invocations"][-1]["depth"] == 6  # the injected trace was at hop 4

    status, body = await harness.call(
        "POST", "/inspect/sources/clicks/inject", {"function": "other", "records": records[:1]}
    )
    assert [i["function"] for i in body["invocations"]] == ["other"]


async def test_inject_into_http_routes_by_method_and_path(harness: Harness) -> None:
    from router.shapes import apigateway

    event = apigateway.sample().record  # POST /items/42: no route takes POST
    status, body = await harness.call("POST", "/inspect/sources/api/inject", {"event": event})
    assert (status, body["filtered"], body["invocations"]) == (200, 1, [])
    event = {
        **event,
        "requestContext": {
            **event["requestContext"],
            "http": {**event["requestContext"]["http"], "method": "GET"},
        },
    }
    status, body = await harness.call("POST", "/inspect/sources/api/inject", {"event": event})
    (called,) = body["invocations"]
    assert called["function"] == "seen" and called["outcome"] == "success"


async def test_inject_refuses_what_it_cannot_use(harness: Harness) -> None:
    assert (await harness.call("POST", "/inspect/sources/nope/inject", {}))[0] == 404
    status, body = await harness.call("POST", "/inspect/sources/uploads/inject", {"record": {"s3": {}}})
    assert status == 400 and "not a s3 record" in body["message"]
    status, body = await harness.call("POST", "/inspect/sources/uploads/inject", {"function": "other"})
    assert status == 400 and "no route to 'other'" in body["message"]
    assert (await harness.call("POST", "/inspect/sources/uploads/inject", {"unknown": 1}))[0] == 400
    assert (await harness.call("POST", "/inspect/sources/clicks/inject", {"event": {"Records": []}}))[
        0
    ] == 400


async def test_failures_lists_every_destination_and_reads_directories(harness: Harness) -> None:
    dlq = harness.base / "dlq"
    dlq.mkdir()
    for n in range(3):
        (dlq / f"2024010{n}-r{n}.json").write_text(json.dumps({"requestContext": {"requestId": f"r{n}"}}))
    (dlq / ".half.json.tmp").write_text("{")
    status, body = await harness.call("GET", "/inspect/failures?limit=2")
    assert status == 200
    owners = [(d["owner"], d["kind"], d["target"], d["count"]) for d in body["destinations"]]
    assert owners == [
        ("functions.other.async.on_failure", "function", "seen", None),
        ("functions.seen.async.on_failure", "directory", str(dlq.resolve()), 3),
        ("routes[1].on_error.destination", "kafka", "dead", None),
    ]
    assert [r["file"] for r in body["destinations"][1]["records"]] == ["20240101-r1.json", "20240102-r2.json"]
    _, body = await harness.call("GET", "/inspect/functions/other/failures")
    assert [d["owner"] for d in body["destinations"]] == [
        "functions.other.async.on_failure",
        "routes[1].on_error.destination",
    ]
    assert (await harness.call("GET", "/inspect/functions/nope/failures"))[0] == 404
    assert (await harness.call("GET", "/inspect/failures?limit=x"))[0] == 400


async def test_list_and_wait_validate_their_input(harness: Harness) -> None:
    assert (await harness.call("GET", "/inspect/invocations?after=-1"))[0] == 400
    assert (await harness.call("GET", "/inspect/invocations?wait_s=1000"))[0] == 400
    assert (await harness.call("POST", "/inspect/wait", {"timeout_s": -1}))[0] == 400
    assert (await harness.call("POST", "/inspect/wait", {"pattern": "x"}))[0] == 400
    status, body = await harness.call("POST", "/inspect/wait", {"timeout_s": 0})
    assert status == 408 and body["Type"] == "User"
    status, body = await harness.call("GET", "/inspect/functions")
    assert body == {"cursor": 0, "functions": {}}
