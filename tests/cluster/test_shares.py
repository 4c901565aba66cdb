"""Reserved concurrency is the cluster's: 4 over 2 nodes under 16 concurrent callers never has more than 4
calls in flight in total (each node admits its share, the rest get Lambda's 429 with its Reason), and once
one node has left the other admits all 4. Real tansu, moto and two `router serve` processes, each alone or
with a second front process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.support import cluster_status, cluster_yaml, start_nodes
from tests.conftest import MakeRouter
from tests.support import RouterProcess

pytestmark = pytest.mark.integration

FUNCTIONS = """
functions:
  rec:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/cluster_record"
    reserved_concurrency: 4
    environment: {RECORD_DIR: "${SHARED}/%s", NODE: "${NODE}"}
"""
RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"


def most_at_once(folder: Path) -> int:
    """The most runs in flight at one moment, from the start and end times every run wrote."""
    edges: list[tuple[float, int]] = []
    for path in folder.iterdir():
        start, end = map(float, path.read_text().split())
        edges += [(start, 1), (end, -1)]
    level = peak = 0
    for _, step in sorted(edges):  # an end sorts before a start at the same instant
        level += step
        peak = max(peak, level)
    return peak


async def caller(session: aiohttp.ClientSession, node: RouterProcess, calls: int, reasons: list[str]) -> None:
    done = 0
    while done < calls:
        async with session.post(
            f"{node.url}/2015-03-31/functions/rec/invocations", data=json.dumps({"n": done, "sleep": 0.2})
        ) as r:
            if r.status == 429:
                body = await r.json()
                reasons.append(body.get("Reason", ""))
                assert r.headers["X-Amzn-ErrorType"].startswith("TooManyRequestsException")
                await asyncio.sleep(0.05)
                continue
            assert r.status == 200, await r.text()
            done += 1


@pytest.mark.parametrize("processes", [1, 2])
async def test_reserved_concurrency_is_split_and_follows_membership(
    make_router: MakeRouter, kafka_broker: str, moto_server: str, tmp_path: Path, processes: int
) -> None:
    """With `processes: 2` each node's share is split again, through the node's ledger, between its two
    front processes (docs/processes.md): the totals are the same."""
    config = cluster_yaml(FUNCTIONS % "runs").replace(
        'server: {port: "${ROUTER_PORT}"}', f'server: {{port: "${{ROUTER_PORT}}", processes: {processes}}}'
    )
    assert f"processes: {processes}" in config
    nodes = await start_nodes(make_router, config, 2, kafka=kafka_broker, moto=moto_server, shared=tmp_path)
    reasons: list[str] = []
    shown = subprocess.run(
        [sys.executable, "-m", "router", "cluster", "--endpoint", nodes[0].url],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert [n["node"] for n in status["nodes"]] == ["n0", "n1"] and status["joined"], status
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{nodes[1].url}/metrics") as r:
            text = await r.text()
        assert "router_cluster_nodes 2.0" in text and "router_cluster_joined 1.0" in text
        await asyncio.gather(*(caller(session, nodes[i % 2], 4, reasons) for i in range(16)))
        both = most_at_once(tmp_path / "runs")
        assert reasons and set(reasons) == {RESERVED}, set(reasons)
        assert both <= 4

        await nodes[1].stop()  # leaves cleanly: its item is deleted, the other takes the whole limit

        for _ in range(300):
            if (await cluster_status(session, nodes[0]))["share"] == "part 1 of 1":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the remaining node never took the whole limit")
        (tmp_path / "runs").rename(tmp_path / "before")
        await asyncio.gather(*(caller(session, nodes[0], 3, reasons) for _ in range(16)))
        alone = most_at_once(tmp_path / "runs")
    assert alone == 4, f"one node alone ran at most {alone} at once"
    assert both == 4, f"two nodes ran at most {both} at once"
