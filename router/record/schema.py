"""The durable record's SQLite schema, its rows, and retention. Writing (`open_db`, `write_rows`,
`merge_requests`, `prune`) runs in the record's writer process (router/record/writer.py), on its one
connection; reading runs on the daemon's record thread on a read-only connection (`open_reader`,
router/record/sqlite.py); the rows are built on that thread (`rows`, `event_fields`).

Tables:

* `invocations`: one row per invocation (seq is the cursor) with its event and result whole (for replay),
  indexed by function, source, time, and outcome for those that did not succeed (a partial index: most
  calls succeed).
* `requests`: request id -> seq, the index of invocations by request id, filled by merges: new pairs are
  appended to `requests_recent` (no index) and moved into `requests` (a WITHOUT ROWID B-tree) in request
  id order once `MERGE_ROWS` of them wait (`merge_requests`). A lookup reads both.
* `events`: one row per event a route accepted (request id, source, function, time, mode, trace, position,
  injected fault, the event), indexed by request id, source and time, function and time.
* `replays`: request id -> the request id it replayed. `meta`: the latest seq (the cursor survives the
  retention of every row).

Every index costs every write, and an index on random keys (request ids, uuids) the most: each insert
dirties a page anywhere in it, and every batch writes those pages to the log again. Hence the merges (a
sorted insert of many keys dirties each page once), one index per table on time-ordered keys otherwise, and
a page cache large enough for the hot pages (`CACHE_KIB`) over a memory-mapped file.

Retention (`prune`): rows older than the retention go; then, while the file holds more than `max_bytes`, the
oldest tenth of the invocations and whatever is older than the oldest left. Freed pages are returned to
the file system (auto_vacuum=INCREMENTAL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

from router.core.backends import AcceptedEvent, Invocation, RecordQuery
from router.shapes.positions import position

if TYPE_CHECKING:  # not imported at run time: the writer process starts faster without the dispatcher
    from router.core.results import InvocationResult
    from router.dispatch.stats import Call

# What waits to be written: a recorded Invocation, or (seq, function, call, result) of a finished call.
Pending: TypeAlias = "Invocation | tuple[int, str, Call, InvocationResult]"

SCHEMA = """
CREATE TABLE IF NOT EXISTS invocations (
    seq INTEGER PRIMARY KEY,
    function TEXT NOT NULL,
    request_id TEXT NOT NULL,
    source TEXT,
    invocation_type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    time REAL NOT NULL,
    duration_ms REAL NOT NULL,
    billed_ms INTEGER NOT NULL,
    init_ms REAL,
    memory_mb INTEGER NOT NULL,
    max_memory_mb INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error_type TEXT,
    cold INTEGER NOT NULL,
    trace TEXT,
    fault TEXT,
    event BLOB NOT NULL,
    event_size INTEGER NOT NULL,
    result BLOB NOT NULL,
    result_size INTEGER NOT NULL,
    log BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_function ON invocations (function, seq);
CREATE INDEX IF NOT EXISTS invocations_source ON invocations (source, seq);
CREATE INDEX IF NOT EXISTS invocations_time ON invocations (time);
CREATE INDEX IF NOT EXISTS invocations_failed ON invocations (outcome, seq) WHERE outcome != 'success';
CREATE TABLE IF NOT EXISTS requests_recent (request_id TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    source TEXT NOT NULL,
    function TEXT NOT NULL,
    time REAL NOT NULL,
    mode TEXT NOT NULL,
    trace TEXT,
    position TEXT,
    fault TEXT,
    event BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_request ON events (request_id);
CREATE INDEX IF NOT EXISTS events_source ON events (source, time);
CREATE INDEX IF NOT EXISTS events_function ON events (function, time);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS replays (request_id TEXT PRIMARY KEY, original TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS replays_time ON replays (time);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_COLUMNS = (
    "i.seq, i.function, i.request_id, i.source, i.invocation_type, i.attempt, i.time, i.duration_ms, "
    "i.billed_ms, i.init_ms, i.memory_mb, i.max_memory_mb, i.outcome, i.error_type, i.cold, i.trace, "
    "i.fault, i.event_size, i.result_size, r.original"
)
_FIELDS = [c.split(".", 1)[1] for c in _COLUMNS.split(", ")]
_FIELDS[-1] = "replay_of"
_JOINS = "FROM invocations i LEFT JOIN replays r ON r.request_id = i.request_id"
CACHE_KIB = 65536
MERGE_ROWS = 50_000
MMAP_BYTES = 256 * 1024 * 1024
_INSERT_INVOCATION = f"INSERT INTO invocations VALUES ({', '.join('?' * 22)})"
_decode = msgspec.json.Decoder().decode


def open_db(path: str) -> tuple[sqlite3.Connection, int]:
    """Open (or create) the record; returns the connection and the latest seq. Request ids left unmerged
    by the last run are merged."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes effect on a new file, before the tables
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last batches, never corrupt
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    db.executescript(SCHEMA)
    row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    latest = db.execute("SELECT MAX(seq) FROM invocations").fetchone()[0] or 0
    merge_requests(db)
    return db, max(latest, row[0] if row else 0)


def open_reader(path: str) -> sqlite3.Connection:
    """A read-only connection to a record the writer opened (router/record/writer.py)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA query_only=ON")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return db


# -- writing -------------------------------------------------------------------------------------------------


def rows(invocations: Sequence[Pending], log_bytes: int) -> list[tuple[Any, ...]]:
    """The `invocations` rows of what was recorded (built on the daemon's record thread)."""
    return [
        invocation_row(i) if isinstance(i, Invocation) else result_row(*i, log_bytes) for i in invocations
    ]


def event_fields(e: AcceptedEvent) -> tuple[Any, ...]:
    """An accepted event as `event_row` takes it (what the daemon sends the writer)."""
    return (e.request_id, e.source, e.function, e.time, e.mode, e.trace, e.position, e.fault, e.payload)


def write_rows(
    db: sqlite3.Connection,
    rows: Sequence[Sequence[Any]],
    events: Sequence[Sequence[Any]],
    links: Sequence[Sequence[Any]],
) -> None:
    """One transaction: invocation rows, event rows, replay links (router/record/writer.py calls it)."""
    db.execute("BEGIN")
    try:
        db.executemany(_INSERT_INVOCATION, rows)
        db.executemany("INSERT INTO requests_recent VALUES (?, ?)", [(r[2], r[0]) for r in rows if r[2]])
        db.executemany(
            "INSERT INTO events (request_id, source, function, time, mode, trace, position, fault, event) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        db.executemany("INSERT OR REPLACE INTO replays VALUES (?, ?, ?)", links)
        if rows:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (rows[-1][0],))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def merge_requests(db: sqlite3.Connection) -> None:
    """Move the request ids waiting in `requests_recent` into the `requests` index, in key order."""
    db.execute("BEGIN")
    try:
        db.execute(
            "INSERT OR IGNORE INTO requests "
            "SELECT request_id, seq FROM requests_recent ORDER BY request_id, seq"
        )
        db.execute("DELETE FROM requests_recent")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def seqs_of(db: sqlite3.Connection, request_id: str) -> list[int]:
    rows = db.execute(
        "SELECT seq FROM requests WHERE request_id = ? "
        "UNION SELECT seq FROM requests_recent WHERE request_id = ?",
        (request_id, request_id),
    )
    return sorted(r[0] for r in rows)


def result_row(
    seq: int, function: str, call: Call, result: InvocationResult, log_bytes: int
) -> tuple[Any, ...]:
    """The row of a finished call, built here rather than on the hot path (router/record/sqlite.py)."""
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


def event_row(
    request_id: str,
    source: str,
    function: str,
    time: float,
    mode: str,
    trace: str | None,
    position_: str | None,
    fault: str | None,
    payload: bytes,
) -> tuple[Any, ...]:
    """An `events` row; the source position is read from the event when the route did not give it."""
    try:
        where = position(_decode(payload)) if position_ is None else position_
    except (msgspec.DecodeError, KeyError, TypeError, IndexError):
        where = None
    return (request_id, source, function, time, mode, trace, where, fault, payload)


# -- reading -------------------------------------------------------------------------------------------------


def invocations(
    db: sqlite3.Connection,
    *,
    where: Iterable[str],
    params: Sequence[Any],
    payload_limit: int | None,
    order: str = "i.seq",
    limit: int | None = None,
    newest: bool = False,
    logs: bool = True,
) -> list[Invocation]:
    """Invocations matching `where` (conditions on `i`), in `order`; the newest `limit` when `newest`."""
    event, result = "i.event", "i.result"
    if payload_limit is not None:
        event, result = (
            f"substr({event}, 1, {int(payload_limit)})",
            f"substr({result}, 1, {int(payload_limit)})",
        )
    log = "i.log" if logs else "x''"
    sql = f"SELECT {_COLUMNS}, {event}, {result}, {log} {_JOINS}"
    conditions = list(where)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f" ORDER BY {order} {'DESC' if newest else 'ASC'}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = db.execute(sql, params).fetchall()
    if newest:
        rows.reverse()
    return [_invocation(row) for row in rows]


def _invocation(row: Sequence[Any]) -> Invocation:
    fields = dict(zip(_FIELDS, row[: len(_FIELDS)], strict=True))
    fields["cold"] = bool(fields["cold"])
    event, result, log = row[len(_FIELDS) :]
    return Invocation(event=bytes(event or b""), result=bytes(result or b""), log=bytes(log or b""), **fields)


def accepted_events(db: sqlite3.Connection, request_ids: Sequence[str]) -> list[AcceptedEvent]:
    found = []
    for start in range(0, len(request_ids), 500):  # under SQLite's limit of bound parameters
        found.extend(_accepted_events(db, request_ids[start : start + 500]))
    return found


def _accepted_events(db: sqlite3.Connection, request_ids: Sequence[str]) -> list[AcceptedEvent]:
    marks = ", ".join("?" * len(request_ids))
    rows = db.execute(
        "SELECT request_id, source, function, time, mode, trace, position, fault, event "
        f"FROM events WHERE request_id IN ({marks}) ORDER BY id",
        list(request_ids),
    ).fetchall()
    names = ("request_id", "source", "function", "time", "mode", "trace", "position", "fault")
    return [AcceptedEvent(payload=bytes(r[8] or b""), **dict(zip(names, r[:8], strict=True))) for r in rows]


def functions(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute("SELECT function, COUNT(*) FROM invocations GROUP BY function ORDER BY function")
    return {name: count for name, count in rows}


def select(db: sqlite3.Connection, query: RecordQuery) -> list[Invocation]:
    """The latest invocation of each request the query picks, whole payloads, oldest first."""
    inner: list[str] = ["request_id != ''"]
    params: list[Any] = []
    for column, value in (("function", query.function), ("source", query.source)):
        if value is not None:
            inner.append(f"{column} = ?")
            params.append(value)
    if query.source is None:
        inner.append("(source IS NULL OR source != 'replay')")  # replays are not replayed again unasked
    if query.since is not None:
        inner.append("time >= ?")
        params.append(query.since)
    if query.until is not None:
        inner.append("time < ?")
        params.append(query.until)
    where = [f"i.seq IN (SELECT MAX(seq) FROM invocations WHERE {' AND '.join(inner)} GROUP BY request_id)"]
    if query.outcome is not None:
        where.append("i.outcome = ?")
        params.append(query.outcome)
    return invocations(
        db, where=where, params=params, payload_limit=None, order="i.time", limit=query.limit, logs=False
    )


# -- retention -----------------------------------------------------------------------------------------------


def size_bytes(db: sqlite3.Connection) -> int:
    pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
    return int(pages) * int(db.execute("PRAGMA page_size").fetchone()[0])


def prune(db: sqlite3.Connection, *, cutoff: float, max_bytes: int) -> int:
    """Delete what is older than `cutoff`, then the oldest until the record fits `max_bytes`. Returns the
    number of invocations deleted."""
    deleted = _delete_before(db, cutoff)
    while size_bytes(db) > max_bytes:
        count = db.execute("SELECT COUNT(*) FROM invocations").fetchone()[0]
        if count == 0:
            if not _delete_before(db, float("inf")):
                break
            continue
        row = db.execute(
            "SELECT time FROM invocations ORDER BY time LIMIT 1 OFFSET ?", (max(1, count // 10) - 1,)
        ).fetchone()
        deleted += _delete_before(db, row[0], inclusive=True)
    if deleted:
        db.executescript("PRAGMA incremental_vacuum;")  # run to its end: each step frees one page
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file shrinks only once the log is written back
    return deleted


def _delete_before(db: sqlite3.Connection, cutoff: float, inclusive: bool = False) -> int:
    op = "<=" if inclusive else "<"
    db.execute("BEGIN")
    try:
        deleted = db.execute(f"DELETE FROM invocations WHERE time {op} ?", (cutoff,)).rowcount
        if deleted:
            oldest = db.execute("SELECT MIN(seq) FROM invocations").fetchone()[0]
            below = oldest if oldest is not None else 2**62
            db.execute("DELETE FROM requests WHERE seq < ?", (below,))
            db.execute("DELETE FROM requests_recent WHERE seq < ?", (below,))
        deleted += db.execute(f"DELETE FROM events WHERE time {op} ?", (cutoff,)).rowcount
        db.execute(f"DELETE FROM replays WHERE time {op} ?", (cutoff,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(deleted)
