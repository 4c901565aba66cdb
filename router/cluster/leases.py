"""Shard leases with their checkpoints in the lease table: the cluster's ShardOwnership and CheckpointStore.

One item per shard of a mapping (pk `<cluster>#shards#<source>#<mapping>`, sk the shard id), as the Kinesis
Client Library keeps its leases: `owner` (a node id, absent when free), `counter` (raised by every renewal,
take and release), `checkpoint` (the sequence number of the last settled record), `finished` and `stream`
(the stream the checkpoint belongs to). Contracts are router/core/backends.py's; what the cluster adds:

* Liveness by observation, never by clocks compared across nodes: a lease whose counter this node has not
  seen change for `lease_timeout_s` (its own monotonic clock) is expired, and may be taken, with a write
  conditional on the counter it observed. A lease owned by a node that is no longer a member (its node item
  expired, router/cluster/membership.py) may be taken the same way at once.
* Renewal: every `renew_s` a background task raises the counter of every lease this node holds, on the
  condition that it still owns it; a failed condition means another node took it: `owns()` turns false and
  the reader stops before its next read. A node that could not renew a lease for `lease_timeout_s` (the
  table unreachable) stops owning it too, as the others will take it.
* Balance: on every `claim`, a node takes free and expired leases up to its fair part,
  ceil(ready shards / members); if it still holds fewer and some member holds more than that part, it takes
  one lease from the member holding the most (one per refresh, as the KCL steals). The victim's reader stops
  at its next read; its records not checkpointed are read again by the taker (duplicates, never a loss).
* The checkpoint lives with the lease: the owner writes it (conditional on still owning the lease), a new
  owner starts after it. `LeaseCheckpoints` and `LeaseOwnership` of one mapping share a `MappingLeases`, so a
  lease taken over brings its checkpoint into this node's view before the reader starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from router.cluster.table import Item, LeaseTable, TableError
from router.config.cluster import ClusterLeases
from router.core.backends import ShardState

log = logging.getLogger("router.cluster.leases")

OWNER = {"#o": "owner"}
OWNER_COUNTER = {"#o": "owner", "#c": "counter"}


class MappingLeases:
    """The lease items of one mapping, as this node last read them, and the leases it holds."""

    def __init__(
        self,
        table: LeaseTable,
        pk: str,
        node: str,
        settings: ClusterLeases,
        members: Callable[[], list[str]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table, self.pk, self.node, self.settings = table, pk, node, settings
        self.members = members
        self.monotonic = monotonic
        self.items: dict[str, Item] = {}
        self.seen: dict[str, tuple[int, float]] = {}  # shard -> (counter, when it was seen to change)
        self.held: dict[str, tuple[int, float]] = {}  # shard -> (counter written, when it was written)
        self.stream = ""  # the stream's ARN, set by the mapping's checkpoints
        self.on_taken: Callable[[str, Item], None] | None = None
        self.before_release: Callable[[str], Awaitable[None]] | None = None  # the last checkpoint written
        self._renewer: asyncio.Task[None] | None = None

    async def read(self) -> None:
        now = self.monotonic()
        self.items = {str(i["sk"]): i for i in await self.table.query(self.pk)}
        for shard, item in self.items.items():
            counter = int(item.get("counter", 0))
            seen = self.seen.get(shard)
            if seen is None or seen[0] != counter:
                self.seen[shard] = (counter, now)

    def expired(self, shard: str) -> bool:
        item = self.items.get(shard)
        if item is None or not item.get("owner"):
            return True
        if item["owner"] not in self.members():
            return True
        since = self.seen[shard][1]
        return self.monotonic() - since >= self.settings.lease_timeout_s

    async def take(self, shard: str) -> bool:
        item = self.items.get(shard)
        counter = int(item.get("counter", 0)) if item is not None else 0
        sets = {"owner": self.node, "counter": counter + 1}
        condition = "#c = :c"
        if item is None:
            sets |= {"stream": self.stream}
            condition = "attribute_not_exists(sk) OR #c = :c"
        taken = await self.table.update(self.pk, shard, sets, condition, {":c": counter}, {"#c": "counter"})
        if taken is None:
            return False
        previous = item.get("owner") if item is not None else None
        log.info("shard %s: lease taken%s", shard, f" from {previous}" if previous else "")
        self.held[shard] = (counter + 1, self.monotonic())
        self.items[shard] = taken
        if self.on_taken is not None:
            self.on_taken(shard, taken)
        self._start_renewing()
        return True

    def owns(self, shard: str) -> bool:
        held = self.held.get(shard)
        if held is None:
            return False
        if self.monotonic() - held[1] >= self.settings.lease_timeout_s:  # not renewed in time: fenced
            return False
        return True

    async def renew(self) -> None:
        for shard, (counter, _) in list(self.held.items()):
            sent = self.monotonic()
            try:
                renewed = await self.table.update(
                    self.pk, shard, {"counter": counter + 1}, "#o = :me", {":me": self.node}, OWNER
                )
            except TableError as e:
                log.warning("shard %s: lease not renewed: %s", shard, e)
                continue
            if shard not in self.held:
                continue  # released meanwhile
            if renewed is None:
                log.info("shard %s: lease lost to another node", shard)
                del self.held[shard]
            else:
                self.held[shard] = (counter + 1, sent)

    async def release(self, shard: str) -> None:
        if shard not in self.held:
            return
        if self.before_release is not None:
            with contextlib.suppress(TableError):
                await self.before_release(shard)
        held = self.held.pop(shard, None)
        if held is None:
            return
        with contextlib.suppress(TableError):
            await self.table.update(
                self.pk, shard, {"owner": None, "counter": held[0] + 1}, "#o = :me", {":me": self.node}, OWNER
            )

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_loop(), name=f"leases:{self.pk}")

    async def _renew_loop(self) -> None:
        while self.held:
            await asyncio.sleep(self.settings.renew_interval_s)
            await self.renew()

    def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()


class LeaseOwnership:
    """ShardOwnership over the lease items (see the module docstring)."""

    def __init__(self, leases: MappingLeases) -> None:
        self.leases = leases

    async def claim(self, shards: Sequence[str]) -> set[str]:
        leases = self.leases
        try:
            await leases.renew()
            await leases.read()
            await self._balance(list(shards))
        except TableError as e:
            log.warning("shard leases: %s", e)
        return {s for s in shards if leases.owns(s)}

    async def _balance(self, shards: list[str]) -> None:
        leases, me = self.leases, self.leases.node
        fair = math.ceil(len(shards) / max(1, len(leases.members())))
        mine = [s for s in shards if leases.owns(s)]
        for shard in shards:
            if len(mine) >= fair:
                break
            if shard not in mine and leases.expired(shard) and await leases.take(shard):
                mine.append(shard)
        if len(mine) >= fair:
            return
        counts: dict[str, list[str]] = {}
        for shard in shards:
            owner = leases.items.get(shard, {}).get("owner")
            if owner and owner != me:
                counts.setdefault(owner, []).append(shard)
        if counts:
            theirs = max(counts.values(), key=len)
            if len(theirs) > fair:
                await leases.take(theirs[-1])

    def owns(self, shard: str) -> bool:
        return self.leases.owns(shard)

    async def release(self, shard: str) -> None:
        await self.leases.release(shard)


class LeaseCheckpoints:
    """CheckpointStore in the lease items: only the lease's owner writes a shard's checkpoint."""

    def __init__(self, leases: MappingLeases, stream: str) -> None:
        self.leases = leases
        self.stream = stream
        self.states: dict[str, ShardState] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._pruned: set[str] = set()
        leases.stream = stream
        leases.on_taken = self._adopt
        leases.before_release = self._write_now

    def _adopt(self, shard: str, item: Item) -> None:
        if shard not in self._dirty:
            self.states[shard] = self._state(item)

    def _state(self, item: Item) -> ShardState:
        if item.get("stream") not in (None, self.stream):
            return ShardState()  # another stream's checkpoint (a table dropped and created again)
        return ShardState(sequence=item.get("checkpoint"), finished=bool(item.get("finished", False)))

    async def load(self) -> None:
        try:
            await self.leases.read()
        except TableError as e:
            log.warning("shard checkpoints not read: %s", e)
            return
        for shard, item in self.leases.items.items():
            if shard not in self._dirty and not self.leases.owns(shard):  # the owner's view is the newest
                self.states[shard] = self._state(item)

    def get(self, shard: str) -> ShardState:
        return self.states.get(shard) or ShardState()

    def settled(self, shard: str, sequence: str) -> None:
        self.states.setdefault(shard, ShardState()).sequence = sequence
        self._mark(shard)

    def finish(self, shard: str) -> None:
        self.states.setdefault(shard, ShardState()).finished = True
        self._mark(shard)

    def forget(self, shard: str) -> None:
        self.states.pop(shard, None)
        self._mark(shard)

    def prune(self, listed: set[str]) -> None:
        for shard in [s for s, st in self.states.items() if st.finished and s not in listed]:
            del self.states[shard]
            self._pruned.add(shard)
            self._mark(shard)

    def _mark(self, shard: str) -> None:
        self._dirty.add(shard)
        self._wake.set()

    async def writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())

    async def flush(self) -> None:
        self._wake.clear()
        dirty, self._dirty = self._dirty, set()
        failed = False
        for shard in dirty:
            try:
                await self._write(shard)
            except TableError as e:
                log.warning("shard %s: checkpoint not written, retrying: %s", shard, e)
                self._dirty.add(shard)
                failed = True
        if failed:
            await asyncio.sleep(1.0)
        if self._dirty:
            self._wake.set()

    async def _write_now(self, shard: str) -> None:
        if shard in self._dirty:
            self._dirty.discard(shard)
            await self._write(shard)

    async def _write(self, shard: str) -> None:
        state = self.states.get(shard)
        leases = self.leases
        if shard in self._pruned:  # finished, and gone from the stream: the lease item goes too
            self._pruned.discard(shard)
            condition = "attribute_not_exists(#o) OR #o = :me"
            await leases.table.delete(leases.pk, shard, condition, {":me": leases.node}, OWNER)
            return
        if state is None:  # forgotten (trimmed or pruned): drop the checkpoint, keep the lease
            sets: dict[str, Any] = {"checkpoint": None, "finished": None}
        else:
            sets = {"checkpoint": state.sequence, "finished": state.finished, "stream": self.stream}
        written = await leases.table.update(leases.pk, shard, sets, "#o = :me", {":me": leases.node}, OWNER)
        if written is None:
            log.info("shard %s: checkpoint not written, the lease is another node's", shard)
