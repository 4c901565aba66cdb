"""Stream event-source mappings: Lambda's batching, checkpoint and retry semantics for any partitioned stream.

One `StreamMapping` is one event source mapping: one route (so one function) reading one stream source.
The source (Kafka, Kinesis, DynamoDB Streams) owns the reading; the mapping owns everything after it:

* `open(partition)` when a partition or shard is assigned; `offer(partition, records)` with each fetch, in
  stream order; `room(partition)` / `await wait_room(partition)` for back-pressure (the source stops
  fetching a partition while its buffer is full; `room_made` is set whenever a lane's take leaves room in
  its partition); `await close(partition, grace_s)` when it is revoked or finished; `await
  drained(partition)` waits until every record offered so far is settled (closed shards).
* Events are rendered by the route from the records' envelopes, or by the kind (`StreamKind.render`) from
  their native form; records of a route without a filter or event-name list are not offered to a filter.
* Per partition, records are delivered in order, in batches closed by size, window or payload cap.
  Partitions run in parallel. With `parallelization_factor` > 1 a partition has that many lanes, each
  delivering its own batches; a record's lane is chosen by its key, so order is kept per key.
* The checkpoint advances only over settled records: delivered, filtered out, or given up (and recorded in the
  failure destination). The source hears of it through `StreamKind.checkpoint(partition, last)` and persists
  it (Kafka commit, a checkpoint file). A record after an unsettled one is never checkpointed, so a crash
  re-delivers at most what was buffered or in flight, and loses nothing.
* With `tumbling_window_s`, each lane delivers its records window by window
  (router/sources/stream/windows.py): a batch stays within one window, and a window ends with a final
  invocation carrying its state.
* Function errors are retried, bisected, narrowed by partial batch responses and aged out as configured
  (`router/sources/stream_batch.py`); given-up records go to the failure destination
  (`router/sources/stream_failure.py`). Dispatch errors (throttled, shutting down, no such function) make
  the lane back off and retry the same batch: nothing is skipped and no retry is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from router.sources.stream.batch import deliver, finish_window
from router.sources.stream.records import PAYLOAD_CAP, MappingSettings, StreamKind, StreamRecord
from router.sources.stream.windows import LaneWindows

if TYPE_CHECKING:
    from router.core.clock import Clock
    from router.core.envelope import Envelope
    from router.core.ports import RoutePort
    from router.sources.stream.failure import FailureSink
    from router.sources.stream.stats import MappingStats

log = logging.getLogger(__name__)

__all__ = ["PAYLOAD_CAP", "MappingSettings", "StreamKind", "StreamMapping", "StreamRecord"]


class StreamMapping:
    """One event source mapping: partitions, their lanes and checkpoints. Lane tasks live in `tasks`."""

    def __init__(
        self,
        route: RoutePort,
        kind: StreamKind,
        settings: MappingSettings,
        *,
        sink: FailureSink,
        clock: Clock,
        stats: MappingStats,
        tasks: asyncio.TaskGroup,
    ) -> None:
        self.route = route
        self.kind = kind
        self.settings = settings
        self.sink = sink
        self.clock = clock
        self.stats = stats
        stats.positions = self.checkpoints  # the console's view of where each partition stands
        self._tasks = tasks
        self.partitions: dict[str, Partition] = {}
        self._render = getattr(kind, "render", None)
        self.room_made = asyncio.Event()  # set when a lane takes records and its partition has room again
        # A route with neither a filter nor an event-name list (nor a kind that narrows by event name by
        # default) takes every stream record: offering then skips the check per record.
        self.filtering = (
            route.settings.filter is not None
            or route.settings.events is not None
            or route.traits.default_events != ("*",)
        )

    def render(self, partition: str, records: Sequence[StreamRecord]) -> bytes:
        """The event the function receives for these records of one partition."""
        if self._render is not None:
            payload = self._render(partition, records)
            if payload is not None:
                return payload
        envelopes = [r.envelope for r in records]
        if any(e is None for e in envelopes):
            raise RuntimeError(f"{partition}: records without an envelope, and the kind did not render them")
        return self.route.render(cast("list[Envelope]", envelopes))

    def open(self, partition: str) -> None:
        if partition in self.partitions:
            return
        p = Partition(partition, self)
        self.partitions[partition] = p
        p.lane_tasks = [
            self._tasks.create_task(lane.run(), name=f"stream:{self.route.function}:{partition}:{lane.index}")
            for lane in p.lanes
        ]

    def offer(self, partition: str, records: Sequence[StreamRecord]) -> None:
        """Hand over fetched records. Records of a partition that is not open (revoked meanwhile) are dropped:
        they are not checkpointed, so their next owner reads them again."""
        p = self.partitions.get(partition)
        if p is not None and not p.closing:
            p.offer(records)

    def room(self, partition: str) -> int:
        p = self.partitions.get(partition)
        return 0 if p is None else self.settings.buffer_limit - p.buffered

    async def wait_room(self, partition: str) -> None:
        p = self.partitions.get(partition)
        while p is not None and not p.closing and self.settings.buffer_limit - p.buffered <= 0:
            p.room.clear()
            await p.room.wait()

    async def drained(self, partition: str) -> None:
        """Wait until every record offered to the partition so far is settled."""
        p = self.partitions.get(partition)
        if p is not None:
            await p.drained.wait()

    async def close(self, partition: str, grace_s: float) -> None:
        """Stop a partition: lanes finish their current batch (up to grace_s), then are cancelled. Buffered
        records are dropped unsettled, so the checkpoint stays before them."""
        p = self.partitions.pop(partition, None)
        if p is None:
            return
        p.closing = True
        for lane in p.lanes:
            lane.wake.set()
        if p.lane_tasks:
            _, pending = await asyncio.wait(p.lane_tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        p.room.set()
        self.stats.forget(partition)

    async def close_all(self, grace_s: float) -> None:
        await asyncio.gather(*(self.close(name, grace_s) for name in list(self.partitions)))

    def checkpoints(self) -> dict[str, StreamRecord]:
        return {name: p.checkpointed for name, p in self.partitions.items() if p.checkpointed is not None}


class Partition:
    """One partition or shard: every uncheckpointed record in order, and the lanes delivering them."""

    def __init__(self, name: str, mapping: StreamMapping) -> None:
        self.name = name
        self.mapping = mapping
        self.order: deque[StreamRecord] = deque()  # offered, not yet checkpointed, in stream order
        self.lanes = [Lane(self, i) for i in range(mapping.settings.parallelization_factor)]
        self.lane_tasks: list[asyncio.Task[None]] = []
        self.buffered = 0  # records waiting in lane queues (not yet in a batch)
        self.closing = False
        self.checkpointed: StreamRecord | None = None
        self.room = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()

    def offer(self, records: Sequence[StreamRecord]) -> None:
        if not records:
            return
        self.order.extend(records)
        self.drained.clear()
        kept = self._filter(records) if self.mapping.filtering else records
        now = self.mapping.clock.monotonic()
        if len(self.lanes) == 1:
            self.lanes[0].extend(kept, now)
        else:
            per_lane: dict[int, list[StreamRecord]] = {}
            for r in kept:
                per_lane.setdefault(_lane_index(r.key, len(self.lanes)), []).append(r)
            for index, chunk in per_lane.items():
                self.lanes[index].extend(chunk, now)
        self.advance()

    def _filter(self, records: Sequence[StreamRecord]) -> Sequence[StreamRecord]:
        """The records the route takes; the others are settled at once (filtered out)."""
        matches = self.mapping.route.matches
        kept = []
        for r in records:
            if matches(r.envelope):  # type: ignore[arg-type]
                kept.append(r)
            else:
                r.done = True
        self.mapping.stats.filtered += len(records) - len(kept)
        return kept

    def settle(self, records: Sequence[StreamRecord]) -> None:
        for r in records:
            r.done = True
        self.advance()

    def advance(self) -> None:
        """Move the checkpoint over the settled prefix and tell the source."""
        last = None
        order = self.order
        while order and order[0].done:
            last = order.popleft()
        if last is not None:
            self.checkpointed = last
            self.mapping.kind.checkpoint(self.name, last)
        if not order:
            self.drained.set()

    def took(self, n: int) -> None:
        self.buffered -= n
        if self.mapping.settings.buffer_limit - self.buffered > 0:
            self.room.set()
            self.mapping.room_made.set()


def _lane_index(key: Hashable | None, lanes: int) -> int:
    # crc32, not hash(): str hashes are salted per process, and a stable spread makes runs reproducible.
    if key is None:
        return 0  # records without a key keep the partition's own order
    data = key if isinstance(key, bytes) else str(key).encode()
    return zlib.crc32(data) % lanes


@dataclass(eq=False)
class Lane:
    """Delivers one partition's records of some keys, one batch at a time, in order."""

    partition: Partition
    index: int
    queue: deque[StreamRecord] = field(default_factory=deque)
    queued_bytes: int = 0
    since: float = 0.0  # monotonic time the oldest queued record arrived (the batching window's start)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    windows: LaneWindows | None = None  # with tumbling windows

    def __post_init__(self) -> None:
        seconds = self.partition.mapping.settings.tumbling_window_s
        if seconds > 0:
            self.windows = LaneWindows(seconds, self.partition.name)

    def extend(self, records: Sequence[StreamRecord], now: float) -> None:
        if not records:
            return
        if not self.queue:
            self.since = now
        self.queue.extend(records)
        self.queued_bytes += sum(r.size for r in records)
        self.partition.buffered += len(records)
        self.wake.set()

    async def run(self) -> None:
        mapping, windows = self.partition.mapping, self.windows
        while True:
            batch = await self.gather()
            if batch is None:
                return
            if windows is None:
                await deliver(mapping, self.partition, batch)
            elif batch:
                ended, window = windows.take(batch[0])
                await finish_window(mapping, ended)
                await deliver(mapping, self.partition, batch, window=window)
                if window.too_big:
                    await finish_window(mapping, windows.close(), early=True)
            else:
                await finish_window(mapping, windows.close())

    async def gather(self) -> list[StreamRecord] | None:
        """The next batch: waits for a first record, then for the window, a full batch or the payload cap.
        With tumbling windows, [] when the open window is over and no record is queued (its final call)."""
        p, s, clock = self.partition, self.partition.mapping.settings, self.partition.mapping.clock
        while not self.queue:
            if p.closing:
                return None
            self.wake.clear()
            due = self.windows.due_in(clock.time()) if self.windows is not None else None
            if due is None:
                await self.wake.wait()
            elif due <= 0:
                return []
            else:
                await _wait_event(self.wake, due, clock)
        if p.closing:
            return None
        if s.window_s > 0:
            deadline = self.since + s.window_s
            while not self._full() and not p.closing:
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    break
                self.wake.clear()
                await _wait_event(self.wake, remaining, clock)
            if p.closing:
                return None
        return self._take()

    def _full(self) -> bool:
        s = self.partition.mapping.settings
        return len(self.queue) >= s.batch_size or self.queued_bytes >= s.max_bytes

    def _take(self) -> list[StreamRecord]:
        s = self.partition.mapping.settings
        queue = self.queue
        if self.windows is not None:
            return self._take_window()
        if self.queued_bytes <= s.max_bytes:  # all queued records fit under the cap: no need to weigh each
            popleft = queue.popleft
            batch = [popleft() for _ in range(min(len(queue), s.batch_size))]
            size = sum(r.size for r in batch) if queue else self.queued_bytes
        else:
            batch, size = [], 0
            while queue and len(batch) < s.batch_size:
                nxt = queue[0].size
                if batch and size + nxt > s.max_bytes:
                    break
                batch.append(queue.popleft())
                size += nxt
        # Records left behind keep `since`: they already waited a window, the next batch goes out at once.
        self.queued_bytes -= size
        self.partition.took(len(batch))
        return batch

    def _take_window(self) -> list[StreamRecord]:
        """Like _take, but the batch ends where the head record's tumbling window does."""
        s, queue, windows = self.partition.mapping.settings, self.queue, self.windows
        assert windows is not None
        start = windows.start_of(queue[0])
        batch: list[StreamRecord] = []
        size = 0
        while queue and len(batch) < s.batch_size and windows.start_of(queue[0]) == start:
            nxt = queue[0].size
            if batch and size + nxt > s.max_bytes:
                break
            batch.append(queue.popleft())
            size += nxt
        self.queued_bytes -= size
        self.partition.took(len(batch))
        return batch


async def _wait_event(event: asyncio.Event, seconds: float, clock: Clock) -> None:
    """Wait for the event or for `seconds` of the (injectable) clock, whichever comes first."""
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
