"""The durable store of asynchronous events: an SQLite database under state_dir, in WAL mode.

Today's implementation of the `router.core.backends.AsyncQueue` seam (docs/backends.md).

Contract:

* `await put(event, payload)` returns once the event is on disk: the transaction is committed with
  `synchronous=FULL`, which fsyncs the write-ahead log, so the event survives `kill -9` of the router and a
  power cut. Concurrent puts are group-committed (one transaction and one fsync for all the puts waiting at
  that moment), which is what makes a burst of thousands of S3 notifications cheap.
* Every stored event stays until `delete(id)`, which the scheduler calls only after the event's outcome is
  settled (succeeded, or handed to its destination, or dropped). An event being run when the router dies is
  still stored and runs again after the restart: delivery is at-least-once, as Lambda's async queue.
* `update(event)` persists retry bookkeeping (attempts, next attempt time).
* The metadata of every stored event is also kept in memory (`depth`, `oldest`), so scheduling and stats
  never read the disk. Payloads of recently stored events are cached in memory up to `cache_bytes` (a hot
  queue then never reads the disk either); the rest are read back when the event runs (`payload(id)`).

All SQLite work runs on one dedicated thread, so the event loop never blocks on disk and the connection is
never used from two threads. Writes go through one writer task that batches whatever is waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from router.core.backends import QueuedEvent
from router.core.errors import QueueUnavailable
from router.core.transactions import transaction

__all__ = ["DurableQueue", "QueuedEvent"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    not_before REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    system_errors INTEGER NOT NULL DEFAULT 0,
    trace TEXT,
    source TEXT,
    qualifier TEXT
)
"""
COLUMNS = "id, function, enqueued_at, not_before, attempts, system_errors, trace, source, qualifier"

_Op = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]


class DurableQueue:
    """The AsyncQueue over one SQLite file; the events' metadata mirrored in memory."""

    redelivers_updates = False  # an updated event stays with the scheduler that updated it

    def __init__(self, path: Path, *, cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = Path(path)
        self._cache: dict[str, bytes] = {}
        self._cache_limit = cache_bytes
        self._cache_bytes = 0
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._ops: list[_Op] = []
        self._writer: asyncio.Task[None] | None = None
        self._by_function: dict[str, dict[str, QueuedEvent]] = {}  # insertion order = enqueue order
        self.on_stored: Callable[[QueuedEvent], None] | None = None  # called once a put is on disk
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}  # event id -> settled() callers

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def open(self) -> list[QueuedEvent]:
        """Open (or create) the store; return every stored event, oldest first."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-queue")
        try:
            events: list[QueuedEvent] = await self._run(self._open_db)
        except (sqlite3.Error, OSError) as e:
            raise QueueUnavailable(f"cannot open the async queue at {self.path}: {e}") from e
        for event in events:
            self._index(event)
        return events

    def _open_db(self) -> list[QueuedEvent]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        if "qualifier" not in columns:  # a queue written before versions and aliases existed
            db.execute("ALTER TABLE events ADD COLUMN qualifier TEXT")
        self._db = db
        rows = db.execute(f"SELECT {COLUMNS} FROM events ORDER BY enqueued_at, rowid").fetchall()
        return [QueuedEvent(**dict(zip(COLUMNS.split(", "), row, strict=True))) for row in rows]

    async def aclose(self) -> None:
        """Finish pending writes and close. Idempotent."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
        if self._executor is not None:
            if self._db is not None:
                await self._run(self._db.close)
                self._db = None
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    # -- in-memory view -------------------------------------------------------------------------------------

    def _index(self, event: QueuedEvent) -> None:
        self._by_function.setdefault(event.function, {})[event.id] = event

    def _stored(self, event: QueuedEvent, payload: bytes) -> None:
        if self._cache_bytes + len(payload) <= self._cache_limit:
            self._cache[event.id] = payload
            self._cache_bytes += len(payload)
        self._index(event)
        if self.on_stored is not None:
            self.on_stored(event)

    def _unindex(self, event: QueuedEvent) -> None:
        cached = self._cache.pop(event.id, None)
        if cached is not None:
            self._cache_bytes -= len(cached)
        events = self._by_function.get(event.function)
        if events is not None:
            events.pop(event.id, None)
            if not events:
                del self._by_function[event.function]
        for waiter in self._waiters.pop(event.id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def contains(self, event_id: str) -> bool:
        return any(event_id in events for events in self._by_function.values())

    async def settled(self, event_id: str) -> None:
        """Return once the event has left the queue (ran to its end, or went to a destination)."""
        if not self.contains(event_id):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(event_id, []).append(waiter)
        try:
            await waiter
        finally:
            waiters = self._waiters.get(event_id)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[event_id]

    def depth(self, function: str | None = None) -> int:
        if function is None:
            return sum(len(e) for e in self._by_function.values())
        return len(self._by_function.get(function, ()))

    def oldest(self, function: str | None = None) -> float | None:
        """enqueued_at of the oldest stored event (of one function, or of all)."""
        groups = self._by_function.values() if function is None else [self._by_function.get(function, {})]
        # A function's events are kept in enqueue order (retries keep their place): the first is the oldest.
        firsts = [next(iter(g.values())).enqueued_at for g in groups if g]
        return min(firsts) if firsts else None

    def functions(self) -> list[str]:
        return list(self._by_function)

    # -- operations -----------------------------------------------------------------------------------------

    async def put(self, event: QueuedEvent, payload: bytes) -> None:
        row = (
            event.id, event.function, payload, event.enqueued_at, event.not_before,
            event.attempts, event.system_errors, event.trace, event.source, event.qualifier,
        )  # fmt: skip

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO events (id, function, payload, enqueued_at, not_before, attempts, "
                "system_errors, trace, source, qualifier) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

        await self._write(insert, lambda: self._stored(event, payload))

    async def update(self, event: QueuedEvent) -> None:
        values = (event.not_before, event.attempts, event.system_errors, event.id)

        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE events SET not_before = ?, attempts = ?, system_errors = ? WHERE id = ?", values
            )

        await self._write(update)

    async def delete(self, event: QueuedEvent) -> None:
        await self._write(
            lambda db: db.execute("DELETE FROM events WHERE id = ?", (event.id,)),
            lambda: self._unindex(event),
        )

    async def payload(self, event_id: str) -> bytes | None:
        cached = self._cache.get(event_id)
        if cached is not None:
            return cached

        def read(db: sqlite3.Connection) -> bytes | None:
            row = db.execute("SELECT payload FROM events WHERE id = ?", (event_id,)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._run(lambda: read(self._connection()))

    # -- the writer -----------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise QueueUnavailable("the async queue is closed")
        return self._db

    async def _run(self, fn: Callable[[], Any]) -> Any:
        if self._executor is None:
            raise QueueUnavailable("the async queue is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _write(
        self, op: Callable[[sqlite3.Connection], Any], committed: Callable[[], None] | None = None
    ) -> None:
        """Run `op` in the next batch; `committed` runs once it is on disk, even if the caller is gone."""
        if self._db is None:
            raise QueueUnavailable("the async queue is not open")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if committed is not None:
            future.add_done_callback(lambda f: None if f.cancelled() or f.exception() else committed())
        self._ops.append((op, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(), name="router-queue-writer"
            )
        # Shielded: a cancelled caller must not abandon a write another caller's batch depends on.
        await asyncio.shield(future)

    async def _write_loop(self) -> None:
        while self._ops:
            batch, self._ops = self._ops, []
            try:
                await self._run(lambda batch=batch: self._commit(batch))  # type: ignore[misc]
            except Exception as e:
                error = (
                    e
                    if isinstance(e, QueueUnavailable)
                    else QueueUnavailable(f"async queue write failed: {e}")
                )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _commit(self, batch: list[_Op]) -> None:
        with transaction(self._connection(), "BEGIN IMMEDIATE") as db:
            for op, _ in batch:
                op(db)
