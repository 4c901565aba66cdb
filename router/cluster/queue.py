"""The cluster's async queue on Kafka: the `router.core.backends.AsyncQueue` every node of a cluster shares.

Topics `<prefix>.<cluster>.async` (fresh events) and `<prefix>.<cluster>.retry` (events waiting for a retry),
created with `cluster.kafka.partitions` partitions when missing, consumed by every node in one consumer group
`<prefix>.<cluster>`. Contract (docs/cluster.md):

* `put(event, payload)` returns once the broker has the record with acks=all (every in-sync replica), keyed
  by the event id (events spread over partitions, so over nodes). The node that accepted an event is not the
  one that runs it: whichever node the group gives the partition consumes it and hands it to its scheduler
  (`on_stored`). QueueUnavailable: the broker did not take it (the caller answers no 202).
* The consuming node holds each event in memory (`depth`, `oldest`, `functions`, `payload` read it) until
  `delete(event)`, which comes once its outcome is settled; then its offset settles, and offsets are
  committed up to the lowest offset not settled (router/cluster/offsets.py) at most every
  `commit_interval_ms`. A node killed mid-call commits nothing more: its partitions go to other nodes after
  the group's session timeout, which consume from the last commit and run those events again
  (at-least-once; the duplicates are the events in flight on the dead node and those it settled above the
  lowest one in flight on the same partition).
* Retries do not block a partition: `update(event)` (a retry's bookkeeping) produces the event, with its
  attempts and `not_before`, to the retry topic and then settles the original offset; whichever node
  consumes the retry record holds it, in memory, until it is due (the scheduler's delay), while the
  partition keeps being read. The queue therefore hands updated events back itself
  (`redelivers_updates = True`: the scheduler does not re-add them). If the retry record cannot be
  produced, the event stays here, unsettled, and is handed back at once through `on_stored`.
* Rebalance: the offsets settled on revoked partitions are committed before the group moves them; events
  held from partitions this node no longer has are forgotten (`payload` gives None, so the scheduler skips
  them; a call in flight finishes, and the new owner runs the event again). An event this node already
  holds or settled recently is skipped when it is consumed again.
* Back-pressure: past `max_held` events held, fetching pauses until the scheduler has settled some.
* `settled(id)` waits for an event this node holds; events held elsewhere count as settled (a schedule's
  `overlap: false` is per node in a cluster, docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

from router.cluster.offsets import PartitionOffsets
from router.config.cluster import ClusterKafka
from router.core.backends import QueuedEvent
from router.core.errors import QueueUnavailable
from router.dispatch.tasks import TaskSet

log = logging.getLogger("router.cluster.queue")

RECENT_SETTLED = 100_000  # ids settled here, remembered to skip a copy consumed again after a rebalance


class QueueRecord(msgspec.Struct, kw_only=True):
    event: QueuedEvent
    payload: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(QueueRecord)

TP = Any  # aiokafka.TopicPartition


class KafkaQueue:
    redelivers_updates = True

    def __init__(self, settings: ClusterKafka, cluster: str, *, max_held: int = 10_000) -> None:
        self.settings = settings
        base = f"{settings.topic_prefix}.{cluster}"
        self.fresh_topic, self.retry_topic, self.group = f"{base}.async", f"{base}.retry", base
        self.max_held = max_held
        self.on_stored: Callable[[QueuedEvent], None] | None = None
        self.joined = asyncio.Event()  # the first assignment came: this node is in the group
        self._held: dict[str, dict[str, QueuedEvent]] = {}  # function -> id -> event (consumption order)
        self._payloads: dict[str, bytes] = {}
        self._where: dict[str, tuple[TP, int]] = {}  # event id -> (partition, offset)
        self._offsets: dict[TP, PartitionOffsets] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._producer: Any = None
        self._consumer: Any = None
        self._tasks = TaskSet("cluster queue")
        self._commit_wake = asyncio.Event()
        self._room = asyncio.Event()
        self._paused = False

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._producer is not None

    async def open(self) -> list[QueuedEvent]:
        """Start the producer and the consumer; events come through `on_stored` as they are consumed."""
        from aiokafka.errors import KafkaError

        try:
            await self._create_topics()
            self._producer = await self._start_producer()
            self._consumer = await self._start_consumer()
        except (TimeoutError, KafkaError, OSError) as e:
            await self._stop_clients()
            raise QueueUnavailable(f"cannot open the cluster's async queue on Kafka: {e!r}") from e
        self._tasks.spawn(self._fetch_loop(), name="cluster queue: fetch")
        self._tasks.spawn(self._commit_loop(), name="cluster queue: commit")
        return []

    async def _create_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        admin = AIOKafkaAdminClient(**self.settings.client_options())
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [t for t in (self.fresh_topic, self.retry_topic) if t not in existing]
            if wanted:
                s = self.settings
                topics = [
                    NewTopic(t, num_partitions=s.partitions, replication_factor=s.replication_factor)
                    for t in wanted
                ]
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(topics)
        finally:
            await admin.close()

    async def _start_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer

        # acks=all: a put is answered once every in-sync replica has it. No idempotent producer (tansu has
        # none): a retried send may store a record twice, which the at-least-once consumer tolerates.
        producer = AIOKafkaProducer(**self.settings.client_options(), acks="all", enable_idempotence=False)
        await producer.start()
        return producer

    async def _start_consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.abc import ConsumerRebalanceListener

        s = self.settings
        consumer = AIOKafkaConsumer(
            **s.client_options(),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group reads what was put before any node consumed
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            rebalance_timeout_ms=s.rebalance_timeout_ms or s.session_timeout_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )
        owner = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await owner._commit(list(revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                owner._assigned(set(assigned))

        consumer.subscribe(topics=[self.fresh_topic, self.retry_topic], listener=Listener())
        await consumer.start()
        return consumer

    async def aclose(self) -> None:
        """Stop consuming, commit what settled, leave the group (its partitions move at once). Idempotent."""
        await self._tasks.aclose()
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._commit(list(self._offsets))
        await self._stop_clients()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _stop_clients(self) -> None:
        consumer, producer, self._consumer, self._producer = self._consumer, self._producer, None, None
        for client in (consumer, producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    # -- the AsyncQueue operations --------------------------------------------------------------------------

    async def put(self, event: QueuedEvent, payload: bytes) -> None:
        await self._produce(self.fresh_topic, event, payload)

    async def update(self, event: QueuedEvent) -> None:
        """The event waits for a retry: to the retry topic, then its current offset settles."""
        where = self._where.pop(event.id, None)
        if where is None:
            return  # forgotten (its partition moved): the new owner runs it
        payload = self._payloads.pop(event.id)
        self._unhold(event)
        try:
            await self._produce(self.retry_topic, event, payload)
        except QueueUnavailable as e:
            log.warning(
                "%s: async event %s stays on this node for its retry: %s", event.function, event.id, e
            )
            self._hold(event, payload, where)
            if self.on_stored is not None:
                self.on_stored(event)
            return
        self._settle(where)

    async def delete(self, event: QueuedEvent) -> None:
        where = self._where.pop(event.id, None)
        self._payloads.pop(event.id, None)
        self._unhold(event)
        self._remember(event.id)
        self._wake_waiters(event.id)
        if where is not None:
            self._settle(where)

    async def payload(self, event_id: str) -> bytes | None:
        return self._payloads.get(event_id)

    async def settled(self, event_id: str) -> None:
        if event_id not in self._where:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(event_id, []).append(waiter)
        await waiter

    def depth(self, function: str | None = None) -> int:
        if function is None:
            return len(self._where)
        return len(self._held.get(function, ()))

    def oldest(self, function: str | None = None) -> float | None:
        groups = self._held.values() if function is None else [self._held.get(function, {})]
        ages = [e.enqueued_at for g in groups for e in g.values()]
        return min(ages) if ages else None

    def functions(self) -> list[str]:
        return list(self._held)

    # -- producing ------------------------------------------------------------------------------------------

    async def _produce(self, topic: str, event: QueuedEvent, payload: bytes) -> None:
        from aiokafka.errors import KafkaError

        if self._producer is None:
            raise QueueUnavailable("the cluster's async queue is not open")
        value = _encoder.encode(QueueRecord(event=event, payload=payload))
        try:
            await self._producer.send_and_wait(topic, value, key=event.id.encode())
        except (TimeoutError, KafkaError, OSError) as e:
            raise QueueUnavailable(f"the cluster's async queue (Kafka) did not take the event: {e!r}") from e

    # -- consuming ------------------------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        from aiokafka.errors import KafkaError

        while True:
            await self._wait_room()
            try:
                batch = await self._consumer.getmany(timeout_ms=1000, max_records=500)
            except KafkaError as e:
                log.warning("cluster queue: fetching failed, retrying: %r", e)
                await asyncio.sleep(1.0)
                continue
            for tp, messages in batch.items():
                offsets = self._offsets.get(tp)
                if offsets is None:
                    continue  # revoked while fetched
                for message in messages:
                    self._take(tp, offsets, message)

    async def _wait_room(self) -> None:
        if len(self._where) < self.max_held:
            return
        self._room.clear()
        self._consumer.pause(*self._offsets)
        self._paused = True
        log.info("cluster queue: %d events held, fetching paused", len(self._where))
        await self._room.wait()
        self._consumer.resume(*self._offsets)
        self._paused = False

    def _take(self, tp: TP, offsets: PartitionOffsets, message: Any) -> None:
        try:
            record = _decoder.decode(message.value)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as e:
            log.error(
                "cluster queue: %s[%d]@%d is no queued event, skipped: %s",
                tp.topic,
                tp.partition,
                message.offset,
                e,
            )
            offsets.skip(message.offset)
            return
        event = record.event
        if event.id in self._where or event.id in self._recent:
            offsets.skip(
                message.offset
            )  # held here already, or settled here: consumed again after a rebalance
            return
        offsets.hold(message.offset)
        self._hold(event, record.payload, (tp, message.offset))
        if self.on_stored is not None:
            self.on_stored(event)

    def _assigned(self, assigned: set[TP]) -> None:
        for tp in set(self._offsets) - assigned:
            self._drop(tp)
        for tp in assigned - set(self._offsets):
            self._offsets[tp] = PartitionOffsets()
        if self._paused:
            self._consumer.pause(*assigned)
        log.info(
            "cluster queue: partitions assigned: %s",
            ", ".join(sorted(f"{t.topic}[{t.partition}]" for t in assigned)) or "none",
        )
        self.joined.set()

    def _drop(self, tp: TP) -> None:
        """The partition went to another node: forget the events held from it (it runs them again)."""
        del self._offsets[tp]
        gone = [event_id for event_id, (t, _) in self._where.items() if t == tp]
        for event_id in gone:
            del self._where[event_id]
            self._payloads.pop(event_id, None)
            for events in self._held.values():
                events.pop(event_id, None)
            self._wake_waiters(event_id)
        self._held = {f: e for f, e in self._held.items() if e}
        if gone:
            log.info(
                "cluster queue: %s[%d] moved to another node; %d held event(s) left to it",
                tp.topic,
                tp.partition,
                len(gone),
            )

    # -- bookkeeping ----------------------------------------------------------------------------------------

    def _hold(self, event: QueuedEvent, payload: bytes, where: tuple[TP, int]) -> None:
        self._where[event.id] = where
        self._payloads[event.id] = payload
        self._held.setdefault(event.function, {})[event.id] = event

    def _unhold(self, event: QueuedEvent) -> None:
        events = self._held.get(event.function)
        if events is not None:
            events.pop(event.id, None)
            if not events:
                del self._held[event.function]
        if len(self._where) < self.max_held:
            self._room.set()

    def _settle(self, where: tuple[TP, int]) -> None:
        tp, offset = where
        offsets = self._offsets.get(tp)
        if offsets is not None:
            offsets.settle(offset)
            self._commit_wake.set()

    def _remember(self, event_id: str) -> None:
        self._recent[event_id] = None
        if len(self._recent) > RECENT_SETTLED:
            self._recent.popitem(last=False)

    def _wake_waiters(self, event_id: str) -> None:
        for waiter in self._waiters.pop(event_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    # -- committing -----------------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        interval = self.settings.commit_interval_ms / 1000
        while True:
            await self._commit_wake.wait()
            self._commit_wake.clear()
            await self._commit(list(self._offsets))
            if interval:
                await asyncio.sleep(interval)

    async def _commit(self, tps: list[TP]) -> None:
        from aiokafka.errors import KafkaError

        points = {
            tp: o.commit_point() for tp in tps if (o := self._offsets.get(tp)) is not None and o.dirty()
        }
        if not points or self._consumer is None:
            return
        try:
            await self._consumer.commit(points)
        except (TimeoutError, KafkaError) as e:  # a rebalance under way: the next owner reads from before
            log.info("cluster queue: commit not taken (%r); those events may run again", e)
            return
        for tp, point in points.items():
            offsets = self._offsets.get(tp)
            if offsets is not None:
                offsets.committed = max(offsets.committed, point)

    # -- visibility -----------------------------------------------------------------------------------------

    def partitions(self) -> dict[str, dict[str, int]]:
        """This node's partitions: held events, position, last commit, and the partition's end (lag)."""
        out = {}
        for tp, offsets in sorted(self._offsets.items(), key=lambda i: (i[0].topic, i[0].partition)):
            end = self._consumer.highwater(tp) if self._consumer is not None else None
            out[f"{tp.topic}[{tp.partition}]"] = {
                "held": offsets.held,
                "position": offsets.position,
                "committed": offsets.committed,
                "lag": max(0, (end or 0) - offsets.committed) if end is not None else 0,
            }
        return out

    async def backlog(self) -> dict[str, int]:
        """Records not committed yet, per topic, over every partition of the group (any node's)."""
        from aiokafka import TopicPartition

        consumer = self._consumer
        if consumer is None:
            return {}
        out: dict[str, int] = {}
        for topic in (self.fresh_topic, self.retry_topic):
            parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            if not tps:
                continue
            ends = await consumer.end_offsets(tps)
            total = 0
            for tp in tps:
                committed = await consumer.committed(tp)
                total += max(0, ends.get(tp, 0) - (committed or 0))
            out[topic] = total
        return out
