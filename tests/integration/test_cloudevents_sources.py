"""A CloudEvent delivered from each source kind: a function with `event_format: cloudevents` receives a
structured CloudEvent 1.0 carrying the same AWS-shaped event as `data` (a batch, a JSON array, for streams).
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from typing import Any

from tests.integration.inspect_client import Inspector
from tests.integration.source_triggers import http_call, missed_tick_state, router_config, send_mail
from tests.integration.stream_support import (
    FAST_CLIENT,
    aws_source,
    create_topic,
    dynamodb_table,
    kinesis_stream,
    produce,
    unique,
)
from tests.support import free_port

ATTRIBUTES = {"specversion", "id", "source", "type", "time", "datacontenttype", "data"}


def check_structured(event: dict[str, Any], *, type: str, source: str, subject: str | None) -> Any:
    assert ATTRIBUTES <= set(event), event
    assert (event["specversion"], event["type"], event["source"]) == ("1.0", type, source)
    assert event.get("subject") == subject and event["datacontenttype"] == "application/json"
    assert event["id"] and event["time"].endswith("Z")
    return event["data"]


async def received(router: Any) -> Any:
    return (await Inspector(router.url).wait("seen", after=0))["event"]


async def test_http_request_and_binary_mode_cloudevent(make_router) -> None:
    port = free_port()
    router = await make_router(
        router_config(
            f"  api: {{kind: http, port: {port}}}",
            "  - {source: api, function: seen, http: {method: POST, path: '/items/{id}'}}",
            event_format="cloudevents",
        )
    )
    url = f"http://127.0.0.1:{port}/items/7"
    assert await asyncio.to_thread(http_call, url, b'{"a": 1}') == 200
    data = check_structured(
        await received(router), type="com.amazonaws.apigateway.request", source="router://sources/api",
        subject="POST /items/7",
    )  # fmt: skip
    assert data["routeKey"] == "POST /items/{id}" and data["pathParameters"] == {"id": "7"}

    # A request that is itself a CloudEvent (binary mode) reaches the function as that CloudEvent.
    cursor = await Inspector(router.url).cursor()
    headers = {"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/shop", "ce-type": "com.example.order",
               "Content-Type": "application/json"}  # fmt: skip
    request = urllib.request.Request(url, data=b'{"total": 5}', headers=headers)
    await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).close())
    event = (await Inspector(router.url).wait("seen", after=cursor))["event"]
    assert event == {"specversion": "1.0", "id": "e-1", "source": "/shop", "type": "com.example.order",
                     "datacontenttype": "application/json", "data": {"total": 5}}  # fmt: skip


async def test_s3_folder_object_as_cloudevent(make_router) -> None:
    router = await make_router(
        router_config(
            "  uploads: {kind: s3, bucket: uploads, directory: bucket, stable_s: 0.1}",
            "  - {source: uploads, function: seen}",
            event_format="cloudevents",
        ),
        files={"bucket/photos/cat.png": b"meow"},
    )
    data = check_structured(
        await received(router), type="com.amazonaws.s3.ObjectCreated:Put", source="arn:aws:s3:::uploads",
        subject="photos/cat.png",
    )  # fmt: skip
    assert data["Records"][0]["s3"]["object"]["key"] == "photos/cat.png"


async def test_email_as_cloudevent(make_router) -> None:
    smtp = free_port()
    router = await make_router(
        router_config(
            f"  inbox: {{kind: email, port: {smtp}, recipients: ['@example.test']}}",
            "  - {source: inbox, function: seen}",
            event_format="cloudevents",
        )
    )
    await asyncio.to_thread(send_mail, smtp, "hello there")
    data = check_structured(
        await received(router), type="com.amazonaws.ses.EmailReceived", source="router://sources/inbox",
        subject="hello there",
    )  # fmt: skip
    assert data["Records"][0]["eventSource"] == "aws:ses"


async def test_schedule_tick_as_cloudevent(make_router) -> None:
    router = await make_router(
        router_config(
            "  nightly: {kind: schedule, expression: 'cron(0 * * * ? *)'}",
            "  - {source: nightly, function: seen}",
            event_format="cloudevents",
        ),
        files={"state/sources/nightly/schedule.json": missed_tick_state()},
    )
    rule = "arn:aws:events:us-east-1:123456789012:rule/nightly"
    data = check_structured(
        await received(router), type="com.amazonaws.events.ScheduledEvent", source=rule, subject="nightly"
    )
    assert data["detail-type"] == "Scheduled Event" and data["resources"] == [rule]


async def test_kafka_batch_as_cloudevents(make_router, kafka_broker) -> None:
    topic = unique("ce")
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, [(0, b"k1", b'{"n": 1}'), (0, b"k2", b'{"n": 2}')])
    router = await make_router(
        router_config(
            f"  stream:\n    kind: kafka\n    brokers: ['{kafka_broker}']\n    topic: {topic}\n"
            f"    group: {unique('g')}\n    starting_position: TRIM_HORIZON{FAST_CLIENT}",
            "  - {source: stream, function: seen, batch: {size: 10, window_s: 0.2}}",
            event_format="cloudevents",
        )
    )
    inspector = Inspector(router.url)
    got = {}
    for key in ("k1", "k2"):  # one batch or two: a pattern over a list matches any element
        events = (await inspector.wait("seen", {"event": {"subject": [key]}}, after=0))["event"]
        assert isinstance(events, list)  # a CloudEvents batch
        for event in events:
            data = check_structured(
                event, type="com.amazonaws.kafka.record", source=f"kafka://{kafka_broker}/{topic}",
                subject=event["subject"],
            )  # fmt: skip
            (records,) = data["records"].values()
            got[event["subject"]] = [json.loads(base64.b64decode(r["value"])) for r in records]
    assert got == {"k1": [{"n": 1}], "k2": [{"n": 2}]}  # one record per CloudEvent


async def test_kinesis_batch_as_cloudevents(make_router, moto_server) -> None:
    name = unique("events")
    client = await asyncio.to_thread(kinesis_stream, moto_server, name)
    await asyncio.to_thread(client.put_record, StreamName=name, Data=b'{"n": 1}', PartitionKey="user-1")
    router = await make_router(
        router_config(
            aws_source(
                "kinesis", f'endpoint: "{moto_server}", stream: {name}, starting_position: TRIM_HORIZON'
            ),
            "  - {source: stream, function: seen, batch: {size: 10}}",
            event_format="cloudevents",
        )
    )
    (event,) = await received(router)  # a batch of one
    arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/{name}"
    data = check_structured(event, type="com.amazonaws.kinesis.record", source=arn, subject="user-1")
    (record,) = data["Records"]
    assert json.loads(base64.b64decode(record["kinesis"]["data"])) == {"n": 1}


async def test_dynamodb_change_as_cloudevents(make_router, moto_server) -> None:
    name = unique("orders")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    router = await make_router(
        router_config(
            aws_source(
                "dynamodb", f'endpoint: "{moto_server}", table: {name}, starting_position: TRIM_HORIZON'
            ),
            "  - {source: stream, function: seen, batch: {size: 10}}",
            event_format="cloudevents",
        )
    )
    await asyncio.to_thread(client.put_item, TableName=name, Item={"id": {"S": "o1"}, "status": {"S": "new"}})
    (event,) = await received(router)
    assert (
        event["type"] == "com.amazonaws.dynamodb.INSERT" and ":table/" + name + "/stream/" in event["source"]
    )
    data = check_structured(event, type=event["type"], source=event["source"], subject=event.get("subject"))
    (record,) = data["Records"]
    assert record["dynamodb"]["NewImage"] == {"id": {"S": "o1"}, "status": {"S": "new"}}
