"""Tumbling windows on Kinesis and DynamoDB Streams (moto), through `router serve`, read by a function with
AWS Lambda Powertools' data classes (fixture: tests/functions/stream_window)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

from tests.integration.stream_support import (
    aws_source,
    dynamodb_table,
    kinesis_stream,
    read_log,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration


def config(source: str) -> str:
    return f"""
server: {{port: "${{ROUTER_PORT}}"}}
state_dir: state
invoker: {{isolation: "off"}}  # the functions write what they receive into the test's folder
functions:
  windows:
    runtime: python3.11
    handler: app.handler
    code: "${{FUNCTIONS}}/stream_window"
    timeout_s: 10
    environment: {{LOG_FILE: "${{TMP}}/log.jsonl"}}
sources:
{source}
routes:
  - source: stream
    function: windows
    batch: {{size: 2, tumbling_window_s: 2}}
"""


def check_windows(lines: list[dict[str, Any]], records: int, arn_prefix: str) -> None:
    """Every record counted in exactly one window's state, handed to that window's final invocation."""
    by_window: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        assert line["start"] and line["end"] > line["start"]  # Powertools' window properties are set
        assert line["shard"] and line["arn"].startswith(arn_prefix) and line["early"] is False
        by_window[line["start"]].append(line)
    assert sum(line["records"] for line in lines) == records
    for window in by_window.values():
        *batches, final = window
        assert [line["final"] for line in window] == [False] * len(batches) + [True]
        assert final["records"] == 0
        counted = 0
        for line in batches:
            assert line["state"] == ({"count": counted} if counted else {})
            counted += line["records"]
        assert final["state"] == {"count": counted}


async def finals(router: Any, records: int) -> list[dict[str, Any]]:
    """The log once every record was delivered and each window it opened had its final invocation."""
    path = router.base_dir / "log.jsonl"

    def done() -> bool:
        lines = read_log(path)
        opened = {line["start"] for line in lines}
        return sum(line["records"] for line in lines) >= records and all(
            any(line["final"] for line in lines if line["start"] == start) for start in opened
        )

    await wait_until(done, "every window's final invocation", 60, router.log_text)
    return read_log(path)


async def test_kinesis_tumbling_windows_carry_state_to_a_final_invoke(make_router, moto_server) -> None:
    name = unique("windows")
    client = await asyncio.to_thread(kinesis_stream, moto_server, name, 1)
    settings = f'endpoint: "{moto_server}", stream: {name}, starting_position: TRIM_HORIZON'
    router = await make_router(config(aws_source("kinesis", settings)))
    await asyncio.to_thread(
        client.put_records,
        StreamName=name,
        Records=[{"Data": f"v{n}".encode(), "PartitionKey": "k"} for n in range(5)],
    )
    lines = await finals(router, 5)
    check_windows(lines, 5, "arn:aws:kinesis:")


async def test_dynamodb_tumbling_windows_carry_state_to_a_final_invoke(make_router, moto_server) -> None:
    name = unique("window-table")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    settings = f'endpoint: "{moto_server}", table: {name}, starting_position: TRIM_HORIZON'
    router = await make_router(config(aws_source("dynamodb", settings)))

    def changes() -> None:
        for n in range(3):
            client.put_item(TableName=name, Item={"id": {"S": f"i{n}"}, "status": {"S": "new"}})

    await asyncio.to_thread(changes)
    lines = await finals(router, 3)
    check_windows(lines, 3, "arn:aws:dynamodb:")
