"""Loop protection end to end: functions that trigger themselves are stopped at limits.max_loop_depth.

Each fixture function triggers itself through a different path, carrying the trace the router gave it:
the Invoke API with boto3 (botocore sends _X_AMZN_TRACE_ID as X-Amzn-Trace-Id by itself), the HTTP
gateway, and a Kafka topic (the function copies its trace into a record header).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.integration.inspect_client import InspectError, Inspector, invoke
from tests.integration.source_triggers import send_mail
from tests.integration.stream_support import FAST_CLIENT, create_topic, produce, unique
from tests.support import free_port, wait_for

FUNCTION = """
  loop:
    runtime: python3.11
    handler: app.handler
    code: "${{FUNCTIONS}}/{code}"
    timeout_s: {timeout}
    environment: {{{env}}}
    async: {{max_retries: 0, on_failure: {{directory: dlq}}}}
"""
AWS_ENV = "AWS_ACCESS_KEY_ID: testing, AWS_SECRET_ACCESS_KEY: testing, ROUTER_ENDPOINT: 'http://127.0.0.1:${ROUTER_PORT}'"


def config(code: str, env: str, *, depth: int | None = None, timeout: int = 5, extra: str = "") -> str:
    limits = f"limits: {{max_loop_depth: {depth}}}\n" if depth else ""
    function = FUNCTION.format(code=code, env=env, timeout=timeout)
    # isolation off: loop_file writes into the watched folder, which is the test's
    invoker = 'invoker: {isolation: "off"}\n'
    head = f'server: {{port: "${{ROUTER_PORT}}"}}\nstate_dir: state\n{limits}{invoker}'
    return f"{head}functions:{function}{extra}"


async def test_async_self_invocation_stops_after_16(make_router) -> None:
    router = await make_router(config("loop_invoke", AWS_ENV))
    inspector = Inspector(router.url)
    await asyncio.to_thread(invoke, router.url, "loop", {"n": 0}, kind="Event")

    (dlq,) = await wait_for(lambda: inspector.failures("loop"), lambda d: d[0]["count"] >= 1, within_s=60)
    (record,) = [r["record"] for r in dlq["records"]]
    assert record["requestContext"]["condition"] == "RecursiveLoopDetected"
    assert record["requestPayload"] == {"n": 16}  # the 17th event of the chain was not run
    assert record["responsePayload"]["errorType"] == "RecursiveInvocationException"

    # An instance (at 128 MB, 7% of a CPU) may still be finishing when the event it queued has already run,
    # even when the chain was stopped: wait for all 16, and put them in the chain's order (the record's is
    # the order calls ended).
    calls = await wait_for(lambda: inspector.invocations("loop"), lambda found: len(found) >= 17, within_s=60)
    runs = sorted((i for i in calls if i["outcome"] != "loop-stopped"), key=lambda i: i["depth"])
    assert [i["event"]["n"] for i in runs] == list(range(16))
    assert [i["depth"] for i in runs] == list(range(1, 17))
    assert all(i["outcome"] == "success" for i in runs)
    assert len({i["trace"].split(";")[0] for i in runs}) == 1  # one chain: one Root
    (stopped,) = [i for i in await inspector.invocations("loop") if i["outcome"] == "loop-stopped"]
    assert (stopped["depth"], stopped["event"]) == (17, {"n": 16})
    assert await inspector.metric("router_loops_stopped_total", function="loop", invocation_type="Event") == 1
    assert "recursive loop stopped: loop not invoked at depth 17" in router.log_text()


async def test_sync_self_invocation_gets_recursive_invocation_exception(make_router) -> None:
    env = f"{AWS_ENV}, INVOCATION_TYPE: RequestResponse"
    router = await make_router(config("loop_invoke", env, depth=3))
    result = await asyncio.to_thread(invoke, router.url, "loop", {"n": 0})
    assert result["inner"]["inner"]["n"] == 2
    assert result["inner"]["inner"]["stopped"] == "RecursiveInvocationException"  # boto3's modelled error

    # A caller already three deep is refused with Lambda's error, without running anything.
    before = await Inspector(router.url).cursor()
    with pytest.raises(InspectError) as refused:
        await asyncio.to_thread(invoke, router.url, "loop", {"n": 9}, trace="Root=1-abc-def;Lineage=0:2")
    assert refused.value.status == 400
    assert str(refused.value.body).startswith("RecursiveInvocationException: ")
    assert "max_loop_depth 3" in str(refused.value.body)
    stopped = await Inspector(router.url).invocations("loop", after=before)
    assert [i["outcome"] for i in stopped] == ["loop-stopped"]


async def test_loop_through_the_http_gateway(make_router) -> None:
    port = free_port()
    gateway = f"""
sources:
  api: {{kind: http, port: {port}}}
routes:
  - {{source: api, function: loop, http: {{method: GET, path: /again}}}}
"""
    router = await make_router(
        config("loop_http", f"GATEWAY_URL: 'http://127.0.0.1:{port}/again'", depth=3, extra=gateway)
    )
    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/again")
    assert status == 200
    # Depths 1, 2 and 3 ran; the call that would be the 4th got 508 Loop Detected from the gateway.
    assert body["inner"]["inner"]["status"] == 508
    assert "Loop Detected" in body["inner"]["inner"]["inner"]
    depths = [i["depth"] for i in await Inspector(router.url).invocations("loop")]
    assert depths == [4, 3, 2, 1]  # the refused 4th first, then the calls as they finish, innermost first


async def test_loop_through_a_kafka_topic(make_router, kafka_broker) -> None:
    topic = unique("loop")
    await create_topic(kafka_broker, topic, 1)
    source = f"""
sources:
  stream:
    kind: kafka
    brokers: ["{kafka_broker}"]
    topic: {topic}
    group: {unique("g")}
    starting_position: TRIM_HORIZON{FAST_CLIENT}
routes:
  - source: stream
    function: loop
    batch: {{size: 1, window_s: 0}}
    on_error: {{destination: {{directory: stream-dlq}}}}
"""
    router = await make_router(config("loop_kafka", f"BROKERS: '{kafka_broker}'", depth=3, extra=source))
    inspector = Inspector(router.url)
    await produce(kafka_broker, topic, [(0, None, b"start")])

    found = await wait_for(lambda: inspector.failures("loop"), lambda d: d[1]["count"] >= 1, within_s=60)
    assert [d["owner"] for d in found] == [
        "functions.loop.async.on_failure",
        "routes[0].on_error.destination",
    ]
    record = found[1]["records"][0]["record"]
    assert record["requestContext"]["condition"] == "RecursiveLoopDetected"

    # The 4th event is stopped while the 3rd call, which caused it, may still run (or not be recorded yet).
    def successes(found: list[Any]) -> list[Any]:
        return [i for i in found if i["outcome"] == "success"]

    found = await wait_for(
        lambda: inspector.invocations("loop"), lambda f: len(successes(f)) >= 3, within_s=60
    )
    assert sorted(i["depth"] for i in successes(found)) == [1, 2, 3]


async def test_loop_through_its_own_inbox(make_router) -> None:
    smtp = free_port()
    inbox = f"""
sources:
  inbox: {{kind: email, port: {smtp}, recipients: ['@example.test']}}
routes:
  - {{source: inbox, function: loop}}
"""
    router = await make_router(config("loop_mail", f"SMTP_PORT: '{smtp}'", depth=3, extra=inbox))
    await asyncio.to_thread(send_mail, smtp, "hello")
    await _stopped_after_three(router, "re: re: re: hello")


async def test_loop_through_its_own_folder(make_router) -> None:
    folder = """
sources:
  bucket: {kind: s3, bucket: own, directory: bucket, stable_s: 0.05}
routes:
  - {source: bucket, function: loop}
"""
    router = await make_router(
        config("loop_file", "BUCKET_DIR: '${TMP}/bucket'", depth=3, extra=folder), files={"bucket/a": "start"}
    )
    await _stopped_after_three(router, None)
    assert sorted(p.name for p in (router.base_dir / "bucket").iterdir()) == ["a", "a.x", "a.x.x", "a.x.x.x"]


async def _stopped_after_three(router: Any, subject: str | None) -> None:
    """Depths 1 to 3 ran; the 4th event's record is in the function's on_failure folder."""
    inspector = Inspector(router.url)
    (dlq,) = await wait_for(lambda: inspector.failures("loop"), lambda d: d[0]["count"] >= 1, within_s=60)
    record = dlq["records"][0]["record"]
    assert record["requestContext"]["condition"] == "RecursiveLoopDetected"
    if subject is not None:
        assert record["requestPayload"]["Records"][0]["ses"]["mail"]["commonHeaders"]["subject"] == subject

    # The 4th event is stopped while the 3rd call, which caused it, may still run (or not be recorded yet).
    def successes(found: list[Any]) -> list[Any]:
        return [i for i in found if i["outcome"] == "success"]

    found = await wait_for(
        lambda: inspector.invocations("loop"), lambda f: len(successes(f)) >= 3, within_s=60
    )
    assert sorted(i["depth"] for i in successes(found)) == [1, 2, 3]


def _get(url: str) -> tuple[int, Any]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, json.loads(response.read())
