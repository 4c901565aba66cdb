"""One Kafka event source mapping: a consumer in its own group feeding the stream engine for one route.

`KafkaMapping.run(started)` subscribes, starts the consumer and loops: fetch (`getmany`), turn each
record into a stream record (`router/sources/kafka_records.py`), offer it to the engine under the partition
name `"<topic>-<partition>"`, pause partitions whose buffer is full, resume them once there is room. A route
without a filter in the `aws` format gets native records (no envelope each) and its events are encoded in
one call per batch (`render`); a filter or the `cloudevents` format gets envelopes in Lambda's Kafka shape
(`router/shapes/kafka.py`), rendered by the route.

It is also the engine's `StreamKind` for Kafka:

* `checkpoint(partition, last)` records `last.offset + 1` as the offset to commit; a commit task sends the
  latest offsets of every partition after a change, one commit at a time and at most one per
  `commit_interval_ms` (changes made meanwhile go in the next one). Revocation and stop commit at once.
* `failed_position(identifier)` reads a partial batch response's itemIdentifier: Lambda's Kafka form
  `{"partition": "<topic>-<n>", "offset": N}`, or a plain offset (number or numeric string).
* `batch_info(...)` is the failure record's `KafkaBatchInfo`.
* `render(partition, records)` is the event of native records (None for enveloped ones).

Rebalances: revoked partitions stop taking batches, finish the one in flight (up to `revoke_grace_s`), and
their offsets are committed before the partitions are handed over. On stop (cancellation) the same happens
for every partition, then the consumer leaves its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from router.shapes import kafka as shapes
from router.sources.kafka.records import RecordBuilder
from router.sources.stream.engine import MappingSettings, StreamMapping, StreamRecord
from router.sources.stream.failure import build_sink, config_base_dir
from router.sources.stream.stats import MappingStats

if TYPE_CHECKING:
    from collections.abc import Sequence

    from router.core.ports import RoutePort, SourceContext

log = logging.getLogger(__name__)

DESTINATION_RETRY_CAP = 10  # Lambda caps infinite retries at 10 when a Kafka mapping has a destination

# Records taken per fetch: bounds how long the loop spends building records before lanes run again.
FETCH_MAX_RECORDS = 2000
ALL_PAUSED_POLL_S = 0.5  # with every partition paused, poll the consumer at least this often


class KafkaMapping:
    info_key = "KafkaBatchInfo"

    def __init__(self, ctx: SourceContext, route: RoutePort, group: str) -> None:
        self.ctx = ctx
        self.route = route
        self.group = group
        self.config = ctx.config
        self.stats = MappingStats(ctx.name, route.function)
        base_dir = config_base_dir(ctx)
        self.base_dir = base_dir
        destination = route.settings.on_error.destination if route.settings.on_error else None
        self.sink = build_sink(
            destination,
            base_dir=base_dir,
            route=route,
            clock=ctx.clock,
            kafka_client=_producer_options(self.config.client_options(base_dir)),
        )
        self.stats.destination = self.sink.name
        self.consumer: Any = None
        self.engine: StreamMapping | None = None
        self._tps: dict[Any, str] = {}  # TopicPartition -> partition name
        self._by_name: dict[str, Any] = {}  # partition name -> TopicPartition
        self._rebalancing = False  # between a revocation and the next assignment: open no partition
        self._pending: dict[Any, int] = {}  # TopicPartition -> next offset to commit
        self._committed: dict[Any, int] = {}
        self._dirty = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._paused: set[Any] = set()  # paused in the consumer (their buffers are full)
        self._full: set[Any] = set()  # buffers full: to be paused once the client holds none of their records
        self._bootstrap = shapes.bootstrap_string(self.config.brokers)
        self._builder = RecordBuilder(
            source_name=ctx.name,
            bootstrap_servers=self._bootstrap,
            event_source_arn=self.config.event_source_arn,
        )
        # Envelopes only where something reads them: a filter, an event-name list, CloudEvents rendering.
        self._native = (
            route.settings.filter is None and route.settings.events is None and route.event_format == "aws"
        )
        self._closed = False

    def settings(self) -> MappingSettings:
        s = MappingSettings.for_route(
            self.route,
            region=self.ctx.region,
            account_id=self.ctx.account_id,
            buffer_records=self.config.max_buffered_records,
        )
        on_error = self.route.settings.on_error
        if s.max_retries == -1 and on_error is not None and on_error.destination is not None:
            s = dataclasses.replace(s, max_retries=DESTINATION_RETRY_CAP)
        return s

    # -- lifecycle ------------------------------------------------------------------------------------

    async def run(self, started: Callable[[], None]) -> None:
        from aiokafka import AIOKafkaConsumer

        options = self.config.consumer_options(self.base_dir)
        if self.config.starting_position == "AT_TIMESTAMP":
            options["auto_offset_reset"] = "none"  # the fetch loop seeks new partitions by timestamp
        self.consumer = AIOKafkaConsumer(group_id=self.group, **options)
        self.stats.bind(self.ctx.metrics, self.ctx.status)
        try:
            async with asyncio.TaskGroup() as tg:
                self.engine = StreamMapping(
                    self.route,
                    self,
                    self.settings(),
                    sink=self.sink,
                    clock=self.ctx.clock,
                    stats=self.stats,
                    tasks=tg,
                )
                self._subscribe()
                await self.consumer.start()
                started()
                tg.create_task(self._commit_loop(), name=f"kafka-commit:{self.group}")
                try:
                    await self._fetch_loop()
                except asyncio.CancelledError:
                    # Stopping: let in-flight batches finish and commit them before the lanes are cancelled.
                    await self.engine.close_all(self.config.revoke_grace_s)
                    raise
        finally:
            await self.aclose()

    def _subscribe(self) -> None:
        from aiokafka.abc import ConsumerRebalanceListener

        owner = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await owner._revoke(revoked)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                owner._rebalancing = False
                for tp in assigned:
                    owner._open(tp)

        if self.config.pattern is not None:
            self.consumer.subscribe(pattern=self.config.pattern, listener=Listener())
        else:
            self.consumer.subscribe(topics=self.config.topic_names(), listener=Listener())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        consumer, self.consumer = self.consumer, None
        try:
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await self._commit(consumer)
                await consumer.stop()
        finally:
            self.stats.unbind()
            await self.sink.aclose()

    # -- fetching ---------------------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        from aiokafka.errors import NoOffsetForPartitionError

        engine = self.engine
        assert engine is not None
        clock, build, envelopes = self.ctx.clock, self._builder.build_all, not self._native
        lag_due = 0.0
        while True:
            try:
                batches, exhausted = await self._fetch()
            except NoOffsetForPartitionError as e:
                await self._seek_to_timestamp(e.args[0])
                continue
            for tp, messages in batches.items():
                name = self._tps.get(tp)
                if name is None:
                    if self._rebalancing:
                        continue  # fetched for a partition being handed over; its next owner re-reads it
                    name = self._open(tp)
                engine.offer(name, build(messages, envelopes=envelopes))
                if engine.room(name) <= 0 and tp not in self._full:
                    self._full.add(tp)
                    self.stats.pauses += 1
            self._pause_full(exhausted)
            now = clock.monotonic()
            if now >= lag_due:
                lag_due = now + 1.0
                self._update_lag()
            await asyncio.sleep(0)  # getmany returns without yielding while records wait: let lanes run

    async def _fetch(self) -> tuple[dict[Any, list[Any]], set[Any]]:
        """The next records of the partitions that are not paused, and the partitions of which the client
        holds nothing more (their prefetched records are all taken).

        Back-pressure: a partition whose buffer is full is paused, so the client stops fetching it, but only
        once the client holds none of its records: pausing drops what the client prefetched for it, which
        would then be fetched again. So a full partition takes at most one more fetch response
        (`max_partition_fetch_bytes`) before it pauses. The client fetches from a broker again only once
        every partition's records were taken; taking them all promptly keeps every partition fetching.
        A paused partition resumes as soon as its buffer has room again. When every partition is paused
        the loop waits for room (the consumer keeps polling: it must, to stay in its group).
        """
        consumer, engine = self.consumer, self.engine
        assert engine is not None
        if self._paused:
            resumed = [tp for tp in self._paused if engine.room(self._tps[tp]) > 0]
            if resumed:
                consumer.resume(*resumed)
                self._paused.difference_update(resumed)
                self._full.difference_update(resumed)
        if self._full:
            self._full = {tp for tp in self._full if tp in self._tps and engine.room(self._tps[tp]) <= 0}
        if self._paused and len(self._paused) == len(self._tps):
            engine.room_made.clear()
            if not any(engine.room(self._tps[tp]) > 0 for tp in self._paused):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(engine.room_made.wait(), ALL_PAUSED_POLL_S)
            timeout_ms = 0  # poll, to stay in the group: it returns records only of a partition just assigned
        else:
            timeout_ms = 20 if self._paused else 500  # notice room in a paused partition soon
        batches = dict(await consumer.getmany(timeout_ms=timeout_ms, max_records=FETCH_MAX_RECORDS))
        return batches, taken_to_end(batches, FETCH_MAX_RECORDS, self._tps)

    def _pause_full(self, exhausted: set[Any]) -> None:
        """Pause the full partitions of which the client holds no more records (see `_fetch`)."""
        if not self._full:
            return
        due = [tp for tp in self._full if tp in exhausted and tp not in self._paused and tp in self._tps]
        if due:
            self.consumer.pause(*due)
            self._paused.update(due)

    def _open(self, tp: Any) -> str:
        """Open an assigned TopicPartition's partition (from the listener, or a fetch that came first)."""
        name = self._tps.get(tp)
        if name is None:
            name = self._tps[tp] = f"{tp.topic}-{tp.partition}"
            self._by_name[name] = tp
        assert self.engine is not None
        self.engine.open(name)
        return name

    async def _seek_to_timestamp(self, tp: Any) -> None:
        stamp = int((self.config.starting_position_timestamp or 0) * 1000)
        found = await self.consumer.offsets_for_times({tp: stamp})
        hit = found.get(tp)
        if hit is None:
            await self.consumer.seek_to_end(tp)
        else:
            self.consumer.seek(tp, hit.offset)

    def _update_lag(self) -> None:
        lag = {}
        for tp, name in self._tps.items():
            try:
                high = self.consumer.highwater(tp)
            except Exception:  # not assigned any more
                continue
            if high is None:
                continue
            done = self._pending.get(tp, self._committed.get(tp))
            if done is None:
                continue
            lag[name] = max(0, high - done)
        self.stats.lag = lag

    # -- StreamKind -------------------------------------------------------------------------------------

    def checkpoint(self, partition: str, last: StreamRecord) -> None:
        tp = self._by_name.get(partition)
        if tp is not None:
            self._pending[tp] = last.position + 1
            self._dirty.set()

    def failed_position(self, identifier: Any, partition: str) -> int | None:
        if isinstance(identifier, dict):
            if identifier.get("partition") != partition:
                return None
            identifier = identifier.get("offset")
        if isinstance(identifier, bool):
            return None
        if isinstance(identifier, int):
            return identifier
        if isinstance(identifier, str) and identifier.strip().isascii() and identifier.strip().isdigit():
            return int(identifier)
        return None

    def batch_info(self, partition: str, records: Sequence[StreamRecord]) -> dict[str, Any]:
        first, last = _fields(records[0]), _fields(records[-1])
        return {
            "bootstrapServers": self._bootstrap,
            "consumerGroupId": self.group,
            "topic": first["topic"],
            "partition": first["partition"],
            "topicPartition": partition,
            "startOffset": first["offset"],
            "endOffset": last["offset"],
            "batchSize": len(records),
            "approximateArrivalOfFirstRecord": first["timestamp"],
            "approximateArrivalOfLastRecord": last["timestamp"],
        }

    def render(self, partition: str, records: Sequence[StreamRecord]) -> bytes | None:
        return self._builder.render(partition, records) if self._native else None

    # -- commits and rebalances -------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        clock, interval = self.ctx.clock, self.config.commit_interval_ms / 1000
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            sent = clock.monotonic()
            try:
                await self._commit(self.consumer)
            except Exception as e:  # rebalance in progress, coordinator moving: keep the offsets, try again
                log.info(
                    "kafka commit failed; will retry",
                    extra={"fields": {"group": self.group, "error": repr(e)}},
                )
                self._dirty.set()
                await clock.sleep(0.2)
                continue
            # What settles meanwhile and within the interval goes out together in the next commit.
            rest = interval - (clock.monotonic() - sent)
            if rest > 0:
                await clock.sleep(rest)

    async def _commit(self, consumer: Any, tps: set[Any] | None = None) -> None:
        """Commit pending offsets of assigned partitions (of `tps` only, when given)."""
        if consumer is None:
            return
        async with self._commit_lock:
            assigned = consumer.assignment()
            offsets = {
                tp: off
                for tp, off in self._pending.items()
                if tp in assigned and (tps is None or tp in tps) and self._committed.get(tp) != off
            }
            if not offsets:
                return
            await consumer.commit(offsets)
            self._committed.update(offsets)

    async def _revoke(self, revoked: Any) -> None:
        """Before a rebalance: finish in-flight batches, commit, forget the partitions."""
        engine = self.engine
        if engine is None:
            return
        self._rebalancing = True
        names = {tp: self._tps[tp] for tp in revoked if tp in self._tps}
        await asyncio.gather(*(engine.close(n, self.config.revoke_grace_s) for n in names.values()))
        try:
            await self._commit(self.consumer, set(names))
        except Exception as e:  # the group moved on already: the next owner re-reads from the last commit
            log.warning(
                "kafka commit on revoke failed", extra={"fields": {"group": self.group, "error": repr(e)}}
            )
        for tp, name in names.items():
            self._tps.pop(tp, None)
            self._by_name.pop(name, None)
            self._pending.pop(tp, None)
            self._committed.pop(tp, None)
            self._paused.discard(tp)
            self._full.discard(tp)
        if names:
            log.info(
                "kafka partitions revoked",
                extra={"fields": {"group": self.group, "partitions": sorted(names.values())}},
            )


def taken_to_end(batches: dict[Any, list[Any]], cap: int, assigned: Iterable[Any]) -> set[Any]:
    """The partitions of which the client holds no more records after `getmany(max_records=cap)` returned
    `batches`. Under the cap it went through every partition; at the cap it took partitions in turn, each
    to its end until the cap was reached: all but the last one returned were taken to their end."""
    if sum(map(len, batches.values())) < cap:
        return set(assigned)
    return set(list(batches)[:-1])


def _fields(record: StreamRecord) -> dict[str, Any]:
    """The record's topic, partition, offset and timestamp, native or enveloped alike."""
    native = record.native
    if native is None:
        return record.envelope.record  # type: ignore[union-attr]
    return {k: getattr(native, k) for k in ("topic", "partition", "offset", "timestamp")}


def _producer_options(client: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in client.items() if k != "bootstrap_servers"}
