"""The backend seams: what a router keeps that a cluster of routers would have to share.

Each seam is a small protocol with today's single-node implementation behind it, so that the cluster work
plugs a shared implementation in without changing the code that uses it. docs/backends.md describes every
seam: its contract, today's implementation, and what a shared implementation must guarantee.

* `AsyncQueue`: the durable store of asynchronous events the dispatcher runs (today SQLite,
  router/dispatch/queue.py).
* `CheckpointStore`: the checkpoints of one shard-based stream mapping, Kinesis or DynamoDB Streams (today a
  JSON file per mapping, router/sources/stream/checkpoints.py). Kafka commits its offsets to the broker.
* `ShardOwnership`: which shards of a stream this node reads (today all of them,
  router/sources/stream/ownership.py).
* `TickClaims`: which ticks of a schedule have fired (today the schedule's state file,
  router/sources/schedule/state.py).
* `InvocationRecord`: the invocations and accepted events the inspection API, `router tail` and replay
  read (today SQLite under state_dir, router/record/sqlite.py; rings in memory without `record.enabled`,
  router/record/memory.py).

`Backends` bundles the chosen implementations. The daemon builds it (`router.backends.local` builds
today's) and gives the queue to the dispatcher, the record to the inspection API, and `SourceBackends` to
every source (`SourceContext.backends`; a source given none uses today's implementations).

The records the seams store (`QueuedEvent`, `ShardState`, `ScheduleState`, `Invocation`, `AcceptedEvent`) are
defined here, with the protocols that carry them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

# -- the asynchronous queue ----------------------------------------------------------------------------------


class QueuedEvent(msgspec.Struct, kw_only=True):
    """One stored asynchronous event's metadata (its payload is read with `AsyncQueue.payload`)."""

    id: str  # the request id, the same for every attempt (as on Lambda)
    function: str
    enqueued_at: float  # wall clock (epoch seconds), for the maximum event age
    not_before: float  # wall clock: do not run before this (retry delays)
    attempts: int = 0  # invocations that ran (approximateInvokeCount)
    system_errors: int = 0  # attempts that could not run for the system's reason (backoff exponent)
    trace: str | None = None
    source: str | None = None
    qualifier: str | None = None  # the version or alias it was invoked with (None: $LATEST)


@runtime_checkable
class AsyncQueue(Protocol):
    """The durable store of asynchronous events, as the dispatcher and its scheduler use it.

    * `await open()` opens the store and returns the stored events this node is to run, oldest first (after
      a restart: every event stored and not deleted). Raises QueueUnavailable when it cannot be opened.
    * `await put(event, payload)` returns once the event is durable: it survives `kill -9` of the router and
      a power cut. Then `on_stored(event)` is called, even if the caller was cancelled meanwhile; that is how
      the scheduler learns of new events. QueueUnavailable: nothing was stored.
    * `await update(event)` persists its retry bookkeeping (not_before, attempts, system_errors) durably.
      With `redelivers_updates` true the queue hands the updated event back itself, through `on_stored`
      (on this node or another: a shared queue moves a waiting retry where it is consumed), and the
      scheduler does not keep it; false (today's), the scheduler keeps it for its retry.
    * `await delete(event)` removes it for good; the dispatcher calls it only once the event's outcome is
      settled. Then `settled(id)` returns. An event not deleted when the router dies runs again after the
      restart: delivery is at-least-once, as Lambda's asynchronous queue.
    * `await payload(id)`: the stored payload, None when there is no such event.
    * `is_open`, `depth`, `oldest` and `functions` read memory only (scheduling and stats call them often);
      one function's events count in enqueue order, so `oldest` is the first of them.
    * `await aclose()` finishes pending writes, then closes. Idempotent.
    """

    on_stored: Callable[[QueuedEvent], None] | None
    redelivers_updates: bool

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> list[QueuedEvent]: ...

    async def put(self, event: QueuedEvent, payload: bytes) -> None: ...

    async def update(self, event: QueuedEvent) -> None: ...

    async def delete(self, event: QueuedEvent) -> None: ...

    async def payload(self, event_id: str) -> bytes | None: ...

    async def settled(self, event_id: str) -> None: ...

    def depth(self, function: str | None = None) -> int: ...

    def oldest(self, function: str | None = None) -> float | None: ...

    def functions(self) -> list[str]: ...

    async def aclose(self) -> None: ...


# -- stream checkpoints and shard ownership ------------------------------------------------------------------


class ShardState(msgspec.Struct, kw_only=True):
    """One shard's checkpoint."""

    sequence: str | None = None  # the last settled record
    finished: bool = False  # read to its end and every record settled: its children may be read


@runtime_checkable
class CheckpointStore(Protocol):
    """The checkpoints of one mapping (a route over a shard-based stream), per shard.

    * `await load()` brings this node's view up to date with the saved checkpoints. The mapping calls it
      before its first shard refresh and before every later one; today's file is read by the first call
      only (this node is its one writer).
    * `get(shard)`: the shard's checkpoint as of the last load, with this node's changes since.
    * `settled(shard, sequence)`: every record of the shard up to `sequence` is settled. `finish(shard)`: the
      shard is read to its end and settled. `forget(shard)`: its position was trimmed, start it over.
      `prune(listed)`: forget finished shards the stream no longer lists. None of them waits for the disk.
    * Durability: a change is durable once the `writer()` task (run for the mapping's life) has written it,
      soon after; `await flush()` writes pending changes now, and the writer writes once more when
      cancelled. A crash loses at most the latest changes: those records are delivered again, never lost.
    * The checkpoints belong to one stream: checkpoints saved for another (a table dropped and created
      again under the same name) are ignored.
    """

    async def load(self) -> None: ...

    def get(self, shard: str) -> ShardState: ...

    def settled(self, shard: str, sequence: str) -> None: ...

    def finish(self, shard: str) -> None: ...

    def forget(self, shard: str) -> None: ...

    def prune(self, listed: set[str]) -> None: ...

    async def writer(self) -> None: ...

    async def flush(self) -> None: ...


@runtime_checkable
class ShardOwnership(Protocol):
    """Which shards of one mapping this node reads; a shard is read by one node at a time.

    * `await claim(shards)` is called on every shard refresh with the shards ready to read (listed, not
      finished, parents finished), those being read included, in the stream's order. It returns the ones
      this node owns now: it keeps (renews) those it has, may take free ones, and may lose some to other
      nodes. A reader starts only on an owned shard.
    * `owns(shard)`: whether this node still owns it; a reader checks it before every read and stops when
      it does not (its records not yet checkpointed are read again by the next owner: duplicates, no loss).
    * `await release(shard)`: this node stopped reading the shard (finished, lost, or the mapping stops),
      after its last checkpoint was recorded; another node may take it at once. Releasing a shard not
      owned does nothing.
    * A crash releases nothing: a shared implementation lets a claim expire unless renewed.
    """

    async def claim(self, shards: Sequence[str]) -> set[str]: ...

    def owns(self, shard: str) -> bool: ...

    async def release(self, shard: str) -> None: ...


# -- schedule ticks ------------------------------------------------------------------------------------------


class ScheduleState(msgspec.Struct, kw_only=True):
    """What a schedule keeps across restarts. `pending`: request ids of the last tick's invocations."""

    expression: str
    timezone: str
    anchor: float  # rate(): ticks are anchor + k*period
    last_tick: float  # the latest tick handled (fired or skipped); never fired again
    pending: list[str] = []


@runtime_checkable
class TickClaims(Protocol):
    """The fired ticks of one schedule: a tick fires only once its claim succeeds, so it fires once.

    * `await load()`: the schedule's saved state; None when it has none yet (or it is unreadable: logged).
    * `await claim(tick)`: True when this node may fire `tick`: no state saved with a `last_tick` at or after
      it (and, shared, no other node holds a live claim on it). False: the tick was handled already, here
      before a restart or by another node; do not fire it.
    * `await save(state)` returns once the state is durable (it survives `kill -9` and a power cut). Saving
      a `last_tick` confirms the claims of every tick up to it: they never succeed again, after restarts
      and on every node. The source never saves a `last_tick` before one it saved.
    * Order and crash: the source claims, submits (queues durably), then saves. A crash between submit and
      save leaves the claim unconfirmed: the tick fires again after the restart (a shared implementation:
      on another node once the claim expires), with the same event id. At-least-once, never lost.
    """

    async def load(self) -> ScheduleState | None: ...

    async def claim(self, tick: float) -> bool: ...

    async def save(self, state: ScheduleState) -> None: ...


# -- the invocation record -----------------------------------------------------------------------------------


class Invocation(msgspec.Struct, kw_only=True):
    """One recorded invocation. `event` and `result` may be cut (memory record: to its limit); the sizes
    are the full ones."""

    seq: int
    function: str
    request_id: str
    source: str | None
    invocation_type: str
    attempt: int
    time: float
    duration_ms: float
    billed_ms: int
    outcome: str  # "success" | "error" | "loop-stopped" | "throttled" (an injected throttle)
    error_type: str | None
    cold: bool
    trace: str | None
    event: bytes
    event_size: int
    result: bytes
    result_size: int
    init_ms: float | None = None  # the REPORT line's figures
    memory_mb: int = 0
    max_memory_mb: int = 0
    log: bytes = b""  # the tail of the call's log (START ... REPORT)
    fault: str | None = None  # the kind of an injected fault (router/dispatch/faults.py), None when real
    replay_of: str | None = None  # the request id this invocation replayed


class AcceptedEvent(msgspec.Struct, kw_only=True):
    """An event a route accepted: queued for (`mode` "queued") or invoked on (`mode` "invoked") a function.

    `request_id` is the invocation's (every attempt of a queued event shares it). `position` says where the
    event came from in its source (an object key, a partition and offsets, a shard and sequence numbers),
    read from the event when it is recorded."""

    request_id: str
    source: str
    function: str
    time: float
    mode: str
    trace: str | None = None
    position: str | None = None
    fault: str | None = None  # an injected source fault: "duplicate", "drop_ack", "reorder"
    payload: bytes = b""


class RecordQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Which recorded requests to replay: each request once (its latest attempt), oldest first."""

    source: str | None = None
    function: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # exclusive
    outcome: str | None = None  # of the latest attempt: "success", "error", ...
    limit: int = 10_000


class Recorded(msgspec.Struct, kw_only=True):
    """A recorded request, as replay needs it: its latest invocation (with the full event) and, when a
    route accepted it, the accepted event."""

    invocation: Invocation
    accepted: AcceptedEvent | None = None


Predicate = Callable[[dict[str, Any]], bool]  # over an invocation's view (router.record.views.view)


@runtime_checkable
class InvocationRecord(Protocol):
    """What reached each function and what came of it, for the inspection API, `router tail` and replay.

    * `await open()` before use (the durable record reads where it left off); `await aclose()` writes what
      is pending and closes; `close()` ends every wait at once (shutdown). Both idempotent.
    * `attach(dispatcher)` subscribes the record to a `router.dispatch.Dispatcher`: its `on_result` hooks
      (every finished invocation), `on_accepted` (every event a route accepted), its loop guard's `on_stop`
      and its fault injector's `on_inject`. Recording never waits: it runs on the dispatcher's hot path.
    * Each recorded invocation gets a `seq`, increasing across all functions and (durable record) across
      restarts; `cursor` is the latest (0 before the first). A reader keeps the highest seq it saw and asks
      for what came `after` it, so nothing recorded between two reads is missed while the record holds it.
      What it holds is bounded (memory: per function; durable: by age and size).
    * `await recent(function, after=, limit=, source=)`: what it holds after the cursor, oldest first (the
      newest `limit`). `await functions()`: function -> how many invocations it holds.
    * `await since(function, after, wait_s, source)`: `recent`, waiting up to wait_s for at least one.
      `await wait(function, predicate, after, timeout_s)`: the first invocation after the cursor whose view
      the predicate accepts, waiting up to timeout_s for one; None on timeout.
    * `await request(request_id)`: (the accepted events, every invocation) of one request id, oldest first.
    * `await select(query)`: the requests a replay would send again (a `RecordQuery`), each once with its
      latest invocation; `link(request_id, original)` records that a request replays another.
    """

    @property
    def cursor(self) -> int: ...

    async def open(self) -> None: ...

    def attach(self, dispatcher: Any) -> None: ...

    async def functions(self) -> dict[str, int]: ...

    async def recent(
        self,
        function: str | None = None,
        *,
        after: int = 0,
        limit: int | None = None,
        source: str | None = None,
    ) -> list[Invocation]: ...

    async def since(
        self, function: str | None, after: int, wait_s: float, source: str | None = None
    ) -> list[Invocation]: ...

    async def wait(
        self, function: str | None, predicate: Predicate | None, after: int, timeout_s: float
    ) -> Invocation | None: ...

    async def request(self, request_id: str) -> tuple[list[AcceptedEvent], list[Invocation]]: ...

    async def select(self, query: RecordQuery) -> list[Recorded]: ...

    def link(self, request_id: str, original: str) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


# -- the bundle ----------------------------------------------------------------------------------------------


class OpenCheckpoints(Protocol):
    """Builds the CheckpointStore of one mapping. `folder` is the source's own state folder
    (`SourceContext.state_dir`), where a local implementation keeps its files; a shared one ignores it."""

    def __call__(self, *, source: str, folder: Path, mapping: str, stream: str) -> CheckpointStore: ...


class OpenOwnership(Protocol):
    """Builds the ShardOwnership of one mapping of a source."""

    def __call__(self, *, source: str, mapping: str) -> ShardOwnership: ...


class OpenTickClaims(Protocol):
    """Builds the TickClaims of one schedule source (`folder` as for OpenCheckpoints)."""

    def __call__(self, *, source: str, folder: Path) -> TickClaims: ...


@dataclass(frozen=True)
class SourceBackends:
    """What sources are given (`SourceContext.backends`): builders of their per-source seams."""

    checkpoints: OpenCheckpoints
    ownership: OpenOwnership
    ticks: OpenTickClaims


@dataclass(frozen=True)
class Backends:
    """The chosen implementation of every seam: the queue goes to the dispatcher, the record to the
    inspection API, `sources` to every SourceContext. Replace one with `dataclasses.replace`."""

    queue: AsyncQueue
    record: InvocationRecord
    sources: SourceBackends


__all__ = [
    "AcceptedEvent",
    "AsyncQueue",
    "Backends",
    "CheckpointStore",
    "Invocation",
    "InvocationRecord",
    "OpenCheckpoints",
    "OpenOwnership",
    "OpenTickClaims",
    "Predicate",
    "QueuedEvent",
    "RecordQuery",
    "Recorded",
    "ScheduleState",
    "ShardOwnership",
    "ShardState",
    "SourceBackends",
    "TickClaims",
]
