"""router/record/writer.py: the record's writer process, a real one: what it was sent is written even when
the daemon's side goes away mid-stream, a dead writer is started again, SQLite errors come back and the
writer goes on, and it runs below the daemon's priority."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from router.core.backends import Invocation
from router.record import schema
from router.record.sqlite import SqliteRecord
from router.record.writer import NICE, WriterClient, WriterError, _send


def row(seq: int) -> tuple[Any, ...]:
    return schema.invocation_row(
        Invocation(seq=seq, function="f", request_id=f"r{seq}", source="invoke", invocation_type="Event",
                   attempt=0, time=1000.0 + seq, duration_ms=1.0, billed_ms=1, memory_mb=128,
                   max_memory_mb=20, outcome="success", error_type=None, cold=False, trace=None,
                   event=b'{"n": %d}' % seq, event_size=8, result=b"{}", result_size=2)
    )  # fmt: skip


def segment(*seqs: int) -> list[Any]:
    """A write request's segments holding these invocations."""
    return schema.segments([row(seq) for seq in seqs], ())


def count(path: Path) -> int:
    """Invocations in the record's file."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COALESCE(SUM(invocations), 0) FROM segments").fetchone()[0])


def test_what_was_sent_is_written_when_the_daemons_side_closes_without_waiting(tmp_path: Path) -> None:
    client = WriterClient(str(tmp_path / "record.db"))
    client.open()
    sock, proc = client._sock, client._proc
    assert sock is not None and proc is not None
    for batch in range(20):  # as a daemon killed with batches in flight: sent, never answered
        _send(sock, ["write", segment(*range(batch * 50 + 1, batch * 50 + 51)), []])
    sock.close()
    assert proc.wait(30) == 0
    assert count(tmp_path / "record.db") == 1000


def test_a_dead_writer_fails_one_request_and_is_started_again(tmp_path: Path) -> None:
    client = WriterClient(str(tmp_path / "record.db"))
    client.open()
    client.write(segment(1), [])
    first = client._proc
    assert first is not None
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    with pytest.raises(WriterError):
        client.write(segment(2), [])
    client.write(segment(3), [])  # a new writer, the record opened again
    assert client._proc is not None and client._proc.pid != first.pid
    client.close()
    assert count(tmp_path / "record.db") == 2


def test_sqlite_errors_come_back_and_the_writer_goes_on(tmp_path: Path) -> None:
    client = WriterClient(str(tmp_path / "record.db"))
    client.open()
    with pytest.raises(WriterError, match="TypeError"):
        client.write([segment(1)[0][:5]], [])  # 5 values for 13 columns
    no_time = (*segment(3)[0][:2], None, *segment(3)[0][3:])
    with pytest.raises(WriterError, match="IntegrityError"):
        client.write([*segment(2), no_time], [])  # the whole batch is rolled back
    client.write(segment(3), [])
    client.close()
    assert count(tmp_path / "record.db") == 1


def test_the_writer_runs_below_the_daemon(tmp_path: Path) -> None:
    client = WriterClient(str(tmp_path / "record.db"))
    client.open()
    assert client._proc is not None
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, client._proc.pid) == min(19, ours + NICE)
    client.close()


async def test_the_record_stops_recording_while_too_much_waits(tmp_path: Path) -> None:
    from tests.unit.test_record_sqlite import record

    store = SqliteRecord(tmp_path / "record.db", flush_ms=10_000, batch_rows=10_000, max_pending=5)
    await store.open()
    for n in range(8):
        record(store, "f", {"n": n}, rid=f"r{n}")
    assert store.stats()["dropped"] == 3
    assert [i.request_id for i in await store.recent("f")] == [f"r{n}" for n in range(5)]
    record(store, "f", {"n": 8}, rid="r8")  # written: room again
    assert [i.request_id for i in await store.recent("f", after=5)] == ["r8"]
    await store.aclose()


async def test_the_records_losses_show_in_metrics(tmp_path: Path) -> None:
    from router.metrics import Metrics
    from tests.unit.test_record_sqlite import record

    metrics = Metrics()
    store = SqliteRecord(tmp_path / "record.db", flush_ms=10_000, batch_rows=10_000, max_pending=2)
    await store.open()
    store.bind_metrics(metrics)
    for n in range(3):
        record(store, "f", {"n": n}, rid=f"r{n}")
    text = metrics.render().decode()
    assert "router_record_pending 2.0" in text and "router_record_dropped_total 1.0" in text
    writer = store._client._proc
    assert writer is not None
    writer.kill()
    writer.wait(10)
    await store._write_once()  # the batch that finds the writer dead is lost, and counted
    text = metrics.render().decode()
    assert "router_record_pending 0.0" in text and "router_record_write_errors_total 1.0" in text
    assert metrics.render().decode().count("router_record_write_errors_total 1.0") == 1  # not counted twice
    record(store, "f", {"n": 9}, rid="r9")
    assert [i.request_id for i in await store.recent("f")] == ["r9"]  # a new writer took over
    await store.aclose()
