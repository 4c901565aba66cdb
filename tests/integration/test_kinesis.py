"""The Kinesis source against a moto server, through `router serve` and real function processes."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.stream_support import (
    aws_router_config,
    by_partition,
    failure_records,
    kinesis_stream,
    unique,
    wait_for_lines,
    wait_until,
)


def put_all(client: Any, name: str, values: list[str]) -> dict[str, str]:
    """Put each value with partition key k<n mod 7>; returns value -> shard id."""
    shards = {}
    for n, value in enumerate(values):
        answer = client.put_record(StreamName=name, Data=value.encode(), PartitionKey=f"k{n % 7}")
        shards[value] = answer["ShardId"]
    return shards


async def test_records_of_every_shard_arrive_in_order(make_router, moto_server) -> None:
    name = unique("events")
    client = await asyncio.to_thread(kinesis_stream, moto_server, name, 3)
    values = [f"v{n}" for n in range(60)]
    shard_of = await asyncio.to_thread(put_all, client, name, values)
    assert len(set(shard_of.values())) == 3
    router = await make_router(
        aws_router_config(
            "kinesis",
            f'endpoint: "{moto_server}", stream: {name}, starting_position: TRIM_HORIZON',
            batch="{size: 7}",
        )
    )
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 60, context=router.log_text)

    assert sorted(line["v"] for line in lines) == sorted(values)  # each once
    for shard, sequences in by_partition(lines).items():
        assert [int(s) for s in sequences] == sorted(int(s) for s in sequences)
        mine = [line["v"] for line in lines if line["p"] == shard]
        assert mine == [v for v in values if shard_of[v] == shard]  # put order, per shard


async def test_bisect_isolates_a_poisoned_record(make_router, moto_server) -> None:
    name = unique("events")
    client = await asyncio.to_thread(kinesis_stream, moto_server, name, 2)
    values = [("poison" if n == 33 else f"v{n}") for n in range(80)]
    shard_of = await asyncio.to_thread(put_all, client, name, values)
    router = await make_router(
        aws_router_config(
            "kinesis",
            f'endpoint: "{moto_server}", stream: {name}, starting_position: TRIM_HORIZON',
            batch="{size: 40}",
            on_error="{max_retries: 1, bisect: true, destination: {directory: failed}}",
            environment={"POISON": "poison"},
        )
    )
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 79, context=router.log_text)
    failed = router.base_dir / "failed"
    await wait_until(lambda: len(failure_records(failed)) == 1, "a failure record", context=router.log_text)

    assert sorted(line["v"] for line in lines) == sorted(v for v in values if v != "poison")
    [record] = failure_records(failed)
    info = record["KinesisBatchInfo"]
    assert info["shardId"] == shard_of["poison"] and info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"].endswith(f":stream/{name}")
    [given_up] = record["payload"]["Records"]
    assert given_up["kinesis"]["sequenceNumber"] == info["startSequenceNumber"]
    assert given_up["eventID"] == f"{shard_of['poison']}:{info['startSequenceNumber']}"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
