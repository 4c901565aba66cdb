"""Redrive end to end: failed asynchronous events pile up in a failure destination (a folder, a Kafka topic on
the tansu broker); a redrive before the fix keeps them all, a redrive after it sends each back once and
leaves the destination empty (`router redrive` run as the user would run it)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.inspect_client import Inspector, invoke
from tests.support import REPO, wait_for

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
invoker: {isolation: "off"}  # the functions write what they receive into the test's folder
functions:
  fixable:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/fixable"
    environment: {FIX_FLAG: "${TMP}/fixed"}
    async: {max_retries: 0, on_failure: {directory: dlq}}
  streamed:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/fixable"
    environment: {FIX_FLAG: "${TMP}/fixed"}
    async: {max_retries: 0, on_failure: {kafka: {brokers: ["${BROKER}"], topic: "${TOPIC}"}}}
"""


def redrive_cli(router: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", "redrive", *args, "--endpoint", router.url, "--rate", "1000"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


async def send(router: Any, function: str, count: int) -> None:
    for n in range(count):
        await asyncio.to_thread(invoke, router.url, function, {"n": n}, kind="Event")


async def test_a_hundred_failed_events_redriven_after_the_fix_leave_the_folder_empty(
    make_router, kafka_broker: str
) -> None:
    router = await make_router(CONFIG, env={"BROKER": kafka_broker, "TOPIC": "unused-failures"})
    inspector = Inspector(router.url)
    dlq = Path(router.base_dir) / "dlq"
    await send(router, "fixable", 100)
    await wait_for(lambda: inspector.failures("fixable"), lambda d: d[0]["count"] == 100, within_s=120)
    names = sorted(p.name for p in dlq.iterdir())

    before = await asyncio.to_thread(redrive_cli, router, "--function", "fixable")
    assert before.returncode == 1, before.stdout + before.stderr  # every one failed again: kept
    assert "100 entries, 0 succeeded, 100 failed" in before.stdout
    assert sorted(p.name for p in dlq.iterdir()) == names

    dry = await inspector.redrive(function="fixable", dry_run=True)
    assert (dry["would_send"], dry["succeeded"]) == (100, 0) and len(list(dlq.iterdir())) == 100

    (Path(router.base_dir) / "fixed").write_text("the fix")
    cursor = await inspector.cursor()
    after = await asyncio.to_thread(redrive_cli, router, "--function", "fixable")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "100 entries, 100 succeeded, 0 failed" in after.stdout
    assert list(dlq.iterdir()) == []
    redriven = await inspector.invocations("fixable", after=cursor)
    assert len(redriven) == 100 and {i["source"] for i in redriven} == {"redrive"}
    assert sorted(i["event"]["n"] for i in redriven) == list(range(100))  # each once
    assert all(i["outcome"] == "success" for i in redriven)


async def test_a_kafka_failure_topic_is_listed_redriven_and_emptied(make_router, kafka_broker: str) -> None:
    topic = f"failures-{os.getpid()}"
    router = await make_router(CONFIG, env={"BROKER": kafka_broker, "TOPIC": topic})
    inspector = Inspector(router.url)
    await send(router, "streamed", 5)

    def listed(destinations: list[dict[str, Any]]) -> bool:
        return destinations[0].get("count") == 5

    (destination,) = await wait_for(lambda: inspector.failures("streamed"), listed, within_s=60)
    assert (destination["kind"], destination["target"]) == ("kafka", topic)
    conditions = {r["record"]["requestContext"]["condition"] for r in destination["records"]}
    assert conditions == {"RetriesExhausted"}

    failed = await inspector.redrive(function="streamed")
    assert (failed["entries"], failed["failed"]) == (5, 5)
    (destination,) = await inspector.failures("streamed")
    assert destination["count"] == 5  # kept: produced again past the redrive's offset

    (Path(router.base_dir) / "fixed").write_text("the fix")
    fixed = await inspector.redrive(destination=topic)
    assert (fixed["entries"], fixed["succeeded"], fixed["failed"]) == (5, 5, 0)
    (destination,) = await inspector.failures("streamed")
    assert destination["count"] == 0 and destination["records"] == []
    assert (await inspector.redrive(destination=topic))["entries"] == 0
    events = sorted(json.dumps(i["event"]) for i in await inspector.invocations("streamed", source="redrive"))
    assert len(events) == 10 and len(set(events)) == 5  # 5 failed again, then the same 5 succeeded
