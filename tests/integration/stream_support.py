"""Helpers for the stream-source integration tests: topics and records on the real broker, Kinesis streams and
DynamoDB tables on the moto server, the log that the `stream_log` fixture function writes, failure-destination
files, router configs."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests import support
from tests.support import aws_client

# Test speed knobs from services.md: fast group joins and fetches that do not sit idle.
FAST_CLIENT = """
    session_timeout_ms: 2000
    heartbeat_interval_ms: 500
    rebalance_timeout_ms: 2000
    fetch_max_wait_ms: 20"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(broker: str, topic: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce(
    broker: str,
    topic: str,
    records: Iterable[tuple[int, bytes | None, bytes]],
    *,
    timestamp_ms: int | None = None,
) -> None:
    """Send (partition, key, value) records and wait until all are acknowledged."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=v, key=k, partition=p, timestamp_ms=timestamp_ms)
            for p, k, v in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed(broker: str, group: str, topic: str, partitions: int) -> list[int | None]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return [await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)]
    finally:
        await consumer.stop()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The lines the stream_log fixture wrote (a line being written right now is skipped)."""
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue
    return lines


async def wait_until(
    check: Callable[[], bool], what: str, within_s: float = 60.0, context: Callable[[], str] = lambda: ""
) -> None:
    """`tests.support.wait_until`, waiting longer by default: consumer groups join and rebalance slowly."""
    await support.wait_until(check, what, within_s, context)


async def wait_for_lines(
    paths: Iterable[Path], count: int, *, within_s: float = 60.0, context: Callable[[], str] = lambda: ""
) -> list[dict[str, Any]]:
    paths = list(paths)

    def distinct() -> int:
        return len({(line["p"], line["o"]) for p in paths for line in read_log(p)})

    await wait_until(
        lambda: distinct() >= count,
        f"{count} records logged",
        within_s,
        lambda: f"got {distinct()}\n{context()}",
    )
    return [line for p in paths for line in read_log(p)]


def by_partition(lines: Iterable[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for line in lines:
        out[line["p"]].append(line["o"])
    return dict(out)


def batches(lines: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Lines grouped by the request id of the call that logged them, in log order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        grouped.setdefault(line["b"], []).append(line)
    return list(grouped.values())


def failure_records(directory: Path) -> list[dict[str, Any]]:
    if not directory.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include `labels`."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def kafka_router_config(
    broker: str,
    topic: str,
    *,
    group: str,
    batch: str = "{size: 100, window_s: 0.05}",
    on_error: str | None = None,
    environment: dict[str, str] | None = None,
    reserved: int | None = None,
    source_extra: str = "",
) -> str:
    source = f"""  stream:
    kind: kafka
    brokers: ["{broker}"]
    topic: {topic}
    group: {group}
    starting_position: TRIM_HORIZON{FAST_CLIENT}{source_extra}"""
    return log_router_config(source, batch, on_error=on_error, environment=environment, reserved=reserved)


def aws_router_config(
    kind: str,
    source: str,
    *,
    batch: str = "{size: 100}",
    on_error: str | None = None,
    environment: dict[str, str] | None = None,
    route_extra: str = "",
) -> str:
    """A router with one `kind` source (its settings in `source`) routed to the stream_log function."""
    return log_router_config(
        aws_source(kind, source), batch, on_error=on_error, environment=environment, route_extra=route_extra
    )


def log_router_config(
    source: str,
    batch: str,
    *,
    on_error: str | None = None,
    environment: dict[str, str] | None = None,
    reserved: int | None = None,
    route_extra: str = "",
) -> str:
    """A router whose source `stream` (its YAML in `source`) feeds the stream_log function `log`."""
    env = {"LOG_FILE": "${TMP}/log.jsonl", **(environment or {})}
    env_text = ", ".join(f"{k}: {json.dumps(v)}" for k, v in env.items())
    route_error = f"\n    on_error: {on_error}" if on_error else ""
    reserved_text = f"\n    reserved_concurrency: {reserved}" if reserved is not None else ""
    return f"""
server: {{port: "${{ROUTER_PORT}}"}}
state_dir: state
invoker: {{isolation: "off"}}  # the functions write what they receive into the test's folder
functions:
  log:
    runtime: python3.11
    handler: app.handler
    code: "${{FUNCTIONS}}/stream_log"
    timeout_s: 1{reserved_text}
    environment: {{{env_text}}}
sources:
{source}
routes:
  - source: stream
    function: log
    batch: {batch}{route_error}{route_extra}
"""


def aws_source(kind: str, settings: str) -> str:
    """The source `stream` of a Kinesis or DynamoDB Streams kind, polling fast (its other settings given)."""
    return f"  stream: {{kind: {kind}, poll_interval_s: 0.05, shard_refresh_s: 0.5, {settings}}}"


def kinesis_stream(endpoint: str, name: str, shards: int = 1) -> Any:
    client = aws_client("kinesis", endpoint)
    client.create_stream(StreamName=name, ShardCount=shards)
    return client


def dynamodb_table(endpoint: str, name: str) -> Any:
    """A table keyed by the string `id`, with a NEW_AND_OLD_IMAGES stream."""
    client = aws_client("dynamodb", endpoint)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return client
