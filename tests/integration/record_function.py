"""The `record` function of the S3 and schedule tests, and what it recorded.

`CONFIG` is the head of a router config (server, state_dir and the function `record`: the fixture
tests/functions/s3_record, which appends every event it receives to `<base>/events.jsonl`); a test adds its
`sources:` and `routes:`. `events(base)` reads the events back, `records(base)` the S3 records in them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support import wait_until, whole_lines

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
invoker: {isolation: "off"}  # the function appends what it receives to a file in the test's folder
functions:
  record:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/s3_record"
    timeout_s: 1
    environment: {RECORD_PATH: "${TMP}/events.jsonl"}
"""


def events(base: Path) -> list[dict[str, Any]]:
    """The events recorded so far (whole lines: a write may be under way while the file is read)."""
    return [json.loads(line)["event"] for line in whole_lines(base / "events.jsonl")]


def records(base: Path) -> list[dict[str, Any]]:
    """Every S3 record the function received, in order."""
    return [r for event in events(base) for r in event["Records"]]


def seen(base: Path) -> Counter[tuple[str, str]]:
    """(eventName, key as sent) -> how many times the function received it."""
    return Counter((r["eventName"], r["s3"]["object"]["key"]) for r in records(base))


async def wait_for_keys(base: Path, *keys: str, event: str = "ObjectCreated:Put") -> None:
    """Until the function has received `event` for every key (as sent: URL-encoded)."""
    await wait_until(
        lambda: all(seen(base)[(event, k)] >= 1 for k in keys), lambda: f"{event} {keys}: got {seen(base)}"
    )
