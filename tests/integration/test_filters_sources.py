"""A route filter on each source kind, with native events: only what the pattern takes reaches the function.

Each test sends an event the filter refuses, makes sure the source has handled it, then one it takes, waits
for that invocation through the inspection API and checks it was the only one.
"""

from __future__ import annotations

import asyncio
import base64
import json

from tests.integration.inspect_client import Inspector
from tests.integration.source_triggers import (
    announced,
    http_call,
    last_tick,
    missed_tick_state,
    router_config,
    send_mail,
)
from tests.integration.stream_support import (
    FAST_CLIENT,
    aws_source,
    create_topic,
    dynamodb_table,
    kinesis_stream,
    produce,
    unique,
)
from tests.support import free_port, wait_until


async def test_http_filter_on_query_and_json_body(make_router) -> None:
    port = free_port()
    router = await make_router(
        router_config(
            f"  api: {{kind: http, port: {port}}}",
            "  - {source: api, function: seen, http: {method: GET, path: /items},"
            " filter: {queryStringParameters: {color: [red]}}}\n"
            "  - {source: api, function: seen, http: {method: POST, path: /orders},"
            " filter: {body: {kind: [{prefix: ord}], total: [{numeric: ['>', 10]}]}}}",
        )
    )
    url = f"http://127.0.0.1:{port}"
    statuses = [
        await asyncio.to_thread(http_call, f"{url}/items?color=blue"),
        await asyncio.to_thread(http_call, f"{url}/orders", b'{"kind": "order", "total": 5}'),
        await asyncio.to_thread(http_call, f"{url}/items?color=red"),
        await asyncio.to_thread(http_call, f"{url}/orders", b'{"kind": "order", "total": 50}'),
    ]
    assert statuses == [404, 404, 200, 200]  # every filter said no: API Gateway's "Not Found"
    seen = await Inspector(router.url).invocations("seen")
    assert [i["event"]["rawPath"] for i in seen] == ["/items", "/orders"]
    assert seen[0]["event"]["queryStringParameters"] == {"color": "red"}
    assert json.loads(seen[1]["event"]["body"])["total"] == 50


async def test_schedule_filter_on_the_rule(make_router) -> None:
    sources = "  keep: {kind: schedule, expression: 'cron(0 * * * ? *)'}\n" \
              "  drop: {kind: schedule, expression: 'cron(0 * * * ? *)'}"  # fmt: skip
    only_keep = "filter: {detail-type: [Scheduled Event], resources: [{suffix: /keep}]}"
    routes = "\n".join(f"  - {{source: {name}, function: seen, {only_keep}}}" for name in ("keep", "drop"))
    files = {f"state/sources/{name}/schedule.json": missed_tick_state() for name in ("keep", "drop")}
    router = await make_router(router_config(sources, routes), files=files)
    started = json.loads(files["state/sources/drop/schedule.json"])["last_tick"]

    hit = await Inspector(router.url).wait("seen", {"source": ["keep"]}, after=0)
    assert hit["event"]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/keep"]
    await wait_until(lambda: last_tick(router.base_dir, "drop") > started, "the drop schedule to fire")
    assert [i["source"] for i in await Inspector(router.url).invocations("seen")] == ["keep"]


async def test_s3_folder_filter_on_key_and_size(make_router) -> None:
    router = await make_router(
        router_config(
            "  uploads: {kind: s3, bucket: uploads, directory: bucket, stable_s: 0.1}",
            "  - {source: uploads, function: seen,"
            " filter: {s3: {object: {key: [{prefix: in/}], size: [{numeric: ['>', 0]}]}}}}",
        ),
        files={"bucket/.keep": ""},
    )
    bucket = router.base_dir / "bucket"
    (bucket / "out").mkdir()
    (bucket / "out" / "x.jpg").write_bytes(b"data")
    (bucket / "empty.txt").write_bytes(b"")
    await wait_until(lambda: announced(router.log_text(), "out/x.jpg"), "out/x.jpg to be announced")
    (bucket / "in").mkdir()
    (bucket / "in" / "y.jpg").write_bytes(b"data")

    hit = await Inspector(router.url).wait(
        "seen", {"event": {"Records": {"s3": {"object": {"key": ["in/y.jpg"]}}}}}
    )
    assert hit["event"]["Records"][0]["s3"]["object"]["size"] == 4
    await wait_until(lambda: announced(router.log_text(), "empty.txt"), "empty.txt to be announced")
    assert len(await Inspector(router.url).invocations("seen")) == 1


async def test_email_filter_on_the_subject(make_router) -> None:
    smtp = free_port()
    router = await make_router(
        router_config(
            f"  inbox: {{kind: email, port: {smtp}, recipients: ['@example.test']}}",
            "  - {source: inbox, function: seen,"
            " filter: {ses: {mail: {commonHeaders: {subject: [{prefix: keep}]}}}}}",
        )
    )
    inspector = Inspector(router.url)
    await asyncio.to_thread(send_mail, smtp, "drop me")  # 250: filtered by now
    await asyncio.to_thread(send_mail, smtp, "keep me")
    hit = await inspector.wait("seen", after=0)
    assert hit["event"]["Records"][0]["ses"]["mail"]["commonHeaders"]["subject"] == "keep me"
    assert len(await inspector.invocations("seen")) == 1


async def test_kafka_filter_on_the_json_value(make_router, kafka_broker) -> None:
    topic = unique("filter")
    await create_topic(kafka_broker, topic, 1)
    router = await make_router(
        router_config(
            f"  stream:\n    kind: kafka\n    brokers: ['{kafka_broker}']\n    topic: {topic}\n"
            f"    group: {unique('g')}\n    starting_position: TRIM_HORIZON{FAST_CLIENT}",
            "  - {source: stream, function: seen, batch: {size: 10, window_s: 0.05},"
            " filter: {value: {type: [keep]}}}",
        )
    )
    values = [b'{"type": "drop", "n": 1}', b"not json", b'{"type": "keep", "n": 2}']
    await produce(kafka_broker, topic, [(0, None, v) for v in values])
    hit = await Inspector(router.url).wait("seen", after=0)
    (records,) = hit["event"]["records"].values()
    assert [json.loads(base64.b64decode(r["value"])) for r in records] == [{"type": "keep", "n": 2}]
    assert len(await Inspector(router.url).invocations("seen")) == 1  # the refused ones came first, in order


async def test_kinesis_filter_on_the_json_data(make_router, moto_server) -> None:
    name = unique("events")
    client = await asyncio.to_thread(kinesis_stream, moto_server, name)
    router = await make_router(
        router_config(
            aws_source(
                "kinesis", f'endpoint: "{moto_server}", stream: {name}, starting_position: TRIM_HORIZON'
            ),
            "  - {source: stream, function: seen, batch: {size: 10}, filter: {data: {type: [keep]}}}",
        )
    )
    for data in (b'{"type": "drop"}', b"text", b'{"type": "keep", "n": 2}'):
        await asyncio.to_thread(client.put_record, StreamName=name, Data=data, PartitionKey="p")
    hit = await Inspector(router.url).wait("seen", after=0)
    records = hit["event"]["Records"]
    assert [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in records] == [{"type": "keep", "n": 2}]
    assert len(await Inspector(router.url).invocations("seen")) == 1


async def test_dynamodb_filter_on_the_new_image(make_router, moto_server) -> None:
    name = unique("orders")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    router = await make_router(
        router_config(
            aws_source(
                "dynamodb", f'endpoint: "{moto_server}", table: {name}, starting_position: TRIM_HORIZON'
            ),
            "  - {source: stream, function: seen, batch: {size: 10},"
            " filter: {eventName: [MODIFY], dynamodb: {NewImage: {status: {S: [paid]}}}}}",
        )
    )
    for status in ("new", "paid"):  # an INSERT (refused), then a MODIFY to paid (taken)
        await asyncio.to_thread(
            client.put_item, TableName=name, Item={"id": {"S": "o1"}, "status": {"S": status}}
        )
    hit = await Inspector(router.url).wait("seen", after=0)
    (record,) = hit["event"]["Records"]
    assert record["eventName"] == "MODIFY" and record["dynamodb"]["OldImage"]["status"] == {"S": "new"}
    assert len(await Inspector(router.url).invocations("seen")) == 1
