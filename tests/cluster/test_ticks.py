"""Schedule ticks claimed in the cluster's lease table: three schedule sources (three nodes' worth) on one
FakeClock, over a real DynamoDB API (moto), fire each tick exactly once, including after one of them is
killed mid-way and after the whole cluster was down (a missed tick fires once, on the first node back)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from router.cluster.table import LeaseTable
from router.cluster.ticks import TableTicks
from router.config.cluster import ClusterDynamo, ClusterLeases
from router.core.backends import SourceBackends
from router.core.clock import FakeClock
from router.core.ports import SourceContext
from router.sources import schedule
from router.sources.stream.checkpoints import open_checkpoint_file
from router.sources.stream.ownership import sole_owner
from tests.unit.test_schedule import Collector, config

pytestmark = pytest.mark.integration

START = 1_700_000_040.0  # a whole minute
MINUTE = 60.0


class Node:
    def __init__(self, name: str, table: LeaseTable, cluster: str, clock: FakeClock, folder: Path) -> None:
        def ticks(*, source: str, folder: Path) -> TableTicks:
            return TableTicks(table, f"{cluster}#schedule#{source}", name, ClusterLeases())

        backends = SourceBackends(checkpoints=open_checkpoint_file, ownership=sole_owner, ticks=ticks)
        self.submit = Collector()
        self.ctx = SourceContext(
            name="every-minute",
            config=config("rate(1 minute)"),
            routes=[],
            state_dir=folder / name,
            clock=clock,
            submit=self.submit,
            backends=backends,
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(schedule.create(self.ctx).run())

    async def kill(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.task = None


async def settle(clock: FakeClock, nodes: list[Node]) -> None:
    """Until every running node sleeps on the clock again (its claims and saves done)."""
    running = sum(1 for n in nodes if n.task is not None)
    for _ in range(400):
        await asyncio.sleep(0.025)
        if clock.sleepers >= running:
            return
    raise AssertionError("the schedule sources did not settle")


def fired(nodes: list[Node]) -> Counter[str]:
    return Counter(t for n in nodes for t in n.submit.times)


async def test_each_tick_fires_once_over_three_nodes(moto_server: str, tmp_path: Path) -> None:
    settings = ClusterDynamo(
        table="router-leases", endpoint_url=moto_server, access_key_id="testing", secret_access_key="testing"
    )
    table = LeaseTable(settings, "us-east-1")
    await table.open()
    try:
        clock = FakeClock(START)
        cluster = f"c{uuid.uuid4().hex[:8]}"
        nodes = [Node(f"n{i}", table, cluster, clock, tmp_path) for i in range(3)]
        for node in nodes:
            node.start()
        await settle(clock, nodes)
        for minute in range(1, 7):
            if minute == 4:
                await nodes[1].kill()
            await clock.advance(MINUTE)
            await settle(clock, nodes)
            counts = fired(nodes)
            assert len(counts) == minute and set(counts.values()) == {1}, counts
        # The whole cluster down for ten minutes, then one node back: the latest missed tick fires, once.
        for node in nodes:
            if node.task is not None:
                await node.kill()
        await clock.advance(10 * MINUTE)
        before = sum(fired(nodes).values())
        for node in nodes:
            node.start()
        await settle(clock, nodes)
        counts: Any = fired(nodes)
        assert set(counts.values()) == {1}, counts
        assert sum(counts.values()) == before + 1
    finally:
        for node in nodes:
            if node.task is not None:
                await node.kill()
        await table.aclose()
