"""The DynamoDB Streams source against a moto server, through `router serve` and real function processes."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.stream_support import (
    aws_router_config,
    dynamodb_table,
    unique,
    wait_for_lines,
)


def put(client: Any, name: str, item_id: str, status: str) -> None:
    client.put_item(TableName=name, Item={"id": {"S": item_id}, "status": {"S": status}})


def set_status(client: Any, name: str, item_id: str, status: str) -> None:
    client.update_item(
        TableName=name,
        Key={"id": {"S": item_id}},
        UpdateExpression="SET #s = :v",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":v": {"S": status}},
    )


async def test_item_changes_arrive_in_order_with_their_images(make_router, moto_server) -> None:
    name = unique("orders")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    router = await make_router(
        aws_router_config(
            "dynamodb", f'endpoint: "{moto_server}", table: {name}, starting_position: TRIM_HORIZON'
        )
    )

    def changes() -> None:
        for n in range(3):
            put(client, name, f"o{n}", "new")
        set_status(client, name, "o1", "paid")
        client.delete_item(TableName=name, Key={"id": {"S": "o2"}})
        set_status(client, name, "o0", "shipped")

    await asyncio.to_thread(changes)
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 6, context=router.log_text)
    seen = [(line["v"], line["k"]["id"]["S"]) for line in lines]
    assert seen == [
        ("INSERT", "o0"),
        ("INSERT", "o1"),
        ("INSERT", "o2"),
        ("MODIFY", "o1"),
        ("REMOVE", "o2"),
        ("MODIFY", "o0"),
    ]
    by_event = {(line["v"], line["k"]["id"]["S"]): line for line in lines}
    assert by_event[("INSERT", "o0")]["new"] == {"id": {"S": "o0"}, "status": {"S": "new"}}
    assert by_event[("INSERT", "o0")]["old"] is None
    assert by_event[("MODIFY", "o1")]["old"]["status"] == {"S": "new"}
    assert by_event[("MODIFY", "o1")]["new"]["status"] == {"S": "paid"}
    assert by_event[("REMOVE", "o2")]["new"] is None
    assert by_event[("REMOVE", "o2")]["old"] == {"id": {"S": "o2"}, "status": {"S": "new"}}
    sequences = [int(line["o"]) for line in lines]
    assert sequences == sorted(sequences)


async def test_restart_resumes_from_the_checkpoint(make_router, moto_server) -> None:
    name = unique("orders")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    router = await make_router(
        aws_router_config(
            "dynamodb", f'endpoint: "{moto_server}", table: {name}, starting_position: TRIM_HORIZON'
        )
    )
    log = router.base_dir / "log.jsonl"
    await asyncio.to_thread(lambda: [put(client, name, f"a{n}", "new") for n in range(5)])
    await wait_for_lines([log], 5, context=router.log_text)
    assert await router.stop() == 0

    await asyncio.to_thread(lambda: [put(client, name, f"b{n}", "new") for n in range(3)])  # while stopped
    await router.start()
    await asyncio.to_thread(put, client, name, "c0", "new")
    lines = await wait_for_lines([log], 9, context=router.log_text)
    ids = [line["k"]["id"]["S"] for line in lines]
    assert ids == [f"a{n}" for n in range(5)] + ["b0", "b1", "b2", "c0"]  # no loss, no replay
    # Nothing comes again later either: a change made now is the next (and only) line after these.
    await asyncio.to_thread(put, client, name, "d0", "new")
    lines = await wait_for_lines([log], 10, context=router.log_text)
    assert [line["k"]["id"]["S"] for line in lines[9:]] == ["d0"]


async def test_a_filter_passes_only_matching_changes(make_router, moto_server) -> None:
    name = unique("orders")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    router = await make_router(
        aws_router_config(
            "dynamodb",
            f'endpoint: "{moto_server}", table: {name}, starting_position: TRIM_HORIZON',
            route_extra="\n    filter: {eventName: [MODIFY], dynamodb: {NewImage: {status: {S: [paid]}}}}",
        )
    )

    def changes() -> None:
        put(client, name, "o0", "new")
        set_status(client, name, "o0", "packed")
        set_status(client, name, "o0", "paid")
        put(client, name, "o1", "paid")  # an INSERT: filtered out
        set_status(client, name, "o1", "paid")

    await asyncio.to_thread(changes)
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 2, context=router.log_text)
    assert [(line["v"], line["k"]["id"]["S"], line["new"]["status"]["S"]) for line in lines] == [
        ("MODIFY", "o0", "paid"),
        ("MODIFY", "o1", "paid"),
    ]
