"""The durable invocation record: SQLite under state_dir, written off the hot path.

The `router.core.backends.InvocationRecord` the daemon uses by default (`record: {enabled: true}`):
`<state_dir>/record.db` and `record.blobs/`, read by the inspection API, `router tail`, request lookups,
replay, surviving restarts. Its layout (a segment per batch), reads and retention are in
router/record/schema.py.

Contract (beyond the seam's, router/record/base.py):

* Recording (the dispatcher's hooks) appends the invocation's row (a tuple) to a list in memory and
  returns: no I/O, no encoding. A writer task hands what accumulated to the record's own thread every
  `flush_ms`, or as soon as `batch_rows` are waiting; that thread packs the rows into segments and sends
  them to the record's writer process (router/record/writer.py, which owns the connection that writes),
  which writes them as one transaction (WAL, synchronous=NORMAL: a crash of the router loses nothing
  committed, nor what the writer was sent; a power cut may lose the last batches, never corrupt the file).
  The daemon reads on a connection of its own (read-only, on the record's thread).
* Memory stays bounded: while `max_pending` invocations wait to be written (the writer cannot keep up: every
  core busy, the disk stalled), further ones are not recorded; `stats()["dropped"]` counts them, and one
  warning says so.
* Readers see everything recorded before they asked: a read first writes what is pending (on the same
  thread, in order), then queries. `recent` without `limit` returns at most `PAGE` invocations after the
  cursor (the oldest first); ask again after the returned cursor for the next page.
* `seq` continues across restarts (kept in the file even when every row has been pruned).
* Retention runs in the writer at open and every `prune_every_s`: rows older than `retention_s`
  go, then the oldest until the database and its blob files hold at most `max_bytes`.
* Views cut events and results at `max_payload_bytes`; `select` (replay) gives them whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from router.core.backends import AcceptedEvent, Invocation, Recorded, RecordQuery
from router.record import schema
from router.record.base import PAGE, RecordBase
from router.record.writer import WriterClient, WriterError

if TYPE_CHECKING:
    from router.core.results import InvocationResult
    from router.dispatch.stats import Call

log = logging.getLogger(__name__)


class Registry(Protocol):
    """What `bind_metrics` uses of router.metrics.Metrics (the record layer does not import it)."""

    def gauge(self, name: str, doc: str) -> Any: ...
    def counter(self, name: str, doc: str) -> Any: ...
    def add_refresh(self, callback: Callable[[], None]) -> None: ...


T = TypeVar("T")


class SqliteRecord(RecordBase):
    def __init__(
        self,
        path: Path,
        *,
        retention_s: float = 86400.0,
        max_bytes: int = 512 * 1024 * 1024,
        flush_ms: int = 200,
        batch_rows: int = 512,
        max_payload_bytes: int = 256 * 1024,
        log_bytes: int = 4096,
        prune_every_s: float = 60.0,
        max_pending: int = 100_000,
    ) -> None:
        super().__init__(log_bytes=log_bytes)
        self.path = Path(path)
        self.retention_s = retention_s
        self.max_bytes = max_bytes
        self.flush_s = flush_ms / 1000
        self.batch_rows = batch_rows
        self.max_payload_bytes = max_payload_bytes
        self.prune_every_s = prune_every_s
        self._invocations: list[tuple[Any, ...]] = []
        self._accepted: list[AcceptedEvent] = []
        self._links: list[tuple[str, str, float]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # the daemon's, for reading
        self._blobs = schema.Blobs(str(self.path))  # the daemon's, for reading
        self._client = WriterClient(str(self.path))
        self._writer: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self.write_errors = 0
        self.max_pending = max_pending
        self.dropped = 0  # invocations not recorded because max_pending were waiting

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-record")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        seq = await self._run(self._client.open)
        self._db = await self._run(lambda: schema.open_reader(str(self.path)))
        self._seq = max(self._seq, seq)
        await self.prune()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="router-record-writer")

    async def aclose(self) -> None:
        """Write what is pending and close. Idempotent."""
        self.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if self._executor is None:
            return
        with contextlib.suppress(Exception):
            await self.flush()
        db, self._db = self._db, None
        if db is not None:
            await self._run(db.close)
            await self._run(self._blobs.close)
        await self._run(self._client.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    # -- recording (hot path) -----------------------------------------------------------------------------

    def record_result(self, function: str, call: Call, result: InvocationResult) -> None:
        """As RecordBase's, but straight to the row to write (no Invocation struct): about 1.5 us."""
        if self._queue(schema.result_row(self._seq + 1, function, call, result, self.log_bytes)):
            self._seq += 1
            self._wake()

    def _add(self, invocation: Invocation) -> None:
        self._queue(schema.invocation_row(invocation))

    def _queue(self, row: tuple[Any, ...]) -> bool:
        """Append an invocation to write; False (dropped, counted) while max_pending wait."""
        if len(self._invocations) >= self.max_pending:
            if not self.dropped:
                log.warning("record: the writer is %d invocations behind; not recording until it catches up",
                            len(self._invocations))  # fmt: skip
            self.dropped += 1
            return False
        self._invocations.append(row)
        if len(self._invocations) >= self.batch_rows:
            self._full.set()
        return True

    def _accept(self, event: AcceptedEvent) -> None:
        self._accepted.append(event)
        if len(self._accepted) >= self.batch_rows:
            self._full.set()

    def link(self, request_id: str, original: str) -> None:
        self._links.append((request_id, original, time.time()))

    # -- writing ------------------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        last_prune = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_s):
                    await self._full.wait()
            self._full.clear()
            await self._write_once()
            if time.monotonic() - last_prune >= self.prune_every_s:
                last_prune = time.monotonic()
                await self._write_once(prune=True)

    async def _write_once(self, prune: bool = False) -> None:
        """Write what is pending (or prune); a failure loses that batch, is counted and logged."""
        try:
            await (self.prune() if prune else self.flush())
        except (WriterError, sqlite3.Error, OSError) as e:
            self.write_errors += 1
            log.error("record: write failed, batch lost: %s", e)

    async def flush(self) -> None:
        """Write everything recorded so far (one transaction)."""
        if not (self._invocations or self._accepted or self._links):
            return
        invocations, accepted, links = self._invocations, self._accepted, self._links
        self._invocations, self._accepted, self._links = [], [], []
        self._connection()

        def write() -> None:
            events = [schema.event_fields(e) for e in accepted]
            self._client.write(schema.segments(invocations, events), links)

        await self._run(write)

    async def prune(self) -> int:
        self._connection()
        cutoff = time.time() - self.retention_s
        return await self._run(lambda: self._client.prune(cutoff, self.max_bytes))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the record is not open")
        return self._db

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("the record is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:  # closed: nothing more to read (shutdown)
            raise RuntimeError("the record is closed")
        await self.flush()
        db = self._connection()
        return await self._run(lambda: fn(db))

    # -- reading ------------------------------------------------------------------------------------------

    async def functions(self) -> dict[str, int]:
        return await self._read(schema.functions)

    async def recent(
        self,
        function: str | None = None,
        *,
        after: int = 0,
        limit: int | None = None,
        source: str | None = None,
    ) -> list[Invocation]:
        newest = limit is not None and limit >= 0
        count = limit if limit is not None and newest else PAGE

        def read(db: sqlite3.Connection) -> list[Invocation]:
            return schema.recent(
                db, self._blobs, function=function, source=source, after=after, limit=count,
                newest=newest, payload_limit=self.max_payload_bytes,
            )  # fmt: skip

        return await self._read(read)

    async def request(self, request_id: str) -> tuple[list[AcceptedEvent], list[Invocation]]:
        limit = self.max_payload_bytes
        return await self._read(lambda db: schema.request(db, self._blobs, request_id, limit))

    async def select(self, query: RecordQuery) -> list[Recorded]:
        def read(db: sqlite3.Connection) -> list[Recorded]:
            return [Recorded(invocation=i, accepted=a) for i, a in schema.select(db, self._blobs, query)]

        return await self._read(read)

    def bind_metrics(self, metrics: Registry) -> None:
        """Counters and a gauge read from the record before every /metrics render."""
        pending = metrics.gauge(
            "router_record_pending", "Invocations recorded and not yet sent to the writer"
        )
        dropped = metrics.counter(
            "router_record_dropped_total", "Invocations not recorded: max_pending were waiting"
        )
        failed = metrics.counter(
            "router_record_write_errors_total", "Batches the record's writer could not write (lost)"
        )
        shown = {"dropped": 0, "failed": 0}

        def refresh() -> None:
            pending.set(len(self._invocations))
            dropped.inc(self.dropped - shown["dropped"])
            failed.inc(self.write_errors - shown["failed"])
            shown.update(dropped=self.dropped, failed=self.write_errors)

        metrics.add_refresh(refresh)

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.path), "pending": len(self._invocations), "write_errors": self.write_errors,
                "dropped": self.dropped}  # fmt: skip
