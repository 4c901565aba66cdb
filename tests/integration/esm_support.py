"""What the event source mapping tests share: a router config with the `aws:` section on moto, a recording
SQS function, and readers of what the function logged (tests/functions/sqs_record and stream_log).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.support import RouterProcess, wait_for, wait_until, whole_lines
from tests.unit.test_control_support import lambda_client

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
invoker: {isolation: "off"}  # the functions log what they receive into the test's folder
aws: {endpoint_url: "${MOTO}", region: us-east-1, access_key_id: testing, secret_access_key: testing}
functions:
  sqs-record:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/sqs_record"
    timeout_s: ${TIMEOUT:-3}
    environment: {LOG_FILE: "${TMP}/sqs.jsonl", REPORT: "${REPORT:-0}"}
  stream-log:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/stream_log"
    timeout_s: 3
    environment: {LOG_FILE: "${TMP}/stream.jsonl"}
"""


def lines(base: Path, name: str = "sqs.jsonl") -> list[dict[str, Any]]:
    return [json.loads(line) for line in whole_lines(base / name)]


def bodies(base: Path, *, ok: bool = True) -> list[str]:
    return [line["body"] for line in lines(base) if line["ok"] == ok]


async def wait_bodies(base: Path, *expected: str) -> None:
    await wait_until(lambda: set(expected) <= set(bodies(base)), lambda: f"{expected} in {lines(base)}")


async def call(fn: Any, /, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, **kw)


def lam(router: RouterProcess) -> Any:
    return lambda_client(router.url)


async def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    attrs = await call(
        sqs.get_queue_attributes,
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    a = attrs["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


async def wait_state(client: Any, uuid: str, state: str, within_s: float = 30.0) -> dict[str, Any]:
    found: dict[str, Any] = await wait_for(
        lambda: call(client.get_event_source_mapping, UUID=uuid), lambda m: m["State"] == state, within_s
    )
    assert found["State"] == state, found
    return found


async def wait_queue_empty(sqs: Any, url: str, within_s: float = 30.0) -> None:
    counts = await wait_for(lambda: queue_counts(sqs, url), lambda c: c == (0, 0), within_s)
    assert counts == (0, 0), f"queue still holds (visible, in flight) = {counts}"
