"""The event inspection API end to end: a real router, real function processes, the API over HTTP.

The tests are written the way the API is meant to be used in a user's own integration tests: read the
cursor, trigger something, wait for the invocation that matches a pattern (no polling of files).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from router.shapes import s3 as s3_shape
from tests.integration.inspect_client import InspectError, Inspector, invoke
from tests.support import wait_for

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
inspect: {ring_size: 4}
functions:
  echo:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/inspect_echo"
    timeout_s: 1
    async: {max_retries: 0, on_failure: {directory: dlq/echo}}
sources:
  uploads: {kind: s3, bucket: uploads, directory: bucket, stable_s: 0.1}
routes:
  - {source: uploads, function: echo, filter: {s3: {object: {key: [{suffix: ".jpg"}]}}}}
"""

# The ring bound (inspect.ring_size) applies to the record in memory (record.enabled false).
MEMORY_CONFIG = CONFIG.replace("inspect: {ring_size: 4}", "inspect: {ring_size: 4}\nrecord: {enabled: false}")


async def call(url: str, payload: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(invoke, url, "echo", payload, **kw)


async def test_invocations_are_listed_waited_for_and_bounded(make_router) -> None:
    router = await make_router(MEMORY_CONFIG)
    inspector = Inspector(router.url)
    start = await inspector.cursor()
    await call(router.url, {"n": 1})
    await call(router.url, {"n": 2})

    listed = await inspector.invocations("echo", after=start)
    assert [i["event"] for i in listed] == [{"n": 1}, {"n": 2}]
    first = listed[0]
    assert first["result"]["received"] == {"n": 1} and first["outcome"] == "success"
    assert (first["source"], first["invocation_type"], first["depth"]) == ("invoke", "RequestResponse", 1)
    assert first["trace"] == first["result"]["trace"]  # what the function saw as _X_AMZN_TRACE_ID
    assert first["seq"] < listed[1]["seq"] and first["request_id"] and first["duration_ms"] > 0

    # Already there: the wait answers at once; a pattern may look at the result and the outcome too.
    hit = await inspector.wait("echo", {"event": {"n": [2]}}, after=start)
    assert hit["seq"] == listed[1]["seq"]
    hit = await inspector.wait(
        "echo", {"result": {"received": {"n": [1]}}, "outcome": ["success"]}, after=start
    )
    assert hit["seq"] == first["seq"]

    # Not there yet: the long poll returns when it happens.
    cursor = await inspector.cursor()
    waiting = asyncio.ensure_future(
        inspector.wait("echo", {"event": {"n": [{"numeric": [">", 2]}]}}, after=cursor)
    )
    await call(router.url, {"n": 3})
    assert (await waiting)["event"] == {"n": 3}

    with pytest.raises(InspectError) as timeout:
        await inspector.wait("echo", {"event": {"n": [99]}}, after=cursor, timeout_s=0.2)
    assert timeout.value.status == 408
    with pytest.raises(InspectError) as bad:
        await inspector.wait("echo", {"event": {"n": [{"sufix": "x"}]}})
    assert (
        bad.value.status == 400
        and "pattern.event.n[0]" in str(bad.value.body)
        and "sufix" in str(bad.value.body)
    )
    with pytest.raises(InspectError) as unknown:
        await inspector.invocations("nope")
    assert unknown.value.status == 404

    for n in (4, 5, 6):
        await call(router.url, {"n": n})
    assert [i["event"]["n"] for i in await inspector.invocations("echo")] == [3, 4, 5, 6]  # ring_size 4
    assert [i["event"]["n"] for i in await inspector.invocations("echo", limit=2)] == [5, 6]


async def test_inject_failures_and_tail(make_router) -> None:
    router = await make_router(CONFIG)
    inspector = Inspector(router.url)
    cursor = await inspector.cursor()
    records = [
        s3_shape.record("uploads", key, size=3, etag="e", sequencer="0A", time=time.time())
        for key in ("a.jpg", "b.txt")
    ]
    injected = await inspector.inject("uploads", records=records)
    assert (injected["mode"], injected["queued"], injected["filtered"]) == ("queued", 1, 1)
    hit = await inspector.wait(
        "echo", {"event": {"Records": {"s3": {"object": {"key": ["a.jpg"]}}}}}, after=cursor
    )
    assert (hit["source"], hit["invocation_type"], hit["attempt"]) == ("uploads", "Event", 1)
    assert hit["request_id"] == injected["request_ids"][0]

    # A failed asynchronous event: its record in the on_failure directory, read through the API.
    await call(router.url, {"fail": True}, kind="Event")
    failed = await inspector.wait("echo", {"outcome": ["error"]}, after=cursor)
    assert failed["error_type"] == "RuntimeError" and failed["result"]["errorMessage"] == "asked to fail"
    (destination,) = await wait_for(
        lambda: inspector.failures("echo"), lambda d: d[0]["count"] == 1, within_s=20
    )
    assert destination["owner"] == "functions.echo.async.on_failure" and destination["kind"] == "directory"
    record = destination["records"][0]["record"]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert (
        record["requestPayload"] == {"fail": True}
        and record["requestContext"]["requestId"] == failed["request_id"]
    )

    # router tail: the newest held, then one as it happens.
    newest = await tail(router.url, "-n", "1", "--max", "1")
    assert "echo" in newest and failed["request_id"] in newest and "error(RuntimeError)" in newest
    follower = start_tail(router.url, "--max", "1", "--events")
    try:
        # The follower starts at a cursor it reads when it starts, unseen by us: call until it prints.
        deadline, n = time.monotonic() + 30, 100
        while follower.poll() is None and time.monotonic() < deadline:
            await call(router.url, {"n": n})
            n += 1
            await asyncio.sleep(0.05)
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert 'event:  {"n": 1' in out and "src=invoke Sync success" in out


async def test_inspection_off(make_router) -> None:
    router = await make_router(CONFIG.replace("inspect: {ring_size: 4}", "inspect: {enabled: false}"))
    assert (await call(router.url, {"n": 1}))["received"] == {"n": 1}
    with pytest.raises(InspectError) as off:
        await Inspector(router.url).cursor()
    assert off.value.status == 404 and "inspect.enabled" in str(off.value.body)


def start_tail(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "router", "tail", "echo", "--endpoint", url, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip


async def tail(url: str, *args: str) -> str:
    proc = start_tail(url, *args)
    try:
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return out
