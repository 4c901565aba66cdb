"""Stream records (Kafka topic, DynamoDB table changes, Kinesis stream), delivered to functions in batches."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from tests.e2e.stack import NAMES, Records, Stack, unique, wait_until

TOPIC = "clicks"


async def produce(bootstrap: str, key: bytes, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(TOPIC, value=value, key=key)
    finally:
        await producer.stop()


def kafka_records(records: Records) -> list[dict[str, Any]]:
    return [
        {**rec, "value": base64.b64decode(rec.get("value", "")), "invocation": r["request_id"]}
        for r in records.under("kafka")
        for batch in r["event"]["records"].values()
        for rec in batch
    ]


def test_kafka_records_reach_the_function_in_order(stack: Stack, records: Records) -> None:
    marker = unique("click")
    values = [f"{marker}-{n}".encode() for n in range(5)]
    asyncio.run(produce(stack.kafka, marker.encode(), values))

    def delivered() -> list[dict[str, Any]]:
        mine = [r for r in kafka_records(records) if r["value"] in values]
        return mine if {r["value"] for r in mine} == set(values) else []

    delivered_records = wait_until(delivered, f"records {marker}-0..4 on {TOPIC}", context=stack.context)
    by_offset = {r["offset"]: r for r in delivered_records}  # at-least-once: a redelivery is no failure
    mine = [by_offset[o] for o in sorted(by_offset)]
    assert [r["value"] for r in mine] == values  # one key, one partition: in order
    assert {r["topic"] for r in mine} == {TOPIC}
    assert len({r["partition"] for r in mine}) == 1
    assert all(base64.b64decode(r["key"]) == marker.encode() for r in mine)


def stream_records(records: Records, prefix: str) -> list[dict[str, Any]]:
    return [rec for r in records.under(prefix) for rec in r["event"]["Records"]]


def test_table_changes_reach_the_function_in_order(stack: Stack, records: Records) -> None:
    table = stack.client("dynamodb")
    order = unique("order")
    key = {"id": {"S": order}}
    table.put_item(TableName=NAMES.ORDERS_TABLE, Item={**key, "status": {"S": "new"}})
    table.update_item(
        TableName=NAMES.ORDERS_TABLE,
        Key=key,
        UpdateExpression="SET #s = :paid",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":paid": {"S": "paid"}},
    )
    table.delete_item(TableName=NAMES.ORDERS_TABLE, Key=key)

    def changes() -> list[dict[str, Any]]:
        mine = [r for r in stream_records(records, "dynamodb") if r["dynamodb"]["Keys"] == key]
        return mine if len({r["eventID"] for r in mine}) >= 3 else []

    found = wait_until(changes, f"3 changes of item {order}", context=stack.context)
    by_id = {r["eventID"]: r for r in found}  # at-least-once: a redelivery is no failure
    insert, modify, remove = sorted(by_id.values(), key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
    assert [insert["eventName"], modify["eventName"], remove["eventName"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert insert["eventSource"] == "aws:dynamodb"
    assert insert["dynamodb"]["NewImage"] == {**key, "status": {"S": "new"}}
    assert modify["dynamodb"]["OldImage"]["status"] == {"S": "new"}
    assert modify["dynamodb"]["NewImage"]["status"] == {"S": "paid"}
    assert remove["dynamodb"]["OldImage"]["status"] == {"S": "paid"}
    assert "NewImage" not in remove["dynamodb"]
    assert f"table/{NAMES.ORDERS_TABLE}/stream/" in insert["eventSourceARN"]


def test_kinesis_records_reach_the_function_in_order(stack: Stack, records: Records) -> None:
    marker = unique("event")
    values = [f"{marker}-{n}".encode() for n in range(3)]
    kinesis = stack.client("kinesis")
    for value in values:  # one at a time, so their sequence numbers follow the order they were sent in
        kinesis.put_record(StreamName=NAMES.EVENTS_STREAM, Data=value, PartitionKey=marker)

    def delivered() -> list[dict[str, Any]]:
        mine = [r for r in stream_records(records, "kinesis") if r["kinesis"]["partitionKey"] == marker]
        return mine if {base64.b64decode(r["kinesis"]["data"]) for r in mine} == set(values) else []

    found = wait_until(delivered, f"records {marker}-0..2 on {NAMES.EVENTS_STREAM}", context=stack.context)
    by_sequence = {int(r["kinesis"]["sequenceNumber"]): r for r in found}
    mine = [by_sequence[n] for n in sorted(by_sequence)]
    assert [base64.b64decode(r["kinesis"]["data"]) for r in mine] == values
    assert {r["eventSource"] for r in mine} == {"aws:kinesis"}
    assert all(r["eventSourceARN"].endswith(f":stream/{NAMES.EVENTS_STREAM}") for r in mine)
