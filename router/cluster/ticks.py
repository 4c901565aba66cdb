"""Schedule ticks claimed in the lease table: the cluster's TickClaims (router/core/backends.py).

Items under pk `<cluster>#schedule#<source>`: `state` holds the schedule's ScheduleState (JSON), shared by
every node, so rate() ticks have one anchor for the whole cluster and `last_tick` says what the cluster has
handled; `tick#<time>` is one tick's claim (owner, expires).

* `load()` reads the shared state (None before any node saved one).
* `claim(tick)` is False when the shared state's `last_tick` is at or after the tick (handled, by any node);
  otherwise it writes the tick's claim item, on the condition that there is none or that the one there has
  expired (`tick_claim_s` after it was written: a node that claimed and died before saving). One node's
  conditional write wins; the others are refused and count the tick as handled. A tick therefore fires once,
  and more than once only when a node stalls longer than `tick_claim_s` between its claim and its save
  (at-least-once, with the same event id).
* `save(state)` writes the shared state on the condition that it never moves `last_tick` back (another node
  may have saved a later one meanwhile: that one stays). Expiry of claims compares wall clocks of nodes:
  keep the nodes' clocks in sync (NTP) well within `tick_claim_s`.
* Missed ticks after an outage of the whole cluster: the first node back reads `last_tick` and fires what
  the schedule's `missed` policy says, each tick through a claim, so once.
"""

from __future__ import annotations

import logging
import time

import msgspec

from router.cluster.table import LeaseTable
from router.config.cluster import ClusterLeases
from router.core.backends import ScheduleState

log = logging.getLogger("router.cluster.ticks")

_decoder = msgspec.json.Decoder(ScheduleState)


class TableTicks:
    def __init__(self, table: LeaseTable, pk: str, node: str, settings: ClusterLeases) -> None:
        self.table, self.pk, self.node, self.settings = table, pk, node, settings

    async def load(self) -> ScheduleState | None:
        item = await self.table.get(self.pk, "state")
        if item is None:
            return None
        try:
            return _decoder.decode(str(item["state"]))
        except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as e:
            log.warning("schedule state %s unreadable, starting afresh: %s", self.pk, e)
            return None

    async def claim(self, tick: float) -> bool:
        state = await self.load()
        if state is not None and state.last_tick >= tick:
            return False
        now = time.time()
        item = {
            "pk": self.pk,
            "sk": f"tick#{tick:.3f}",
            "owner": self.node,
            "expires": now + self.settings.tick_claim_s,
        }
        return await self.table.put(
            item, "attribute_not_exists(sk) OR #e < :now", {":now": now}, {"#e": "expires"}
        )

    async def save(self, state: ScheduleState) -> None:
        item = {
            "pk": self.pk,
            "sk": "state",
            "state": msgspec.json.encode(state).decode(),
            "last_tick": state.last_tick,
            "node": self.node,
        }
        saved = await self.table.put(
            item, "attribute_not_exists(sk) OR #t <= :t", {":t": state.last_tick}, {"#t": "last_tick"}
        )
        if not saved:
            log.debug("schedule %s: a later tick was saved by another node", self.pk)


__all__ = ["TableTicks"]
