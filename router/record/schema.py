"""The durable record's layout: segments indexed in SQLite, their rows in blob files, reads, and retention.

Writing (`open_db`, `write_segments`, `prune`) runs in the record's writer process
(router/record/writer.py), on its one connection; reading runs on the daemon's record thread on a
read-only connection (`open_reader`, router/record/sqlite.py). An invocation's row is built when it is
recorded (`result_row`, `invocation_row`: a tuple, about 1.5 us, which the GC stops tracking, unlike the
call and its result); the segments of a batch are built on the record's thread (`segments`).

A **segment** holds a batch: up to `SEGMENT_ROWS` invocations and the events accepted in the same batch,
each kind as one msgpack blob (a list of rows). The blobs are appended to a blob file (`Blobs`:
`<record>.blobs/<n>`, cut every `FILE_BYTES` or a sixteenth of max_bytes); the segment's row in the
`segments` table says where they are (`file`, `offset`, `invocation_bytes`, `accepted_bytes`) and holds the
columns a read uses to find the segments it needs without reading their blobs:

* `seq_lo`, `seq_hi`: the seq range of its invocations (the cursor; NULL when it holds none);
* `time_lo`, `time_hi`: the range of its invocations' start times and events' times;
* `invocations`, `accepted`, `failed`: how many invocations, accepted events, and invocations that did not
  succeed it holds; `counts`: invocations per function (JSON);
* `functions`, `sources`: the function and source names in it, each between two `SEP`s, found with
  `instr`;
* `request_ids`: the request ids in it, each between two newlines (a request id is found with `instr`,
  a byte search SQLite runs without decoding anything).

Reads select segments on those columns (a superset) and filter the decoded rows exactly. Why segments: a
row per invocation cost the writer 13 us of CPU per call (8 us for the table alone, the rest for its
indexes and the request ids' index), which on a 2-core machine already busy with the client, the router
and its instances cost about 8% of the calls per second (docs/record.md). A segment costs one insert per
batch, its bytes, and nothing per call. Why blob files: SQLite spent about 115 us of CPU per 30 KB blob (a
Kafka batch's event) with 4 KB pages and 80 with 64 KB ones (each page framed and checksummed in its log,
and copied again at the checkpoint); an append to a file, about 20. The writer appends a batch's blobs
before it commits their rows: a row never points at bytes not written (a crash leaves at most a tail no row
points to; a power cut may lose bytes the file system had not written, and such a segment reads as empty).

Other tables: `replays` (request id -> the request id it replayed), `meta` (the latest seq: the cursor
survives the retention of every segment).

Retention (`prune`): what is older than the retention goes (a segment wholly older is deleted; one that
straddles the cutoff is written again without its older rows); then, while the database and the blob
files hold more than `max_bytes`, the oldest blob file with its segments. Blob files no segment points
into are deleted; freed pages go back to the file system (auto_vacuum=INCREMENTAL). A record of the earlier
layout (a row per invocation and per event) is moved into segments when it is opened (`_migrate`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeAlias

import msgspec

from router.core.backends import AcceptedEvent, Invocation, RecordQuery
from router.core.transactions import transaction
from router.shapes.positions import position

if TYPE_CHECKING:  # not imported at run time: the writer process starts faster without the dispatcher
    from router.core.results import InvocationResult
    from router.dispatch.stats import Call

Row: TypeAlias = "Sequence[Any]"

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    seq_lo INTEGER,
    seq_hi INTEGER,
    time_lo REAL NOT NULL,
    time_hi REAL NOT NULL,
    invocations INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    counts TEXT NOT NULL,
    functions TEXT NOT NULL,
    sources TEXT NOT NULL,
    request_ids BLOB NOT NULL,
    file INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    invocation_bytes INTEGER NOT NULL,
    accepted_bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_seq ON segments (seq_hi) WHERE seq_hi IS NOT NULL;
CREATE INDEX IF NOT EXISTS segments_time_hi ON segments (time_hi);
CREATE TABLE IF NOT EXISTS replays (request_id TEXT PRIMARY KEY, original TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS replays_time ON replays (time);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# An invocation row: the fields of router.core.backends.Invocation but replay_of (in `replays`), in order.
FIELDS = (
    "seq", "function", "request_id", "source", "invocation_type", "attempt", "time", "duration_ms",
    "billed_ms", "init_ms", "memory_mb", "max_memory_mb", "outcome", "error_type", "cold", "trace", "fault",
    "event", "event_size", "result", "result_size", "log",
)  # fmt: skip
SEQ, FUNCTION, REQUEST_ID, SOURCE, TIME, OUTCOME, EVENT_SIZE, RESULT_SIZE = 0, 1, 2, 3, 6, 12, 18, 20
# An accepted event's row.
EVENT_FIELDS = ("request_id", "source", "function", "time", "mode", "trace", "position", "fault")
SEGMENT_COLUMNS = (
    "seq_lo", "seq_hi", "time_lo", "time_hi", "invocations", "accepted", "failed", "counts", "functions",
    "sources", "request_ids", "invocation_rows", "accepted_rows",
)  # fmt: skip
# What the table holds of a segment: its columns but the two blobs, then where the blobs are.
STORED_COLUMNS = (*SEGMENT_COLUMNS[:-2], "file", "offset", "invocation_bytes", "accepted_bytes")
SEP = "\x1f"  # between the names of `functions` and `sources`
SEGMENT_ROWS = 256  # invocations per segment at most
SEGMENT_BYTES = 8 * 1024 * 1024  # a segment is cut once its events and results reach this
CACHE_KIB = 16384
PAGE_BYTES = 65536  # a segment's blobs in few pages: 40% less CPU per byte written than SQLite's 4 KB default
MMAP_BYTES = 256 * 1024 * 1024
_INSERT = f"INSERT INTO segments ({', '.join(STORED_COLUMNS)}) VALUES ({', '.join('?' * 15)})"
FILE_BYTES = 64 * 1024 * 1024  # a blob file is cut at this, or at a sixteenth of max_bytes when less
MIN_FILE_BYTES = 256 * 1024
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode
_json = msgspec.json.Decoder().decode


def open_db(path: str, blobs: Blobs) -> tuple[sqlite3.Connection, int]:
    """Open (or create) the record; returns the connection and the latest seq. `blobs` (opened for
    appending) gets the blobs of a record of the earlier layout."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute(f"PRAGMA page_size={PAGE_BYTES}")  # this and the next: on a new file only, before the tables
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last batches, never corrupt
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    db.executescript(SCHEMA)
    _migrate(db, blobs)
    row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    latest = db.execute("SELECT MAX(seq_hi) FROM segments").fetchone()[0] or 0
    return db, max(latest, row[0] if row else 0)


def open_reader(path: str) -> sqlite3.Connection:
    """A read-only connection to a record the writer opened (router/record/writer.py)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA query_only=ON")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return db


class Blobs:
    """A record's blob files, `<record>.blobs/<n>`: the writer appends to the newest (`open_for_append`,
    `append`), cutting a new one every `file_bytes`; the daemon reads (`read`, `None` for what is gone: a
    file pruned meanwhile, or bytes a power cut lost). Retention deletes whole files once no segment points
    into them (`remove_unreferenced`)."""

    def __init__(self, path: str) -> None:
        self.folder = Path(path).with_suffix(".blobs")
        self.file_bytes = FILE_BYTES
        self.current = 0
        self._out: BinaryIO | None = None
        self._size = 0
        self._fds: dict[int, int] = {}  # the reader's open files

    def open_for_append(self) -> None:
        """Start a new file after the newest there is (a crash may have left the last one with a tail no
        segment points to)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.current = max(self.numbers(), default=0)
        self.rotate()

    def rotate(self) -> None:
        if self._out is not None:
            self._out.close()
        self.current += 1
        self._out = open(self.folder / f"{self.current:08d}", "ab", buffering=0)
        self._size = 0

    def append(self, data: bytes) -> tuple[int, int]:
        """Write `data` (one system call) at the end of the current file; returns (file, offset)."""
        if self._out is None:
            raise RuntimeError("the blob files are not open for appending")
        if self._size and self._size + len(data) > self.file_bytes:
            self.rotate()
        offset = self._size
        self._out.write(data)
        self._size += len(data)
        return self.current, offset

    def numbers(self) -> list[int]:
        try:
            return sorted(int(p.name) for p in self.folder.iterdir() if p.name.isdigit())
        except FileNotFoundError:
            return []

    def total_bytes(self) -> int:
        total = 0
        for n in self.numbers():
            with contextlib.suppress(FileNotFoundError):
                total += (self.folder / f"{n:08d}").stat().st_size
        return total

    def remove_unreferenced(self, db: sqlite3.Connection) -> None:
        referenced = {r[0] for r in db.execute("SELECT DISTINCT file FROM segments")}
        for n in self.numbers():
            if n not in referenced and n != self.current:
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / f"{n:08d}").unlink()

    def read(self, file: int, offset: int, length: int) -> bytes | None:
        if not length:
            return b""
        fd = self._fds.get(file)
        if fd is None:
            if len(self._fds) >= 64:
                self.close()
            try:
                fd = self._fds[file] = os.open(self.folder / f"{file:08d}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
        data = os.pread(fd, length, offset)
        return data if len(data) == length else None

    def rows(self, file: int, offset: int, length: int) -> list[Row]:
        """The rows of a blob; none when it is gone or unreadable (a power cut)."""
        data = self.read(file, offset, length)
        if data is None:
            return []
        try:
            return list(_unpack(data))
        except msgspec.DecodeError:
            return []

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._out is not None:
            self._out.close()
            self._out = None


# -- building (the daemon's record thread) -------------------------------------------------------------------


def event_fields(e: AcceptedEvent) -> tuple[Any, ...]:
    """An accepted event's row: EVENT_FIELDS, then the event."""
    return (e.request_id, e.source, e.function, e.time, e.mode, e.trace, e.position, e.fault, e.payload)


def result_row(
    seq: int, function: str, call: Call, result: InvocationResult, log_bytes: int
) -> tuple[Any, ...]:
    """The row of a finished call (router/record/sqlite.py builds it when the call is recorded)."""
    r, c = result, call
    failed = r.function_error is not None
    outcome, error_type = ("error", r.error_type or r.function_error) if failed else ("success", None)
    log = r.log[-log_bytes:] if log_bytes else b""
    return (
        seq, function, r.request_id, c.source, c.invocation_type, c.attempt, c.started_at, r.duration_ms,
        r.billed_ms, r.init_ms, r.memory_mb, r.max_memory_mb, outcome, error_type, int(r.cold), c.trace_id,
        r.fault, c.payload, len(c.payload), r.payload, len(r.payload), log,
    )  # fmt: skip


def invocation_row(i: Invocation) -> tuple[Any, ...]:
    return (
        i.seq, i.function, i.request_id, i.source, i.invocation_type, i.attempt, i.time, i.duration_ms,
        i.billed_ms, i.init_ms, i.memory_mb, i.max_memory_mb, i.outcome, i.error_type, int(i.cold), i.trace,
        i.fault, i.event, i.event_size, i.result, i.result_size, i.log,
    )  # fmt: skip


def segments(invocations: Sequence[Row], accepted: Sequence[Row]) -> list[tuple[Any, ...]]:
    """The segments (SEGMENT_COLUMNS) of a batch: its invocations and its accepted events, each cut at
    SEGMENT_ROWS rows or SEGMENT_BYTES of payloads, the n-th group of each in the n-th segment."""
    calls = _cut(invocations, lambda r: r[EVENT_SIZE] + r[RESULT_SIZE])
    events = _cut(accepted, lambda e: len(e[8]))
    return [segment(c, e) for c, e in itertools.zip_longest(calls, events, fillvalue=())]


def _cut(rows_: Sequence[Row], size_of: Callable[[Row], int]) -> list[Sequence[Row]]:
    groups: list[Sequence[Row]] = []
    start, size = 0, 0
    for n, row in enumerate(rows_):
        size += size_of(row)
        if n + 1 - start >= SEGMENT_ROWS or size >= SEGMENT_BYTES:
            groups.append(rows_[start : n + 1])
            start, size = n + 1, 0
    if start < len(rows_):
        groups.append(rows_[start:])
    return groups


def segment(invocations: Sequence[Row], accepted: Sequence[Row]) -> tuple[Any, ...]:
    times = [r[TIME] for r in invocations]
    times += [e[3] for e in accepted]
    counts: dict[str, int] = {}
    for r in invocations:
        counts[r[FUNCTION]] = counts.get(r[FUNCTION], 0) + 1
    functions = set(counts).union(e[2] for e in accepted)
    sources = {r[SOURCE] for r in invocations if r[SOURCE]}.union(e[1] for e in accepted)
    ids = {r[REQUEST_ID] for r in invocations if r[REQUEST_ID]}.union(e[0] for e in accepted)
    return (
        invocations[0][SEQ] if invocations else None,
        invocations[-1][SEQ] if invocations else None,
        min(times),
        max(times),
        len(invocations),
        len(accepted),
        sum(r[OUTCOME] != "success" for r in invocations),
        json.dumps(counts),
        _names(functions),
        _names(sources),
        ("\n" + "\n".join(ids) + "\n").encode(),
        _pack(invocations),
        _pack(accepted),
    )


def _names(names: Iterable[str]) -> str:
    return SEP + SEP.join(sorted(names)) + SEP


# -- writing (the writer process) ----------------------------------------------------------------------------


def write_segments(
    db: sqlite3.Connection, blobs: Blobs, segments: Sequence[Sequence[Any]], links: Sequence[Sequence[Any]]
) -> None:
    """The segments' blobs appended to the blob file, then one transaction: the segments, replay links, the
    latest seq (router/record/writer.py calls it)."""
    stored = [_store(blobs, s) for s in segments]
    with transaction(db):
        db.executemany(_INSERT, stored)
        db.executemany("INSERT OR REPLACE INTO replays VALUES (?, ?, ?)", links)
        seqs = [s[1] for s in segments if s[1] is not None]
        if seqs:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (max(seqs),))


def _store(blobs: Blobs, segment_: Sequence[Any]) -> tuple[Any, ...]:
    invocation_rows, accepted_rows = segment_[-2:]
    file, offset = blobs.append(invocation_rows + accepted_rows)
    return (*segment_[:-2], file, offset, len(invocation_rows), len(accepted_rows))


def _migrate(db: sqlite3.Connection, blobs: Blobs) -> None:
    """Move a record of the earlier layout (tables `invocations`, `events`, `requests`) into segments."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "invocations" not in tables:
        return
    with transaction(db):
        latest = db.execute("SELECT MAX(seq) FROM invocations").fetchone()[0]
        cursor = db.execute(f"SELECT {', '.join(FIELDS)} FROM invocations ORDER BY seq")
        while batch := cursor.fetchmany(SEGMENT_ROWS):
            db.executemany(_INSERT, [_store(blobs, s) for s in segments(batch, ())])
        if "events" in tables:
            cursor = db.execute(f"SELECT {', '.join(EVENT_FIELDS)}, event FROM events ORDER BY id")
            while accepted := cursor.fetchmany(SEGMENT_ROWS):
                db.executemany(_INSERT, [_store(blobs, s) for s in segments((), accepted)])
        if latest is not None:
            db.execute(
                "INSERT INTO meta VALUES ('seq', ?) ON CONFLICT (key) DO UPDATE "
                "SET value = MAX(value, excluded.value)",
                (latest,),
            )
        for table in ("invocations", "events", "requests", "requests_recent"):
            db.execute(f"DROP TABLE IF EXISTS {table}")


# -- reading -------------------------------------------------------------------------------------------------


INVOCATION_ROWS = "file, offset, invocation_bytes"
ACCEPTED_ROWS = "file, offset + invocation_bytes, accepted_bytes"


def _found(
    db: sqlite3.Connection,
    blobs: Blobs,
    where: Sequence[str],
    params: Sequence[Any],
    *,
    newest: bool = False,
    order: str = "id",
) -> Iterator[list[Row]]:
    """The invocation rows of each segment matching `where`, oldest first (newest first when `newest`), in
    `order`: `seq_hi` (the same order for segments with invocations) walks its index instead of the table."""
    sql = f"SELECT {INVOCATION_ROWS} FROM segments"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order} {'DESC' if newest else 'ASC'}"
    for file, offset, length in db.execute(sql, params).fetchall():
        yield blobs.rows(file, offset, length)


def _named(column: str, name: str | None, where: list[str], params: list[Any]) -> None:
    if name is not None:
        where.append(f"instr({column}, ?) > 0")
        params.append(SEP + name + SEP)


def recent(
    db: sqlite3.Connection,
    blobs: Blobs,
    *,
    function: str | None,
    source: str | None,
    after: int,
    limit: int,
    newest: bool,
    payload_limit: int | None,
) -> list[Invocation]:
    """Invocations after seq `after` of a function and/or source, oldest first: the oldest `limit`, or the
    newest `limit` when `newest`."""
    if limit <= 0:
        return []
    where, params = ["seq_hi > ?"], [after]
    _named("functions", function, where, params)
    _named("sources", source, where, params)
    picked: list[Row] = []
    for found in _found(db, blobs, where, params, newest=newest, order="seq_hi"):
        for row in reversed(found) if newest else found:
            if (
                row[SEQ] > after
                and (function is None or row[FUNCTION] == function)
                and (source is None or row[SOURCE] == source)
            ):
                picked.append(row)
        if len(picked) >= limit:
            break
    picked.sort(key=lambda r: r[SEQ])
    picked = picked[-limit:] if newest else picked[:limit]
    return _invocations(db, picked, payload_limit=payload_limit, logs=False)


def request(
    db: sqlite3.Connection, blobs: Blobs, request_id: str, payload_limit: int | None
) -> tuple[list[AcceptedEvent], list[Invocation]]:
    """The events accepted under a request id and its invocations (every attempt, logs included)."""
    accepted, invoked = [], []
    for file, offset, calls, events in db.execute(
        "SELECT file, offset, invocation_bytes, accepted_bytes FROM segments "
        "WHERE instr(request_ids, ?) > 0 ORDER BY id",
        (f"\n{request_id}\n".encode(),),
    ).fetchall():
        accepted += [e for e in blobs.rows(file, offset + calls, events) if e[0] == request_id]
        invoked += [r for r in blobs.rows(file, offset, calls) if r[REQUEST_ID] == request_id]
    return [_accepted(e) for e in accepted], _invocations(db, invoked, payload_limit=payload_limit, logs=True)


def functions(db: sqlite3.Connection) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (counts,) in db.execute("SELECT counts FROM segments WHERE invocations > 0"):
        for name, n in _json(counts).items():
            totals[name] = totals.get(name, 0) + n
    return dict(sorted(totals.items()))


def select(
    db: sqlite3.Connection, blobs: Blobs, query: RecordQuery
) -> list[tuple[Invocation, AcceptedEvent | None]]:
    """The latest invocation of each request the query picks (replays only when asked for by source), its
    accepted event if recorded; whole payloads, by time."""
    where: list[str] = ["invocations > 0"]
    params: list[Any] = []
    _named("functions", query.function, where, params)
    _named("sources", query.source, where, params)
    if query.since is not None:
        where.append("time_hi >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append("time_lo < ?")
        params.append(query.until)
    latest: dict[str, Row] = {}
    for found in _found(db, blobs, where, params, order="time_hi"):  # its index: a window
        for row in found:
            source = row[SOURCE]
            if (
                row[REQUEST_ID]
                and (query.function is None or row[FUNCTION] == query.function)
                and (source == query.source if query.source is not None else source != "replay")
                and (query.since is None or row[TIME] >= query.since)
                and (query.until is None or row[TIME] < query.until)
            ):
                seen = latest.get(row[REQUEST_ID])
                if seen is None or row[SEQ] > seen[SEQ]:
                    latest[row[REQUEST_ID]] = row
    chosen = sorted(
        (r for r in latest.values() if query.outcome is None or r[OUTCOME] == query.outcome),
        key=lambda r: (r[TIME], r[SEQ]),
    )
    if query.limit is not None:
        chosen = chosen[: query.limit]
    invocations = _invocations(db, chosen, payload_limit=None, logs=False)
    events = accepted_events(db, blobs, {i.request_id for i in invocations})
    return [(i, events.get(i.request_id)) for i in invocations]


def accepted_events(db: sqlite3.Connection, blobs: Blobs, request_ids: set[str]) -> dict[str, AcceptedEvent]:
    """The latest accepted event of each of these request ids that has one."""
    found: dict[str, AcceptedEvent] = {}
    if not request_ids:
        return found
    for ids, *where in db.execute(
        f"SELECT request_ids, {ACCEPTED_ROWS} FROM segments WHERE accepted > 0 ORDER BY id"
    ).fetchall():
        if request_ids.isdisjoint(bytes(ids).decode().split("\n")):
            continue
        for e in blobs.rows(*where):
            if e[0] in request_ids:
                found[e[0]] = _accepted(e)
    return found


def _invocations(
    db: sqlite3.Connection, rows_: Sequence[Row], *, payload_limit: int | None, logs: bool
) -> list[Invocation]:
    links = _replay_links(db, [r[REQUEST_ID] for r in rows_ if r[REQUEST_ID]])
    out = []
    for row in rows_:
        fields = dict(zip(FIELDS, row, strict=True))
        fields["cold"] = bool(fields["cold"])
        if payload_limit is not None:
            fields["event"] = fields["event"][:payload_limit]
            fields["result"] = fields["result"][:payload_limit]
        if not logs:
            fields["log"] = b""
        out.append(Invocation(replay_of=links.get(row[REQUEST_ID]), **fields))
    return out


def _replay_links(db: sqlite3.Connection, request_ids: Sequence[str]) -> dict[str, str]:
    links: dict[str, str] = {}
    for start in range(0, len(request_ids), 500):  # under SQLite's limit of bound parameters
        chunk = request_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        links.update(
            db.execute(f"SELECT request_id, original FROM replays WHERE request_id IN ({marks})", chunk)
        )
    return links


def _accepted(e: Row) -> AcceptedEvent:
    """An accepted event from its row; its source position is read from the event when the route did not
    give it (here, when read, rather than when written)."""
    fields = dict(zip(EVENT_FIELDS, e, strict=False))
    payload = bytes(e[8])
    if fields["position"] is None:
        try:
            fields["position"] = position(_json(payload))
        except (msgspec.DecodeError, KeyError, TypeError, IndexError):
            pass
    return AcceptedEvent(payload=payload, **fields)


# -- retention -----------------------------------------------------------------------------------------------


def size_bytes(db: sqlite3.Connection) -> int:
    pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
    return int(pages) * int(db.execute("PRAGMA page_size").fetchone()[0])


def prune(db: sqlite3.Connection, blobs: Blobs, *, cutoff: float, max_bytes: int) -> int:
    """Delete what is older than `cutoff`, then the oldest blob file and its segments while the record
    (database and blob files) holds more than `max_bytes`. Returns the number of invocations and events
    deleted."""
    blobs.file_bytes = min(FILE_BYTES, max(MIN_FILE_BYTES, max_bytes // 16))  # a file is a 16th at most
    deleted = _delete_before(db, blobs, cutoff)
    blobs.remove_unreferenced(db)
    while size_bytes(db) + blobs.total_bytes() > max_bytes:
        oldest = db.execute("SELECT MIN(file) FROM segments").fetchone()[0]
        if oldest is None:
            break
        if oldest == blobs.current:
            blobs.rotate()
        deleted += _delete(db, "file = ?", (oldest,))
        blobs.remove_unreferenced(db)
    if deleted:
        db.executescript("PRAGMA incremental_vacuum;")  # run to its end: each step frees one page
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file shrinks only once the log is written back
    return deleted


def _delete(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
    """The segments matching `where` go, and the replay links older than what is left."""
    with transaction(db):
        deleted = db.execute(
            f"SELECT COALESCE(SUM(invocations + accepted), 0) FROM segments WHERE {where}", params
        ).fetchone()[0]
        db.execute(f"DELETE FROM segments WHERE {where}", params)
        oldest = db.execute("SELECT MIN(time_lo) FROM segments").fetchone()[0]
        db.execute("DELETE FROM replays WHERE time < ?", (oldest if oldest is not None else float("inf"),))
    return int(deleted)


def _delete_before(db: sqlite3.Connection, blobs: Blobs, cutoff: float) -> int:
    """Segments wholly older than `cutoff` go; those that straddle it are written again (appended to the
    blob file) without their older rows."""
    deleted = _delete(db, "time_hi < ?", (cutoff,))
    straddling = db.execute(
        f"SELECT id, {INVOCATION_ROWS}, accepted_bytes, invocations + accepted FROM segments "
        "WHERE time_lo < ?",
        (cutoff,),
    ).fetchall()
    if not straddling:
        return deleted
    with transaction(db):
        for id_, file, offset, calls, events, before in straddling:
            invocations = [r for r in blobs.rows(file, offset, calls) if r[TIME] >= cutoff]
            accepted = [e for e in blobs.rows(file, offset + calls, events) if e[3] >= cutoff]
            if invocations or accepted:
                columns = _store(blobs, segment(invocations, accepted))
                db.execute(
                    f"UPDATE segments SET {', '.join(f'{c} = ?' for c in STORED_COLUMNS)} WHERE id = ?",
                    (*columns, id_),
                )
            else:
                db.execute("DELETE FROM segments WHERE id = ?", (id_,))
            deleted += before - len(invocations) - len(accepted)
        db.execute("DELETE FROM replays WHERE time < ?", (cutoff,))
    return deleted
