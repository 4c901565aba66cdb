"""Failure stores: reading back what a failure destination holds, and taking entries out of it (redrive).

A failure destination (a function's `async.on_failure`, a stream route's `on_error.destination`) receives
Lambda's invocation records (router/dispatch/destinations.py, router/sources/stream/failure.py). A
`FailureStore` is the reading side of one destination, per kind:

* `await count()`: how many entries it holds (None when it cannot tell);
* `await newest(limit)`: the newest `limit` entries, oldest first, each a `FailureEntry` (an id, the decoded
  record, or the error that made it unreadable);
* a redrive: `await take()` snapshots the entries present now (each is then handled at most once per
  redrive, whatever arrives meanwhile); `await remove(entry)` once it was sent back through its function
  and succeeded; `await keep(entry)` when it failed again (it stays, for the next redrive); `await aclose()`
  at the end settles what was handled (an entry neither removed nor kept stays).

Kinds: `directory` (one JSON file per entry; remove deletes the file) and `kafka` (a topic; the store reads
with the consumer group `router-redrive-<topic>` from its committed offset to the end offsets taken at the
start; remove commits past the entry; keep produces the entry again at the end of the topic, then commits
past it, so it is read by the next redrive and not twice by this one). A kind that cannot be read back
(`function`: the records went into another function's queue) has no store. A new kind (SQS: receive,
delete on remove, let the visibility timeout lapse on keep) registers its factory in `STORES`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import msgspec

from router.config import Destination

GROUP_PREFIX = "router-redrive-"
REDRIVE_HEADER = "x-router-redrive"
_decode = msgspec.json.Decoder().decode


class FailureEntry(msgspec.Struct, kw_only=True):
    id: str  # the file name; "partition:offset" in a topic
    record: Any = None
    error: str | None = None
    handle: Any = None  # the store's own reference (not serialised)


class FailureStore(Protocol):
    kind: str
    target: str

    async def count(self) -> int | None: ...

    async def newest(self, limit: int) -> list[FailureEntry]: ...

    async def take(self) -> list[FailureEntry]: ...

    async def remove(self, entry: FailureEntry) -> None: ...

    async def keep(self, entry: FailureEntry) -> None: ...

    async def aclose(self) -> None: ...


def _parse(entry_id: str, data: bytes, handle: Any = None) -> FailureEntry:
    try:
        return FailureEntry(id=entry_id, record=_decode(data), handle=handle)
    except msgspec.DecodeError as e:
        return FailureEntry(id=entry_id, error=f"not JSON: {e}", handle=handle)


# -- directory ------------------------------------------------------------------------------------------


class DirectoryStore:
    kind = "directory"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.target = str(folder)

    def _files(self) -> list[Path]:
        try:
            files = [p for p in self.folder.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
        except FileNotFoundError:
            return []
        files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        return files

    def _read(self, files: list[Path]) -> list[FailureEntry]:
        entries = []
        for path in files:
            try:
                entries.append(_parse(path.name, path.read_bytes(), path))
            except OSError as e:
                entries.append(FailureEntry(id=path.name, error=str(e), handle=path))
        return entries

    async def count(self) -> int:
        return len(await asyncio.to_thread(self._files))

    async def newest(self, limit: int) -> list[FailureEntry]:
        def read() -> list[FailureEntry]:
            files = self._files()
            return self._read(files[max(0, len(files) - limit) :])

        return await asyncio.to_thread(read)

    async def take(self) -> list[FailureEntry]:
        return await asyncio.to_thread(lambda: self._read(self._files()))

    async def remove(self, entry: FailureEntry) -> None:
        await asyncio.to_thread(lambda: Path(entry.handle).unlink(missing_ok=True))

    async def keep(self, entry: FailureEntry) -> None:
        return None

    async def aclose(self) -> None:
        return None


# -- kafka ----------------------------------------------------------------------------------------------


class KafkaStore:
    """A topic of failure records, read with its own consumer group (aiokafka, imported when used)."""

    kind = "kafka"

    def __init__(self, brokers: list[str], topic: str, client: dict[str, Any] | None = None) -> None:
        self.brokers = brokers
        self.topic = topic
        self.target = topic
        self.group = GROUP_PREFIX + topic
        self.client = client or {}
        self._consumer: Any = None
        self._producer: Any = None  # made by the first keep of a redrive
        self._handled: dict[Any, set[int]] = {}  # partition -> offsets handled in this redrive
        self._start: dict[Any, int] = {}

    async def _open(self) -> tuple[Any, dict[Any, int], dict[Any, int]]:
        """A consumer assigned every partition; (consumer, start offsets, end offsets)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.brokers, group_id=self.group, enable_auto_commit=False,
            auto_offset_reset="earliest", **self.client,
        )  # fmt: skip
        try:
            await consumer.start()
            if self.topic not in await consumer.topics():  # fetches the metadata
                partitions: set[int] = set()
            else:
                partitions = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps) if tps else {}
            firsts = await consumer.beginning_offsets(tps) if tps else {}
            starts = {}
            for tp in tps:
                committed = await consumer.committed(tp)
                starts[tp] = max(committed if committed is not None else 0, firsts.get(tp, 0))
        except BaseException:
            await consumer.stop()
            raise
        return consumer, starts, ends

    async def _read(self, consumer: Any, starts: dict[Any, int], ends: dict[Any, int]) -> list[FailureEntry]:
        entries: list[FailureEntry] = []
        for tp, start in starts.items():
            end = ends.get(tp, 0)
            if start >= end:
                continue
            consumer.seek(tp, start)
            position = start
            while position < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=min(500, end - position))
                records = batch.get(tp, [])
                if not records:
                    break
                for r in records:
                    if r.offset < end:
                        entries.append(_parse(f"{tp.partition}:{r.offset}", r.value or b"", (tp, r)))
                    position = r.offset + 1
        return entries

    async def count(self) -> int | None:
        consumer, starts, ends = await self._open()
        try:
            return sum(max(0, ends.get(tp, 0) - start) for tp, start in starts.items())
        finally:
            await consumer.stop()

    async def newest(self, limit: int) -> list[FailureEntry]:
        consumer, starts, ends = await self._open()
        try:
            newest = {tp: max(start, ends.get(tp, 0) - limit) for tp, start in starts.items()}
            entries = await self._read(consumer, newest, ends)
        finally:
            await consumer.stop()
        entries.sort(key=lambda e: e.handle[1].timestamp)
        return entries[max(0, len(entries) - limit) :]

    async def take(self) -> list[FailureEntry]:
        self._consumer, self._start, ends = await self._open()
        self._handled = {tp: set() for tp in self._start}
        return await self._read(self._consumer, self._start, ends)

    async def remove(self, entry: FailureEntry) -> None:
        tp, record = entry.handle
        self._handled[tp].add(record.offset)

    async def keep(self, entry: FailureEntry) -> None:
        tp, record = entry.handle
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(bootstrap_servers=self.brokers, acks="all", **self.client)
            await producer.start()
            self._producer = producer
        headers = [*(record.headers or ()), (REDRIVE_HEADER, b"kept")]
        await self._producer.send_and_wait(self.topic, record.value, key=record.key, headers=headers)
        self._handled[tp].add(record.offset)

    async def aclose(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            commits = {}
            for tp, start in self._start.items():
                offset, handled = start, self._handled.get(tp, set())
                while offset in handled:  # only past a contiguous run of handled entries
                    offset += 1
                if offset > start:
                    commits[tp] = offset
            if commits:
                await consumer.commit(commits)
        finally:
            await consumer.stop()


# -- the registry ---------------------------------------------------------------------------------------

StoreFactory = Callable[[Destination, Callable[[str], Path]], "FailureStore | None"]


def _directory(d: Destination, resolve: Callable[[str], Path]) -> FailureStore | None:
    return DirectoryStore(resolve(d.directory).resolve()) if d.directory is not None else None


def _kafka(d: Destination, resolve: Callable[[str], Path]) -> FailureStore | None:
    return KafkaStore(d.kafka.brokers, d.kafka.topic) if d.kafka is not None else None


STORES: dict[str, StoreFactory] = {"directory": _directory, "kafka": _kafka}


def open_store(destination: Destination, resolve: Callable[[str], Path]) -> FailureStore | None:
    """The store of a destination, or None when its kind cannot be read back."""
    for factory in STORES.values():
        store = factory(destination, resolve)
        if store is not None:
            return store
    return None
