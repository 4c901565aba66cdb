"""Kinesis, DynamoDB Streams and self-managed Kafka event source mappings created through the Lambda API with
boto3, run by a real router on the stream engine: records put into a moto stream or table, or produced to the
tansu broker, reach the function (tests/functions/stream_log); Update with Enabled=false stops a Kafka
mapping's consumer, true resumes it at the committed offset.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.esm_support import CONFIG, call, lam, wait_state
from tests.integration.stream_support import (
    dynamodb_table,
    kinesis_stream,
    produce,
    read_log,
    unique,
    wait_for_lines,
)
from tests.support import RouterProcess


async def router_for(make_router: Any, moto_server: str) -> RouterProcess:
    router: RouterProcess = await make_router(CONFIG, env={"MOTO": moto_server})
    return router


def logged_values(router: RouterProcess) -> list[str]:
    return [line["v"] for line in read_log(router.base_dir / "stream.jsonl")]


async def test_a_kinesis_mapping_delivers(make_router: Any, moto_server: str) -> None:
    router = await router_for(make_router, moto_server)
    name = unique("esm")
    kinesis = await asyncio.to_thread(kinesis_stream, moto_server, name)
    arn = (await call(kinesis.describe_stream_summary, StreamName=name))["StreamDescriptionSummary"][
        "StreamARN"
    ]
    client = lam(router)
    created = await call(
        client.create_event_source_mapping,
        EventSourceArn=arn,
        FunctionName="stream-log",
        StartingPosition="TRIM_HORIZON",
        BatchSize=50,
        MaximumRetryAttempts=3,
        BisectBatchOnFunctionError=True,
        ParallelizationFactor=2,
    )
    assert created["StartingPosition"] == "TRIM_HORIZON" and created["ParallelizationFactor"] == 2
    assert created["MaximumRetryAttempts"] == 3 and created["BisectBatchOnFunctionError"] is True
    assert created["LastProcessingResult"] == "No records processed"
    await wait_state(client, created["UUID"], "Enabled")

    for i in range(3):
        await call(kinesis.put_record, StreamName=name, Data=f"k-{i}".encode(), PartitionKey="p")
    await wait_for_lines([router.base_dir / "stream.jsonl"], 3, context=router.log_text)
    assert logged_values(router) == ["k-0", "k-1", "k-2"]
    got = await call(client.get_event_source_mapping, UUID=created["UUID"])
    assert got["LastProcessingResult"] == "OK"


async def test_a_dynamodb_streams_mapping_delivers(make_router: Any, moto_server: str) -> None:
    router = await router_for(make_router, moto_server)
    name = unique("esm")
    table = await asyncio.to_thread(dynamodb_table, moto_server, name)
    arn = (await call(table.describe_table, TableName=name))["Table"]["LatestStreamArn"]
    client = lam(router)
    created = await call(
        client.create_event_source_mapping,
        EventSourceArn=arn,
        FunctionName="stream-log",
        StartingPosition="TRIM_HORIZON",
        FilterCriteria={"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]},
    )
    assert created["FilterCriteria"] == {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]}
    await wait_state(client, created["UUID"], "Enabled")

    await call(table.put_item, TableName=name, Item={"id": {"S": "1"}, "n": {"N": "1"}})
    await call(table.put_item, TableName=name, Item={"id": {"S": "1"}, "n": {"N": "2"}})  # MODIFY: filtered
    await call(table.put_item, TableName=name, Item={"id": {"S": "2"}, "n": {"N": "1"}})
    await wait_for_lines([router.base_dir / "stream.jsonl"], 2, context=router.log_text)
    assert logged_values(router) == ["INSERT", "INSERT"]


async def test_a_self_managed_kafka_mapping_delivers_and_pauses(
    make_router: Any, moto_server: str, kafka_broker: str
) -> None:
    router = await router_for(make_router, moto_server)
    topic = unique("esm")
    await produce(kafka_broker, topic, [(0, None, b"before")])
    client = lam(router)
    created = await call(
        client.create_event_source_mapping,
        FunctionName="stream-log",
        SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka_broker]}},
        Topics=[topic],
        StartingPosition="TRIM_HORIZON",
        SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": f"group-{topic}"},
    )
    uid = created["UUID"]
    assert created["Topics"] == [topic]
    assert created["SelfManagedEventSource"] == {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka_broker]}}
    assert created["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": f"group-{topic}"}
    await wait_for_lines([router.base_dir / "stream.jsonl"], 1, context=router.log_text)

    await call(client.update_event_source_mapping, UUID=uid, Enabled=False)
    await wait_state(client, uid, "Disabled")
    await produce(kafka_broker, topic, [(0, None, b"while-disabled")])
    await call(client.update_event_source_mapping, UUID=uid, Enabled=True)
    await wait_state(client, uid, "Enabled")
    await wait_for_lines([router.base_dir / "stream.jsonl"], 2, context=router.log_text)
    assert logged_values(router) == ["before", "while-disabled"]  # resumed at the committed offset
