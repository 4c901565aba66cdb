"""The durable record's SQLite schema, its rows, and retention. Every function here runs on the record's
own thread, with its one connection (router/record/sqlite.py).

Tables:

* `invocations`: one row per invocation (seq is the cursor), indexed by function, source, time, request id,
  and outcome for those that did not succeed (a partial index: most calls succeed, and each index costs
  every write). Its event is in `payloads` (by request id) unless the invocation has none (loop-stopped).
* `events`: one row per event a route accepted (request id, source, function, time, mode, trace, position,
  injected fault), indexed by request id, source and time, function and time.
* `payloads`: each request's event once, by request id (every attempt of an asynchronous event, and the
  route's accepted event, share it), kept whole for replay.
* `replays`: request id -> the request id it replayed. `meta`: the latest seq (the cursor survives the
  retention of every row).

Retention (`prune`): rows older than the retention go; then, while the file holds more than `max_bytes`, the
oldest tenth of the invocations and whatever is older than the oldest left. Freed pages are returned to
the file system (auto_vacuum=INCREMENTAL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from router.core.backends import AcceptedEvent, Invocation, RecordQuery
from router.shapes.positions import position

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
    event BLOB,
    event_size INTEGER NOT NULL,
    result BLOB NOT NULL,
    result_size INTEGER NOT NULL,
    log BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_function ON invocations (function, seq);
CREATE INDEX IF NOT EXISTS invocations_source ON invocations (source, seq);
CREATE INDEX IF NOT EXISTS invocations_time ON invocations (time);
CREATE INDEX IF NOT EXISTS invocations_failed ON invocations (outcome, seq) WHERE outcome != 'success';
CREATE INDEX IF NOT EXISTS invocations_request ON invocations (request_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    source TEXT NOT NULL,
    function TEXT NOT NULL,
    time REAL NOT NULL,
    mode TEXT NOT NULL,
    trace TEXT,
    position TEXT,
    fault TEXT
);
CREATE INDEX IF NOT EXISTS events_request ON events (request_id);
CREATE INDEX IF NOT EXISTS events_source ON events (source, time);
CREATE INDEX IF NOT EXISTS events_function ON events (function, time);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS payloads (request_id TEXT PRIMARY KEY, time REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS payloads_time ON payloads (time);
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
_JOINS = (
    "FROM invocations i LEFT JOIN payloads p ON i.event IS NULL AND p.request_id = i.request_id "
    "LEFT JOIN replays r ON r.request_id = i.request_id"
)
_INSERT_INVOCATION = f"INSERT INTO invocations VALUES ({', '.join('?' * 22)})"
_decode = msgspec.json.Decoder().decode


def open_db(path: str) -> tuple[sqlite3.Connection, int]:
    """Open (or create) the record; returns the connection and the latest seq."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes effect on a new file, before the tables
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last batches, never corrupt
    db.executescript(SCHEMA)
    row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    latest = db.execute("SELECT MAX(seq) FROM invocations").fetchone()[0] or 0
    return db, max(latest, row[0] if row else 0)


# -- writing -------------------------------------------------------------------------------------------------


def write(
    db: sqlite3.Connection,
    invocations: Sequence[Invocation],
    accepted: Sequence[AcceptedEvent],
    links: Sequence[tuple[str, str, float]],
) -> None:
    """One transaction for a batch of what was recorded."""
    db.execute("BEGIN")
    try:
        db.executemany(_INSERT_INVOCATION, [_invocation_row(i) for i in invocations])
        db.executemany(
            "INSERT OR IGNORE INTO payloads VALUES (?, ?, ?)",
            [(i.request_id, i.time, i.event) for i in invocations if i.request_id]
            + [(e.request_id, e.time, e.payload) for e in accepted],
        )
        db.executemany(
            "INSERT INTO events (request_id, source, function, time, mode, trace, position, fault) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_event_row(e) for e in accepted],
        )
        db.executemany("INSERT OR REPLACE INTO replays VALUES (?, ?, ?)", links)
        if invocations:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (invocations[-1].seq,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _invocation_row(i: Invocation) -> tuple[Any, ...]:
    return (
        i.seq, i.function, i.request_id, i.source, i.invocation_type, i.attempt, i.time, i.duration_ms,
        i.billed_ms, i.init_ms, i.memory_mb, i.max_memory_mb, i.outcome, i.error_type, int(i.cold), i.trace,
        i.fault, None if i.request_id else i.event, i.event_size, i.result, i.result_size, i.log,
    )  # fmt: skip


def _event_row(e: AcceptedEvent) -> tuple[Any, ...]:
    try:
        where = position(_decode(e.payload)) if e.position is None else e.position
    except (msgspec.DecodeError, KeyError, TypeError, IndexError):
        where = None
    return (e.request_id, e.source, e.function, e.time, e.mode, e.trace, where, e.fault)


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
    event = "COALESCE(i.event, p.data)"
    result = "i.result"
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
        "SELECT e.request_id, e.source, e.function, e.time, e.mode, e.trace, e.position, e.fault, p.data "
        f"FROM events e LEFT JOIN payloads p ON p.request_id = e.request_id WHERE e.request_id IN ({marks}) "
        "ORDER BY e.id",
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
        deleted += db.execute(f"DELETE FROM events WHERE time {op} ?", (cutoff,)).rowcount
        db.execute(f"DELETE FROM replays WHERE time {op} ?", (cutoff,))
        db.execute(
            f"DELETE FROM payloads WHERE time {op} ? AND NOT EXISTS "
            "(SELECT 1 FROM invocations WHERE invocations.request_id = payloads.request_id) AND NOT EXISTS "
            "(SELECT 1 FROM events WHERE events.request_id = payloads.request_id)",
            (cutoff,),
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(deleted)
