"""Shard-based streams (Kinesis, DynamoDB Streams): following the shard tree, reading shards into the engine.

`ShardSource` is the source object of both kinds: it opens the kind's `ShardClient` (a thin layer over the
aiobotocore client: list shards, get an iterator, get records, build a record) and runs one `ShardMapping`
per route. A mapping lists the stream's shards every `shard_refresh_s`, reads each shard with a `ShardReader`
once its parents are finished, and hands the records to the stream engine (`router/sources/stream.py`),
which delivers and settles them. Checkpoints and shard ownership go through the seams of
router/core/backends.py (`ctx.backends`; by default today's: a checkpoint file per mapping,
router/sources/stream/checkpoints.py, and this node owning every shard, router/sources/stream/ownership.py).

* Shard tree: a child shard is read only once every parent still listed is finished (read to its end and
  every record settled), so per key order holds across splits and merges. A shard listed at start without a
  checkpoint begins at `starting_position` (LATEST skips closed shards altogether: nothing new can come);
  shards that appear later begin at TRIM_HORIZON, so nothing written to them is missed.
* Restart: a shard with a checkpoint resumes AFTER_SEQUENCE_NUMBER it; finished shards are not read again.
* Ownership: each refresh claims the shards ready to read (`ShardOwnership.claim`); a reader starts only on
  an owned shard, stops when its shard is no longer owned (before its next read), and releases it when it
  ends. Today this node owns every shard.
* Reading: `get_records` with the room left in the shard's buffer as limit (back-pressure), again at once
  while records come, every `poll_interval_s` while the shard is idle. Throttling errors back off (0.1 s
  doubling to 5 s); an expired iterator is renewed after the last record read; a trimmed position restarts
  at TRIM_HORIZON; other errors are logged and retried.
* Stop (cancellation): in-flight batches get `stop_grace_s` to finish, then checkpoints are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from router.core import timefmt
from router.core.retry import Backoff
from router.shapes import common
from router.sources.stream.checkpoints import open_checkpoint_file
from router.sources.stream.engine import MappingSettings, StreamMapping, StreamRecord
from router.sources.stream.failure import build_sink, config_base_dir
from router.sources.stream.ownership import sole_owner
from router.sources.stream.routes import mapping_names, run_mappings
from router.sources.stream.stats import MappingStats

if TYPE_CHECKING:
    from router.core.backends import CheckpointStore, ShardOwnership
    from router.core.ports import RoutePort, SourceContext
    from router.core.writes import WriteJournal

log = logging.getLogger(__name__)

THROTTLED = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "KMSThrottlingException",
}
EXPIRED = {"ExpiredIteratorException"}
TRIMMED = {"TrimmedDataAccessException"}


@dataclass(frozen=True)
class Shard:
    id: str
    parents: tuple[str, ...] = ()
    closed: bool = False  # has an ending sequence number: no records will be added


def _writers(writes: WriteJournal, client: ShardClient, raws: list[Any], records: list[StreamRecord]) -> None:
    """Records a function of this router wrote carry its trace (router/core/writes.py): the journal is read
    after the page was fetched, so every write noted before the service stored a record is in it."""
    writes.refresh()
    for raw, record in zip(raws, records, strict=True):
        trace = client.written_by(writes, raw)
        if trace is not None:
            record.trace = trace


class ShardClient(Protocol):
    info_key: str  # the failure record's batch-info key: "KinesisBatchInfo" | "DDBStreamBatchInfo"
    stream_arn: str
    max_limit: int  # get_records' Limit ceiling

    async def shards(self) -> list[Shard]: ...

    async def iterator(self, shard_id: str, kind: str, sequence: str | None = None) -> str: ...

    async def records(self, iterator: str, limit: int) -> tuple[list[Any], str | None]:
        """Raw records and the next iterator (None once a closed shard is read to its end)."""
        ...

    def build(self, shard_id: str, raw: Any) -> StreamRecord: ...

    def written_by(self, writes: WriteJournal, raw: Any) -> str | None:
        """The trace of the invocation that wrote this record, from the write journal (loop protection)."""
        ...

    def sequence(self, record: StreamRecord) -> str: ...

    def error_code(self, exc: BaseException) -> str | None:
        """The service error code of an exception from the calls above (None: not a service error)."""
        ...

    def batch_info(self, shard_id: str, records: Sequence[StreamRecord]) -> dict[str, Any]: ...


OpenClient = Callable[[contextlib.AsyncExitStack], Any]  # async (stack) -> ShardClient


class AwsShardClient:
    """What the Kinesis and DynamoDB Streams clients share over the aiobotocore client in `client`.

    A kind names where its records keep their sequence number and arrival time: `record[block][sequence_key]`
    and `record[block][arrival_key]` (epoch seconds).
    """

    info_key: str
    max_limit: int
    block: str
    sequence_key: str
    arrival_key: str
    client: Any
    stream_arn: str

    async def records(self, iterator: str, limit: int) -> tuple[list[Any], str | None]:
        page = await self.client.get_records(ShardIterator=iterator, Limit=limit)
        return page.get("Records", []), page.get("NextShardIterator")

    def sequence(self, record: StreamRecord) -> str:
        return str(self._block(record)[self.sequence_key])

    def _block(self, record: StreamRecord) -> Any:
        assert record.envelope is not None  # shard kinds always build envelopes
        return record.envelope.record[self.block]

    def error_code(self, exc: BaseException) -> str | None:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            return str(code) if code else None
        return None

    def batch_info(self, shard_id: str, records: Sequence[StreamRecord]) -> dict[str, Any]:
        first, last = self._block(records[0]), self._block(records[-1])
        return {
            "shardId": shard_id,
            "startSequenceNumber": first[self.sequence_key],
            "endSequenceNumber": last[self.sequence_key],
            "approximateArrivalOfFirstRecord": timefmt.iso_ms(first[self.arrival_key]),
            "approximateArrivalOfLastRecord": timefmt.iso_ms(last[self.arrival_key]),
            "batchSize": len(records),
            "streamArn": self.stream_arn,
        }


def arrival_epoch(value: Any) -> float:
    """An arrival time as botocore returns it (a datetime, or epoch seconds) in epoch seconds; absent: now."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value) if value is not None else common.now(None)


class ShardSource:
    def __init__(self, ctx: SourceContext, open_client: OpenClient, *, starting_position: str) -> None:
        self.ctx = ctx
        self.open_client = open_client
        self.starting_position = starting_position
        self.mappings: list[ShardMapping] = []

    async def run(self) -> None:
        ctx, config = self.ctx, self.ctx.config
        async with contextlib.AsyncExitStack() as stack:
            client: ShardClient = await self.open_client(stack)
            names = mapping_names([r.function for r in ctx.routes])
            self.mappings = [
                ShardMapping(
                    ctx,
                    route,
                    name,
                    client,
                    self.starting_position,
                    config.poll_interval_s,
                    config.shard_refresh_s,
                    config.stop_grace_s,
                )
                for route, name in zip(ctx.routes, names, strict=True)
            ]
            await run_mappings(ctx.ready, [(f"{ctx.name}:{m.name}", m) for m in self.mappings])

    async def aclose(self) -> None:
        return None  # run() owns the client and every task; cancelling it releases them


@dataclass(eq=False)
class ShardMapping:
    """One route over a sharded stream: the engine's StreamKind, the shard tree, checkpoints, ownership."""

    ctx: SourceContext
    route: RoutePort
    name: str  # the mapping's name (local checkpoints go to <state_dir>/<name>.json)
    client: ShardClient
    starting_position: str
    poll_interval_s: float
    shard_refresh_s: float
    stop_grace_s: float
    engine: StreamMapping | None = None
    store: CheckpointStore | None = None
    ownership: ShardOwnership | None = None
    readers: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stats = MappingStats(self.ctx.name, self.route.function)
        self.info_key = self.client.info_key

    async def run(self, started: Callable[[], None]) -> None:
        on_error = self.route.settings.on_error
        sink = build_sink(
            on_error.destination if on_error else None,
            base_dir=config_base_dir(self.ctx),
            route=self.route,
            clock=self.ctx.clock,
        )
        self.stats.destination = sink.name
        self.stats.bind(self.ctx.metrics, self.ctx.status)
        settings = MappingSettings.for_route(
            self.route, region=self.ctx.region, account_id=self.ctx.account_id
        )
        self.store, self.ownership = self._open_backends()
        await self.store.load()
        try:
            async with asyncio.TaskGroup() as tg:
                self.engine = StreamMapping(
                    self.route, self, settings, sink=sink, clock=self.ctx.clock, stats=self.stats, tasks=tg
                )
                tg.create_task(self.store.writer(), name=f"checkpoints:{self.name}")
                try:
                    await self._refresh(tg, first=True)
                    started()
                    while True:
                        await self.ctx.clock.sleep(self.shard_refresh_s)
                        await self._refresh(tg, first=False)
                except asyncio.CancelledError:
                    await self.engine.close_all(self.stop_grace_s)  # let in-flight batches settle
                    await self.store.flush()
                    raise
        finally:
            self.stats.unbind()
            await sink.aclose()

    def _open_backends(self) -> tuple[CheckpointStore, ShardOwnership]:
        backends, ctx = self.ctx.backends, self.ctx
        open_checkpoints = backends.checkpoints if backends is not None else open_checkpoint_file
        open_ownership = backends.ownership if backends is not None else sole_owner
        store = open_checkpoints(
            source=ctx.name, folder=ctx.state_dir, mapping=self.name, stream=self.client.stream_arn
        )
        return store, open_ownership(source=ctx.name, mapping=self.name)

    async def _refresh(self, tg: asyncio.TaskGroup, *, first: bool) -> None:
        assert self.store is not None and self.ownership is not None
        try:
            shards = await self.client.shards()
        except Exception as e:  # unreachable for now: keep what runs, list again later
            log.warning(
                "listing shards failed", extra={"fields": {"source": self.ctx.name, "error": repr(e)}}
            )
            return
        await self.store.load()
        start = self.starting_position if first else "TRIM_HORIZON"
        ready = self._ready(shards, start)
        owned = await self.ownership.claim([shard.id for shard in ready])
        for shard in ready:
            if shard.id in self.readers or shard.id not in owned:
                continue
            reader = ShardReader(self, shard, start)
            self.readers[shard.id] = tg.create_task(reader.run(), name=f"shard:{self.name}:{shard.id}")

    def _ready(self, shards: Sequence[Shard], start: str) -> list[Shard]:
        """The shards to read now, in order (those being read included): not finished, parents finished.
        Starting at LATEST, a closed shard without a checkpoint is finished instead: nothing new can come."""
        store = self.store
        assert store is not None
        listed = {s.id for s in shards}
        store.prune(listed)
        ready = []
        for shard in shards:
            state = store.get(shard.id)
            if shard.id in self.readers:
                ready.append(shard)  # claimed again: a lease is renewed
                continue
            if state.finished:
                continue
            if any(p in listed and not store.get(p).finished for p in shard.parents):
                continue  # parents first: order per key across splits and merges
            if state.sequence is None and start == "LATEST" and shard.closed:
                store.finish(shard.id)
                continue
            ready.append(shard)
        return ready

    # -- StreamKind ---------------------------------------------------------------------------------------

    def checkpoint(self, partition: str, last: StreamRecord) -> None:
        assert self.store is not None
        self.store.settled(partition, self.client.sequence(last))

    def failed_position(self, identifier: Any, partition: str) -> int | None:
        if isinstance(identifier, str) and identifier.strip().isascii() and identifier.strip().isdigit():
            return int(identifier)
        return None

    def batch_info(self, partition: str, records: Sequence[StreamRecord]) -> dict[str, Any]:
        return self.client.batch_info(partition, records)


class ShardReader:
    """Reads one shard into the engine until it is closed and finished (or the mapping stops)."""

    def __init__(self, mapping: ShardMapping, shard: Shard, start: str) -> None:
        self.m = mapping
        self.shard = shard
        self.start = start
        self.last_read: str | None = None  # sequence number of the last record offered

    async def run(self) -> None:
        m, shard = self.m, self.shard.id
        engine, client, clock, store, ownership = m.engine, m.client, m.ctx.clock, m.store, m.ownership
        assert engine is not None and store is not None and ownership is not None
        engine.open(shard)
        try:
            iterator: str | None = await self._iterator()
            backoff = Backoff(0.1, 5.0)
            while iterator is not None:
                if not ownership.owns(shard):  # another node took it: it reads on from the checkpoint
                    log.info(
                        "shard lost to another owner",
                        extra={"fields": {"source": m.ctx.name, "shard": shard}},
                    )
                    return
                await engine.wait_room(shard)
                limit = max(1, min(client.max_limit, engine.room(shard)))
                current = iterator
                try:
                    raws, iterator = await client.records(current, limit)
                except Exception as e:
                    iterator = await self._recover(e, current, backoff)
                    continue
                backoff.reset()
                if raws:
                    records = [client.build(shard, r) for r in raws]
                    if m.ctx.writes is not None:
                        _writers(m.ctx.writes, client, raws, records)
                    engine.offer(shard, records)
                    self.last_read = client.sequence(records[-1])
                elif iterator is not None:
                    await clock.sleep(m.poll_interval_s)
            await engine.drained(shard)  # a closed shard read to its end is finished once all is settled
            store.finish(shard)
            log.info("shard finished", extra={"fields": {"source": m.ctx.name, "shard": shard}})
        finally:
            m.readers.pop(shard, None)
            await engine.close(shard, 0)
            await ownership.release(shard)

    async def _iterator(self) -> str:
        """Where to read: after the last record read, else after the checkpoint, else the start position."""
        assert self.m.store is not None
        while True:
            after = self.last_read or self.m.store.get(self.shard.id).sequence
            try:
                if after is not None:
                    return await self.m.client.iterator(self.shard.id, "AFTER_SEQUENCE_NUMBER", after)
                return await self.m.client.iterator(self.shard.id, self.start)
            except Exception as e:
                if self.m.client.error_code(e) in TRIMMED:
                    self._restart_at_trim_horizon()
                    continue
                log.warning(
                    "getting a shard iterator failed; retrying",
                    extra={"fields": {"shard": self.shard.id, "error": repr(e)}},
                )
                await self.m.ctx.clock.sleep(1.0)

    async def _recover(self, e: Exception, iterator: str, backoff: Backoff) -> str | None:
        code = self.m.client.error_code(e)
        if code in EXPIRED:
            return await self._iterator()
        if code in TRIMMED:
            self._restart_at_trim_horizon()
            return await self._iterator()
        if code not in THROTTLED:
            log.warning(
                "get_records failed; retrying", extra={"fields": {"shard": self.shard.id, "error": repr(e)}}
            )
        await backoff.sleep(self.m.ctx.clock)
        return iterator

    def _restart_at_trim_horizon(self) -> None:
        """The position was trimmed (past retention): what is left of the shard is read from its start."""
        log.warning(
            "shard position trimmed: reading from TRIM_HORIZON", extra={"fields": {"shard": self.shard.id}}
        )
        assert self.m.store is not None
        self.last_read, self.start = None, "TRIM_HORIZON"
        self.m.store.forget(self.shard.id)
