"""Shard leases: a Kinesis stream's 4 shards split over 3 nodes; the owner of the most is killed with -9 and
the others take its shards over once its leases expire, resuming from the checkpoints kept with the leases:
no record lost, at most one batch per shard delivered twice. A DynamoDB table's stream moves likewise from
a killed node to the other. Real tansu, moto and several `router serve`."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cluster.support import cluster_status, cluster_yaml, start_nodes
from tests.conftest import MakeRouter
from tests.integration.stream_support import dynamodb_table, kinesis_stream, read_log, unique
from tests.support import RouterProcess, wait_until

pytestmark = pytest.mark.integration

BATCH = 10
# One function logging every record it gets, behind a Kinesis stream or a DynamoDB table's stream:
# % (kind, "stream" or "table", its name, batch size).
STREAM_CONFIG = """
functions:
  log:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/stream_log"
    environment: {LOG_FILE: "${SHARED}/log-${NODE}.jsonl"}
sources:
  stream: {kind: %s, poll_interval_s: 0.05, shard_refresh_s: 0.5, endpoint: "${MOTO}", %s: "%s",
           starting_position: TRIM_HORIZON}
routes:
  - {source: stream, function: log, batch: {size: %d}}
"""


def put_round(client: Any, name: str, start: int, count: int) -> None:
    client.put_records(
        StreamName=name,
        Records=[
            {"Data": f"v{n}".encode(), "PartitionKey": f"k{n % 13}"} for n in range(start, start + count)
        ],
    )


def logged(folder: Path) -> list[dict[str, Any]]:
    return [line for path in folder.glob("log-*.jsonl") for line in read_log(path)]


async def owners(session: aiohttp.ClientSession, node: RouterProcess) -> dict[str, str | None]:
    shards = (await cluster_status(session, node))["shards"]
    return next(iter(shards.values()), {})


async def test_shards_move_from_a_killed_node_with_their_checkpoints(
    make_router: MakeRouter, kafka_broker: str, moto_server: str, tmp_path: Path
) -> None:
    name = unique("events")
    client = await asyncio.to_thread(kinesis_stream, moto_server, name, 4)
    config = cluster_yaml(STREAM_CONFIG % ("kinesis", "stream", name, BATCH))
    nodes = await start_nodes(make_router, config, 3, kafka=kafka_broker, moto=moto_server, shared=tmp_path)
    sent = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            await asyncio.to_thread(put_round, client, name, sent, 20)
            sent += 20
            await asyncio.sleep(0.2)
        for _ in range(200):  # every shard leased
            leases = await owners(session, nodes[0])
            if len(leases) == 4 and all(leases.values()):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"shards not all leased: {leases}")
        held = Counter(leases.values())
        assert len(held) >= 2, leases  # split over at least two nodes
        victim_id = held.most_common(1)[0][0]
        victim = next(n for i, n in enumerate(nodes) if f"n{i}" == victim_id)
        await victim.kill()
        for _ in range(10):
            await asyncio.to_thread(put_round, client, name, sent, 20)
            sent += 20
            await asyncio.sleep(0.2)
        live = [n for n in nodes if n is not victim]
        for _ in range(600):
            values = {line["v"] for line in logged(tmp_path)}
            if len(values) == sent:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{sent - len(values)} records never delivered")
        for _ in range(100):  # the survivors' view of the leases: none left to the dead node
            leases = await owners(session, live[0])
            if victim_id not in leases.values() and all(leases.values()):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"leases still held by the dead node: {leases}")
    per_shard: dict[str, Counter[str]] = {}
    for line in logged(tmp_path):
        per_shard.setdefault(line["p"], Counter())[line["v"]] += 1
    for shard, counts in per_shard.items():
        twice = [v for v, c in counts.items() if c > 1]
        assert len(twice) <= BATCH, (shard, len(twice))


def put_items(client: Any, name: str, start: int, count: int) -> None:
    for n in range(start, start + count):
        client.put_item(TableName=name, Item={"id": {"S": f"i{n}"}})


async def test_a_table_stream_moves_to_the_other_node(
    make_router: MakeRouter, kafka_broker: str, moto_server: str, tmp_path: Path
) -> None:
    name = unique("orders")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    config = cluster_yaml(STREAM_CONFIG % ("dynamodb", "table", name, BATCH))
    nodes = await start_nodes(make_router, config, 2, kafka=kafka_broker, moto=moto_server, shared=tmp_path)

    def inserted() -> set[str]:
        return {line["k"]["id"]["S"] for line in logged(tmp_path) if line["v"] == "INSERT"}

    async with aiohttp.ClientSession() as session:
        await asyncio.to_thread(put_items, client, name, 0, 30)
        await wait_until(lambda: len(inserted()) == 30, "the first 30 items")
        leases = await owners(session, nodes[0])
        (owner,) = set(leases.values())
        victim = nodes[int(str(owner)[1:])]
        await victim.kill()
        await asyncio.to_thread(put_items, client, name, 30, 30)
        await wait_until(
            lambda: len(inserted()) == 60, lambda: f"{60 - len(inserted())} items never delivered"
        )
        survivor = next(n for n in nodes if n is not victim)
        assert set((await owners(session, survivor)).values()) == {f"n{nodes.index(survivor)}"}
    counts = Counter(line["k"]["id"]["S"] for line in logged(tmp_path))
    assert len([k for k, c in counts.items() if c > 1]) <= BATCH, counts
