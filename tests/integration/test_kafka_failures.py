"""Kafka mappings giving records up: bisection to a poisoned record, record age, failure destinations."""

from __future__ import annotations

import base64
import json
import time

from tests.integration.stream_support import (
    by_partition,
    committed,
    create_topic,
    failure_records,
    kafka_router_config,
    metric,
    produce,
    read_log,
    unique,
    wait_for_lines,
    wait_until,
)


async def test_bisect_isolates_one_poisoned_record_among_10000(make_router, kafka_broker) -> None:
    topic, group, total, bad = unique("poison"), unique("g"), 10_000, 4321
    await create_topic(kafka_broker, topic, 3)
    values = [("poison" if n == bad else f"v{n}").encode() for n in range(total)]
    await produce(kafka_broker, topic, [(n % 3, None, v) for n, v in enumerate(values)])
    router = await make_router(
        kafka_router_config(
            kafka_broker,
            topic,
            group=group,
            batch="{size: 100, window_s: 0}",
            on_error="{max_retries: 2, bisect: true, destination: {directory: failed}}",
            environment={"POISON": "poison"},
        )
    )
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], total - 1, context=router.log_text)
    failed_dir = router.base_dir / "failed"
    await wait_until(
        lambda: len(failure_records(failed_dir)) >= 1, "a failure record", context=router.log_text
    )

    assert {line["v"] for line in lines} == {v.decode() for v in values} - {"poison"}  # the other 9,999
    for got in by_partition(lines).values():
        assert got == sorted(got)
    [record] = failure_records(failed_dir)
    info = record["KafkaBatchInfo"]
    assert (info["topicPartition"], info["startOffset"], info["endOffset"], info["batchSize"]) == (
        f"{topic}-{bad % 3}",
        bad // 3,
        bad // 3,
        1,
    )
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["responseContext"]["functionError"] == "Unhandled"
    [given_up] = record["payload"]["records"][f"{topic}-{bad % 3}"]
    assert base64.b64decode(given_up["value"]) == b"poison"
    assert metric(router.url, "router_stream_failure_destination_records_total", function="log") == 1
    # Halving a batch of at most 100 reaches one record in at most 7 splits.
    assert 1 <= metric(router.url, "router_stream_bisections_total", function="log") <= 7
    for _ in range(100):
        if await committed(kafka_broker, group, topic, 3) == [3334, 3333, 3333]:
            break
    else:
        raise AssertionError(await committed(kafka_broker, group, topic, 3))


async def test_old_records_go_to_a_kafka_failure_topic(make_router, kafka_broker) -> None:
    topic, dead, group = unique("aged"), unique("dead"), unique("g")
    await create_topic(kafka_broker, topic, 1)
    await create_topic(kafka_broker, dead, 1)
    hour_ago = int((time.time() - 3600) * 1000)
    await produce(
        kafka_broker, topic, [(0, None, f"old{n}".encode()) for n in range(3)], timestamp_ms=hour_ago
    )
    await produce(kafka_broker, topic, [(0, None, f"new{n}".encode()) for n in range(2)])
    destination = f'{{kafka: {{brokers: ["{kafka_broker}"], topic: {dead}}}}}'
    router = await make_router(
        kafka_router_config(
            kafka_broker,
            topic,
            group=group,
            batch="{size: 10, window_s: 0.2}",
            on_error=f"{{max_record_age_s: 60, destination: {destination}}}",
        )
    )
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 2, context=router.log_text)
    assert [line["v"] for line in lines] == ["new0", "new1"]

    records = await _read_topic(kafka_broker, dead, 1)
    [doc] = [json.loads(r.value) for r in records]
    assert r"RecordAgeExceeded" == doc["requestContext"]["condition"]
    assert doc["requestContext"]["approximateInvokeCount"] == 0
    assert (doc["KafkaBatchInfo"]["startOffset"], doc["KafkaBatchInfo"]["endOffset"]) == (0, 2)
    aged = doc["payload"]["records"][f"{topic}-0"]
    assert [base64.b64decode(r["value"]) for r in aged] == [b"old0", b"old1", b"old2"]
    assert records[0].key == f"{topic}-0".encode()
    assert read_log(router.base_dir / "log.jsonl") == lines


async def _read_topic(broker: str, topic: str, count: int) -> list:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker, auto_offset_reset="earliest", fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        got: list = []
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(records)
        return got
    finally:
        await consumer.stop()
