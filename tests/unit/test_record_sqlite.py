"""router/record/sqlite.py: the durable record: written in batches, read back, surviving a reopen, pruned."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from router.core.backends import AcceptedEvent, RecordQuery
from router.core.results import InvocationResult
from router.dispatch.loops import StoppedCall
from router.dispatch.stats import Call
from router.record.sqlite import SqliteRecord
from router.record.views import accepted_view, view
from router.shapes import sample


def record(
    store: SqliteRecord, function: str, event: Any, *, rid: str, fail: bool = False, **call: Any
) -> None:
    c = Call(request_id=rid, payload=json.dumps(event).encode(), function=function,
             started_at=call.pop("at", time.time()), trace_id="Root=1-a-b;Lineage=0:0", **call)  # fmt: skip
    result = InvocationResult(
        request_id=rid,
        payload=b'{"errorType": "E", "errorMessage": "boom"}'
        if fail
        else json.dumps({"got": event}).encode(),
        function_error="Unhandled" if fail else None,
        error_type="E" if fail else None,
        duration_ms=2.5,
        billed_ms=3,
        init_ms=40.0,
        max_memory_mb=31,
        log=b"START RequestId: x\nhello\nEND RequestId: x\nREPORT RequestId: x\tDuration: 2.50 ms\n",
        fault="error" if fail else None,
    )
    store.record_result(function, c, result)


async def opened(path: Path, **kw: Any) -> SqliteRecord:
    store = SqliteRecord(path, flush_ms=10_000, **kw)  # flushes only when read, closed, or full
    await store.open()
    return store


async def test_recorded_invocations_survive_a_reopen_and_seq_goes_on(tmp_path: Path) -> None:
    store = await opened(tmp_path / "record.db")
    record(store, "f", {"n": 1}, rid="r1", source="uploads", invocation_type="Event")
    record(store, "f", {"n": 1}, rid="r1", fail=True, source="uploads", invocation_type="Event", attempt=2)
    record(store, "g", {"n": 2}, rid="r2")
    assert store.cursor == 3
    assert [i.seq for i in await store.recent()] == [1, 2, 3]  # read sees what was not written yet
    await store.aclose()

    again = await opened(tmp_path / "record.db")
    assert again.cursor == 3 and await again.functions() == {"f": 2, "g": 1}
    first, second = await again.recent("f")
    assert view(first)["event"] == {"n": 1} and view(first)["result"] == {"got": {"n": 1}}
    assert (second.outcome, second.error_type, second.attempt, second.fault) == ("error", "E", 2, "error")
    assert (second.init_ms, second.max_memory_mb, second.duration_ms) == (40.0, 31, 2.5)
    assert [i.seq for i in await again.recent(after=1, limit=1)] == [3]
    assert await again.recent(limit=0) == []
    assert [i.seq for i in await again.recent(source="uploads")] == [1, 2]
    record(again, "g", {"n": 3}, rid="r3")
    assert again.cursor == 4
    await again.aclose()


async def test_a_request_id_leads_to_its_accepted_event_and_every_attempt(tmp_path: Path) -> None:
    store = await opened(tmp_path / "record.db")
    event = json.dumps(sample("kafka")).encode()
    store.record_accepted(AcceptedEvent(request_id="q1", source="clicks", function="f", time=1.0,
                                        mode="queued", payload=event))  # fmt: skip
    record(store, "f", sample("kafka"), rid="q1", fail=True, source="clicks")
    record(store, "f", sample("kafka"), rid="q1", source="clicks", attempt=2)
    accepted, invocations = await store.request("q1")
    assert [accepted_view(a)["position"] for a in accepted] == ["clicks-0@15"]
    assert accepted[0].payload == event and [i.attempt for i in invocations] == [1, 2]
    assert "REPORT RequestId" in view(invocations[0], logs=True)["log"]
    assert await store.request("nope") == ([], [])
    await store.aclose()


async def test_select_takes_each_request_once_by_its_latest_attempt(tmp_path: Path) -> None:
    store = await opened(tmp_path / "record.db", max_payload_bytes=8)
    long = {"text": "x" * 100}
    record(store, "f", long, rid="a", fail=True, source="s", at=100.0)
    record(store, "f", long, rid="a", source="s", attempt=2, at=160.0)  # a then succeeded
    record(store, "f", {"n": 2}, rid="b", fail=True, source="s", at=200.0)
    record(store, "g", {"n": 3}, rid="c", source="t", at=300.0)
    record(store, "f", {"n": 4}, rid="d", source="replay", at=400.0)
    store.record_stopped(StoppedCall("f", "Event", "s", "Root=1-a;Lineage=0:16", 17, b"{}", 250.0))
    picked = await store.select(RecordQuery(function="f"))
    assert [(r.invocation.request_id, r.invocation.outcome) for r in picked] == [
        ("a", "success"),
        ("b", "error"),
    ]
    assert json.loads(picked[0].invocation.event) == long  # whole, though views cut at 8 bytes
    assert view((await store.recent("f"))[0])["event"]["truncated"] is True
    errors = await store.select(RecordQuery(source="s", outcome="error"))
    assert [r.invocation.request_id for r in errors] == ["b"]
    assert [r.invocation.request_id for r in await store.select(RecordQuery(source="replay"))] == ["d"]
    window = await store.select(RecordQuery(function="f", since=150.0, until=300.0))
    assert [r.invocation.request_id for r in window] == ["a", "b"]
    store.link("d", "a")
    (replayed,) = [i for i in await store.recent("f") if i.request_id == "d"]
    assert replayed.replay_of == "a"
    await store.aclose()


async def test_retention_by_age_then_by_size(tmp_path: Path) -> None:
    store = await opened(tmp_path / "record.db", retention_s=3600, max_bytes=2 * 1024 * 1024)  # files: 256 KB
    now = time.time()
    record(store, "f", {"n": "old"}, rid="old", at=now - 7200)
    await store.flush()
    for n in range(200):
        record(store, "f", {"n": n, "pad": "y" * 20_000}, rid=f"r{n}", at=now - 200 + n)
        if n % 20 == 19:
            await store.flush()  # ten segments of 400 KB, each in a blob file of its own
    blobs = tmp_path / "record.blobs"
    assert len(list(blobs.iterdir())) >= 10
    store.max_bytes = 10**9
    await store.prune()
    assert "old" not in {i.request_id for i in await store.recent(limit=1000)}
    assert len(await store.recent(limit=1000)) == 200
    store.max_bytes = 2 * 1024 * 1024
    await store.prune()  # the oldest files go, with their segments, until the record fits
    left = await store.recent(limit=1000)
    assert 0 < len(left) < 200 and left[-1].request_id == "r199" and left[0].request_id.endswith("0")
    on_disk = (tmp_path / "record.db").stat().st_size + sum(p.stat().st_size for p in blobs.iterdir())
    assert on_disk <= 2 * 1024 * 1024  # pages and files given back to the file system
    await store.aclose()


async def test_writes_are_batched_off_the_hot_path_and_waits_see_them(tmp_path: Path) -> None:
    store = SqliteRecord(tmp_path / "record.db", flush_ms=20, batch_rows=3)
    await store.open()
    waiting = asyncio.ensure_future(store.wait("f", lambda v: v["event"] == {"n": 5}, 0, 10))
    await asyncio.sleep(0)
    for n in range(6):
        record(store, "f", {"n": n}, rid=f"r{n}")
    found = await waiting
    assert found is not None and found.request_id == "r5"
    for _ in range(200):  # the writer task writes without any reader asking
        if not store.stats()["pending"]:
            break
        await asyncio.sleep(0.01)
    assert store.stats()["pending"] == 0
    store.close()
    assert await store.since("f", 99, 10) == []  # closed: long polls end at once
    await store.aclose()


async def test_request_ids_are_found_across_segments_and_go_with_retention(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from router.record import schema

    monkeypatch.setattr(schema, "SEGMENT_ROWS", 2)
    store = await opened(tmp_path / "record.db", retention_s=3600)
    now = time.time()
    for n in range(6):  # r0 r1 r2 r0 r1 r2: the two oldest calls older than the retention
        record(store, "f", {"n": n}, rid=f"r{n % 3}", at=now - 7200 if n < 2 else now - 10 + n, attempt=n)
    store.record_accepted(AcceptedEvent(request_id="r2", source="s", function="f", time=now, mode="queued",
                                        payload=b'{"n": 2}'))  # fmt: skip
    await store.flush()  # one batch: three segments of two invocations, the event in the first
    db = store._connection()
    assert await store._run(lambda: db.execute("SELECT COUNT(*) FROM segments").fetchone()) == (3,)
    for rid, attempts in (("r0", [0, 3]), ("r1", [1, 4]), ("r2", [2, 5])):
        accepted, found = await store.request(rid)
        assert [i.attempt for i in found] == attempts, rid
        assert [a.request_id for a in accepted] == (["r2"] if rid == "r2" else [])
    assert await store.functions() == {"f": 6}
    assert await store.prune() == 2  # the first segment straddles the cutoff: written again without them
    assert [[i.attempt for i in (await store.request(r))[1]] for r in ("r0", "r1")] == [[3], [4]]
    assert (await store.request("r2"))[0][0].payload == b'{"n": 2}'
    assert [i.seq for i in await store.recent(limit=3)] == [4, 5, 6] and await store.functions() == {"f": 4}
    await store.aclose()


ROW_PER_INVOCATION = """
CREATE TABLE invocations (seq INTEGER PRIMARY KEY, function TEXT, request_id TEXT, source TEXT,
    invocation_type TEXT, attempt INTEGER, time REAL, duration_ms REAL, billed_ms INTEGER, init_ms REAL,
    memory_mb INTEGER, max_memory_mb INTEGER, outcome TEXT, error_type TEXT, cold INTEGER, trace TEXT,
    fault TEXT, event BLOB, event_size INTEGER, result BLOB, result_size INTEGER, log BLOB);
CREATE TABLE requests (request_id TEXT, seq INTEGER, PRIMARY KEY (request_id, seq)) WITHOUT ROWID;
CREATE TABLE requests_recent (request_id TEXT, seq INTEGER);
CREATE TABLE events (id INTEGER PRIMARY KEY, request_id TEXT, source TEXT, function TEXT, time REAL,
    mode TEXT, trace TEXT, position TEXT, fault TEXT, event BLOB);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


async def test_a_record_of_the_row_per_invocation_layout_is_moved_into_segments(tmp_path: Path) -> None:
    import sqlite3

    now = time.time()
    with sqlite3.connect(tmp_path / "record.db") as old:
        old.executescript(ROW_PER_INVOCATION)
        for seq in (1, 2):
            old.execute(
                "INSERT INTO invocations VALUES (?, 'f', ?, 'clicks', 'Event', 1, ?, 1.5, 2, NULL, 128, 20, "
                "?, NULL, 0, NULL, NULL, ?, 8, x'7b7d', 2, x'')",
                (seq, f"q{seq}", now - seq, "success" if seq == 1 else "error", b'{"n": %d}' % seq),
            )
        old.execute("INSERT INTO events VALUES (1, 'q2', 'clicks', 'f', ?, 'queued', NULL, NULL, NULL, ?)",
                    (now - 3, json.dumps(sample("kafka")).encode()))  # fmt: skip
        old.execute("INSERT INTO meta VALUES ('seq', 7)")  # later calls had been pruned
    store = await opened(tmp_path / "record.db")
    assert store.cursor == 7 and await store.functions() == {"f": 2}
    assert [(i.request_id, i.outcome) for i in await store.recent("f")] == [
        ("q1", "success"),
        ("q2", "error"),
    ]
    accepted, invocations = await store.request("q2")
    assert [accepted_view(a)["position"] for a in accepted] == ["clicks-0@15"]
    assert [i.event for i in invocations] == [b'{"n": 2}']
    picked = await store.select(RecordQuery(function="f", outcome="error"))
    assert [(r.invocation.request_id, r.accepted is not None) for r in picked] == [("q2", True)]
    tables = await store._run(
        lambda: {
            r[0] for r in store._connection().execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    )
    assert "invocations" not in tables and "events" not in tables
    await store.aclose()


def test_a_batch_is_cut_into_segments_by_rows_and_by_bytes(monkeypatch: Any) -> None:
    from router.record import schema
    from tests.unit.test_record_writer import row

    monkeypatch.setattr(schema, "SEGMENT_ROWS", 2)
    monkeypatch.setattr(schema, "SEGMENT_BYTES", 1000)
    events = [(f"q{n}", "s", "f", 1000.0 + n, "queued", None, None, None, b"{}") for n in range(3)]
    cut = schema.segments([row(n) for n in range(1, 6)], events)
    columns = [dict(zip(schema.SEGMENT_COLUMNS, s, strict=True)) for s in cut]
    assert [(c["seq_lo"], c["seq_hi"], c["invocations"], c["accepted"]) for c in columns] == [
        (1, 2, 2, 2), (3, 4, 2, 1), (5, 5, 1, 0)
    ]  # fmt: skip
    assert set(columns[0]["request_ids"].split(b"\n")[1:-1]) == {b"r1", b"r2", b"q0", b"q1"}
    large = [("big", "s", "f", 1.0, "queued", None, None, None, b"x" * 600) for _ in range(3)]
    assert [s[5] for s in schema.segments((), large)] == [2, 1]  # 1200 bytes reached after two
