"""Who is in the cluster, and this node's share of every concurrency limit: node items in the lease table.

Each node keeps one item (`<cluster>#nodes`, its node id) and renews it every `renew_s` by writing a higher
`counter`. Liveness is judged as the Kinesis Client Library judges leases, by observation, never by
comparing clocks: a node whose counter this node has not seen change for `node_timeout_s` (of this node's
own monotonic clock) has left; its item is then deleted, on the condition that it still holds that counter.
A node that leaves cleanly deletes its own item. Nothing else is exchanged: no protocol of our own, only
conditional writes and consistent reads of one table.

Shares (router/core/shares.py): the live members, sorted by node id, split every limit evenly
(`EvenSplit(len(members), rank)`). The split is changed so that the calls in flight over all nodes never
exceed a limit, even while nodes join and leave:

* each node publishes in its item the `view` it budgets for: the members it last split by, written only
  once its calls in flight fit in its share of that split (a lowered share is applied at once; calls
  already running finish, and the view is published when they have drained below it);
* a node applies a split in full only when every other member of it publishes a view that contains this
  node; until then it holds the lesser of the new split and the last split it applied in full (zero for a
  node that never had one: calls are throttled with Lambda's reason, async events wait). A joining node
  thus waits until the others have made room for it, and the others lower their shares at once;
* a member leaving (or found dead) only raises the others' shares, which is safe at once;
* a node that could not renew its item for `node_timeout_s` (the lease table unreachable) holds a zero
  share: the others will count it out, and it must not run on a share they will hand to someone else.

`joined` is set once the node holds a nonzero share (readiness, with the queue's consumer group).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.cluster.table import Item, LeaseTable, TableError
from router.config.cluster import ClusterLeases
from router.core.shares import NOTHING, EvenSplit, Least, Share

log = logging.getLogger("router.cluster")


@dataclass
class Seen:
    counter: int
    since: float  # this node's monotonic time when the counter was last seen to change
    item: Item = field(default_factory=dict)


class Membership:
    def __init__(
        self,
        table: LeaseTable,
        cluster: str,
        node: str,
        settings: ClusterLeases,
        *,
        fits: Callable[[Share], bool],
        apply: Callable[[Share], None],
        info: dict[str, Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.pk = f"{cluster}#nodes"
        self.node = node
        self.settings = settings
        self._fits = fits  # whether this node's calls in flight fit in a share
        self._apply = apply  # hands the share to the dispatcher
        self._info = info or {}
        self._monotonic = monotonic
        self.members: list[str] = [node]  # live members, sorted (this node included)
        self.share: Share = NOTHING
        self._welcomed: Share = NOTHING  # the last split applied in full
        self.joined = asyncio.Event()
        self.nodes: dict[str, Seen] = {}
        self._counter = 0
        self._view: list[str] = []  # what this node publishes: the members it budgets for
        self._renewed = monotonic()  # when the last successful renewal was sent
        self._started = time.time()
        self._left = False

    # -- the loop -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Renew, read and re-split every `renew_s` until cancelled."""
        while True:
            try:
                await self.cycle()
            except TableError as e:
                log.warning("cluster membership: %s", e)
                self._fence()
            await asyncio.sleep(self.settings.renew_interval_s)

    async def cycle(self) -> None:
        sent = self._monotonic()
        await self._renew()
        self._renewed = sent
        items = await self.table.query(self.pk)
        await self._observe(items)
        self._split()

    async def leave(self) -> None:
        """Delete this node's item: the others raise their shares at once."""
        self._left = True
        await self.table.delete(self.pk, self.node)

    async def _renew(self) -> None:
        self._counter += 1
        item = {
            "pk": self.pk,
            "sk": self.node,
            "counter": self._counter,
            "view": self._view,
            "started": self._started,
            "renewed": time.time(),  # for people reading the table; liveness never compares clocks
            **self._info,
        }
        await self.table.put(item)

    async def _observe(self, items: list[Item]) -> None:
        now = self._monotonic()
        fresh: dict[str, Seen] = {}
        for item in items:
            node, counter = str(item["sk"]), int(item.get("counter", 0))
            seen = self.nodes.get(node)
            since = seen.since if seen is not None and seen.counter == counter else now
            fresh[node] = Seen(counter, since, item)
        self.nodes = fresh
        timeout = self.settings.node_timeout_s
        for node, seen in list(fresh.items()):
            if node != self.node and now - seen.since >= timeout:
                log.info("cluster: node %s left (not renewed for %.1f s)", node, now - seen.since)
                await self._expire(node, seen)
                del self.nodes[node]
        self.members = sorted({*self.nodes, self.node})

    async def _expire(self, node: str, seen: Seen) -> None:
        condition = "attribute_not_exists(sk) OR #c = :c"
        await self.table.delete(self.pk, node, condition, {":c": seen.counter}, names={"#c": "counter"})

    def _split(self) -> None:
        members = self.members
        split = EvenSplit(len(members), members.index(self.node))
        welcomed = all(self.node in (self.nodes[n].item.get("view") or []) for n in members if n != self.node)
        if welcomed:
            self._welcomed = split
            self._set(split)
        else:  # lowering is safe at once; raising waits for the others' room
            self._set(NOTHING if self._welcomed is NOTHING else Least(split, self._welcomed))
        if self._fits(split):
            self._view = list(members)

    def _fence(self) -> None:
        if self._monotonic() - self._renewed >= self.settings.node_timeout_s:
            if self.share is not NOTHING:
                log.error(
                    "cluster: the lease table is unreachable; this node admits no calls until it is back"
                )
            self._welcomed = NOTHING
            self._set(NOTHING)

    def _set(self, share: Share) -> None:
        if share != self.share:
            self.share = share
            self._apply(share)
            log.info("cluster: this node's share is now %s", describe(share))
        if share is not NOTHING and not self.joined.is_set():
            self.joined.set()
            log.info("cluster: joined with %d node(s): %s", len(self.members), ", ".join(self.members))

    # -- visibility -----------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self._monotonic()
        out = []
        for node in self.members:
            seen = self.nodes.get(node)
            item = seen.item if seen is not None else {}
            out.append(
                {
                    "node": node,
                    "self": node == self.node,
                    "view": item.get("view") or [],
                    "started": item.get("started"),
                    "address": item.get("address"),
                    "seen_s_ago": round(now - seen.since, 3) if seen is not None else None,
                }
            )
        return out


def describe(share: Share) -> str:
    if isinstance(share, Least):
        return f"{describe(share.a)} (at most {describe(share.b)}, until the others make room)"
    if isinstance(share, EvenSplit):
        return f"part {share.index + 1} of {share.parts}"
    return "nothing" if share is NOTHING else "whole"
