"""Starting several `router serve` processes as one cluster on the session's tansu broker and moto server.

`cluster_yaml(functions, ...)` is a config whose `cluster:` section every node shares; each node gets its own
`NODE` (its node id) through the environment, a fresh cluster name per test keeps tests apart on the same
broker and table. Short session and lease timeouts keep the tier quick.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import MakeRouter
from tests.support import RouterProcess

CLUSTER = """
server: {port: "${ROUTER_PORT}"}
state_dir: "${TMP}/state"
invoker: {isolation: "off"}  # the functions leave marks in the test's folder
cluster:
  name: "${CLUSTER}"
  node_id: "${NODE}"
  kafka:
    brokers: ["${KAFKA}"]
    partitions: %(partitions)d
    session_timeout_ms: 2000
    heartbeat_interval_ms: 500
    rebalance_timeout_ms: 2000
    fetch_max_wait_ms: 20
  leases:
    lease_timeout_s: %(lease)s
    node_timeout_s: %(lease)s
    dynamodb: {table: "${TABLE}", endpoint_url: "${MOTO}", region: us-east-1,
               access_key_id: testing, secret_access_key: testing}
"""


def cluster_yaml(rest: str, *, partitions: int = 6, lease_s: float = 3.0) -> str:
    return CLUSTER % {"partitions": partitions, "lease": lease_s} + rest


async def start_nodes(
    make_router: MakeRouter, config: str, count: int, *, kafka: str, moto: str, shared: Path
) -> list[RouterProcess]:
    """`count` nodes of one new cluster, started together; every node ready (joined) when this returns."""
    env = {"CLUSTER": f"c{uuid.uuid4().hex[:8]}", "TABLE": "router-leases", "KAFKA": kafka, "MOTO": moto}
    env["SHARED"] = str(shared)
    nodes = []
    for i in range(count):
        nodes.append(await make_router(config, env={**env, "NODE": f"n{i}"}, name=f"n{i}", start=False))
    await asyncio.gather(*(n.start(timeout=60) for n in nodes))
    return nodes


async def cluster_status(session: aiohttp.ClientSession, node: RouterProcess) -> dict[str, Any]:
    async with session.get(f"{node.url}/cluster") as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body
