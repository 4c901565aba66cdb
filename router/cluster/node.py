"""One router's part in a cluster: its lease table, its membership, its share of the limits and the queue.

`ClusterNode(config)` is built by the daemon when the config has a `cluster:` section (docs/cluster.md);
without one the daemon builds none and nothing of this package runs. Contract:

* `queue`: the cluster's async queue on Kafka (router/cluster/queue.py), given to the dispatcher in place of
  the local SQLite queue (the daemon swaps it into its `Backends`).
* `await start(set_share, fits)`: opens the lease table (creating it when allowed), sets the dispatcher's
  share to nothing (no call admitted before this node has joined), and starts the membership loop, which feeds
  the dispatcher its share of every limit (`Dispatcher.set_share`) as nodes join and leave
  (router/cluster/membership.py). Raises `TableError` when the table cannot be opened: the daemon does
  not start.
* `sources()`: the source seams (router/core/backends.py): shard leases with their checkpoints
  (router/cluster/leases.py) and schedule tick claims (router/cluster/ticks.py), in the lease table.
* `bind_metrics(metrics)`: Prometheus gauges (router_cluster_*, docs/cluster.md) from live state.
* `joined()`: this node holds a share and is in the queue's consumer group (what /readyz adds).
* `await status()`: what `GET /cluster` and `router cluster` show: this node, the members with their
  shares, the queue's partitions held here (held events, position, commit, lag) and its backlog over the
  whole group.
* `await aclose()`: stops the membership loop and deletes this node's item (the others raise their shares
  at once), then closes the table. The daemon calls it after the dispatcher has drained and closed the
  queue, so no call of this node still runs on a share the others take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.cluster.leases import LeaseCheckpoints, LeaseOwnership, MappingLeases
from router.cluster.membership import NOTHING, Membership, describe
from router.cluster.queue import KafkaQueue
from router.cluster.table import LeaseTable
from router.cluster.ticks import TableTicks
from router.config import Config
from router.config.cluster import ClusterConfig
from router.core.backends import SourceBackends
from router.core.shares import Share
from router.metrics import Metrics

log = logging.getLogger("router.cluster")


class ClusterNode:
    def __init__(self, config: Config) -> None:
        assert config.cluster is not None
        self.settings: ClusterConfig = config.cluster
        self.name = self.settings.name
        self.node = self.settings.node()
        self.queue = KafkaQueue(self.settings.kafka, self.name)
        self.table = LeaseTable(self.settings.leases.dynamodb, config.account.region)
        self.membership: Membership | None = None
        self._address = f"{config.server.host}:{config.server.port}"
        self._task: asyncio.Task[None] | None = None
        self._mappings: dict[str, MappingLeases] = {}

    # -- the source seams -----------------------------------------------------------------------------------

    def sources(self) -> SourceBackends:
        """Shard leases with their checkpoints, and tick claims, in the lease table."""
        return SourceBackends(checkpoints=self._checkpoints, ownership=self._ownership, ticks=self._ticks)

    def _leases(self, source: str, mapping: str) -> MappingLeases:
        pk = f"{self.name}#shards#{source}#{mapping}"
        leases = self._mappings.get(pk)
        if leases is None:
            leases = MappingLeases(self.table, pk, self.node, self.settings.leases, self._members)
            self._mappings[pk] = leases
        return leases

    def _members(self) -> list[str]:
        return self.membership.members if self.membership is not None else [self.node]

    def _checkpoints(self, *, source: str, folder: Path, mapping: str, stream: str) -> LeaseCheckpoints:
        return LeaseCheckpoints(self._leases(source, mapping), stream)

    def _ownership(self, *, source: str, mapping: str) -> LeaseOwnership:
        return LeaseOwnership(self._leases(source, mapping))

    def _ticks(self, *, source: str, folder: Path) -> TableTicks:
        return TableTicks(self.table, f"{self.name}#schedule#{source}", self.node, self.settings.leases)

    def leases(self) -> dict[str, dict[str, str | None]]:
        """Who owns which shard, as this node last read the lease items (per mapping)."""
        return {
            pk.removeprefix(f"{self.name}#shards#"): {s: i.get("owner") for s, i in sorted(m.items.items())}
            for pk, m in sorted(self._mappings.items())
        }

    async def start(self, set_share: Callable[[Share], None], fits: Callable[[Share], bool]) -> None:
        """`set_share` hands the dispatcher its share; `fits` says whether its calls in flight fit one."""
        await self.table.open()
        set_share(NOTHING)
        self.membership = Membership(
            self.table,
            self.name,
            self.node,
            self.settings.leases,
            fits=fits,
            apply=set_share,
            info={"address": self._address},
        )
        self._task = asyncio.create_task(self.membership.run(), name="cluster membership")
        log.info("cluster %s: node %s starting", self.name, self.node)

    def bind_metrics(self, metrics: Metrics) -> None:
        """Gauges set from live state before every /metrics render."""
        nodes = metrics.gauge("router_cluster_nodes", "Live members of the cluster, as this node sees them")
        joined = metrics.gauge(
            "router_cluster_joined", "1 once this node holds a share and a queue assignment"
        )
        owned = metrics.gauge("router_cluster_shards_owned", "Shard leases this node holds", ("mapping",))
        held = metrics.gauge(
            "router_cluster_queue_held", "Async events this node holds from the cluster queue"
        )
        lag = metrics.gauge(
            "router_cluster_queue_lag", "Records not committed, per partition this node holds", ("partition",)
        )

        def refresh() -> None:
            m = self.membership
            nodes.set(len(m.members) if m is not None else 0)
            joined.set(1 if self.joined() else 0)
            held.set(self.queue.depth())
            for pk, leases in self._mappings.items():
                owned.labels(pk.removeprefix(f"{self.name}#shards#")).set(len(leases.held))
            lag.clear()
            for partition, numbers in self.queue.partitions().items():
                lag.labels(partition).set(numbers["lag"])

        metrics.add_refresh(refresh)

    def joined(self) -> bool:
        m = self.membership
        return m is not None and m.joined.is_set() and self.queue.joined.is_set()

    async def status(self) -> dict[str, Any]:
        m = self.membership
        backlog: dict[str, int] = {}
        with contextlib.suppress(Exception):  # the broker unreachable: the rest still shows
            backlog = await self.queue.backlog()
        return {
            "cluster": self.name,
            "node": self.node,
            "joined": self.joined(),
            "share": describe(m.share) if m is not None else "nothing",
            "nodes": m.status() if m is not None else [],
            "shards": self.leases(),
            "queue": {
                "topics": [self.queue.fresh_topic, self.queue.retry_topic],
                "group": self.queue.group,
                "held": self.queue.depth(),
                "partitions": self.queue.partitions(),
                "backlog": backlog,
            },
        }

    async def aclose(self) -> None:
        for leases in self._mappings.values():
            leases.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.membership is not None:
            with contextlib.suppress(Exception):
                await self.membership.leave()
        await self.table.aclose()
