"""Shard-based mappings with a fake stream: the shard tree, starting positions, checkpoints, recovery."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from router.core.clock import SystemClock
from router.core.envelope import Envelope
from router.core.errors import ConfigError
from router.core.ports import Delivery, SourceContext
from router.sources.stream.checkpoints import CheckpointFile
from router.sources.stream.engine import StreamRecord
from router.sources.stream.shards import Shard, ShardSource
from router.validate import parse_config
from tests.unit.stream_fakes import FakeRoute, ok


class ServiceError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class FakeStream:
    """A sharded stream in memory. Iterators are 'shard:index'; a closed shard ends its iterator chain."""

    info_key = "FakeBatchInfo"
    stream_arn = "arn:fake:stream/s"
    max_limit = 3

    def __init__(self) -> None:
        self.tree: dict[str, tuple[str, ...]] = {}
        self.data: dict[str, list[tuple[int, str, str]]] = {}  # shard -> (seq, key, value)
        self.closed: set[str] = set()
        self.failures: list[str] = []  # error codes the next get_records calls raise
        self.iterators: list[tuple[str, str, str | None]] = []
        self.listings = 0  # calls of shards(): the source's refreshes
        self.ended: set[str] = set()  # closed shards read to their end
        self._seq = 100

    def add_shard(self, shard: str, *parents: str) -> None:
        self.tree[shard] = parents
        self.data[shard] = []

    def put(self, shard: str, key: str, value: str) -> None:
        self._seq += 1
        self.data[shard].append((self._seq, key, value))

    async def shards(self) -> list[Shard]:
        self.listings += 1
        return [Shard(s, p, s in self.closed) for s, p in self.tree.items()]

    async def iterator(self, shard_id: str, kind: str, sequence: str | None = None) -> str:
        self.iterators.append((shard_id, kind, sequence))
        rows = self.data[shard_id]
        if kind == "LATEST":
            index = len(rows)
        elif kind == "AFTER_SEQUENCE_NUMBER":
            index = next((i + 1 for i, r in enumerate(rows) if str(r[0]) == sequence), 0)
        else:
            index = 0
        return f"{shard_id}:{index}"

    async def records(self, iterator: str, limit: int) -> tuple[list[Any], str | None]:
        if self.failures:
            raise ServiceError(self.failures.pop(0))
        shard, index = iterator.rsplit(":", 1)
        rows = self.data[shard][int(index) : int(index) + limit]
        end = int(index) + len(rows)
        if shard in self.closed and end == len(self.data[shard]):
            self.ended.add(shard)
            return rows, None
        return rows, f"{shard}:{end}"

    def build(self, shard_id: str, raw: Any) -> StreamRecord:
        seq, key, value = raw
        rec = {"position": seq, "shard": shard_id, "key": key, "value": value}
        env = Envelope(
            id=str(seq), source="fake", type="fake", time="", kind="fake", source_name="src", record=rec
        )
        return StreamRecord(position=seq, envelope=env, arrival=1e12, size=10, key=key)

    def sequence(self, record: StreamRecord) -> str:
        return str(record.position)

    def error_code(self, exc: BaseException) -> str | None:
        return exc.response["Error"]["Code"] if isinstance(exc, ServiceError) else None

    def batch_info(self, shard_id: str, records: Sequence[StreamRecord]) -> dict[str, Any]:
        return {"shardId": shard_id}


class Settings(msgspec.Struct):
    poll_interval_s: float = 0.01
    shard_refresh_s: float = 0.02
    stop_grace_s: float = 1.0


@contextlib.asynccontextmanager
async def running(
    stream: FakeStream,
    route: FakeRoute,
    state: Path,
    start: str = "TRIM_HORIZON",
) -> AsyncIterator[asyncio.Event]:
    ready = asyncio.Event()

    async def submit(envelopes: Any) -> Delivery:
        return Delivery()

    ctx = SourceContext(
        name="src",
        config=Settings(),
        routes=[route],
        state_dir=state,
        clock=SystemClock(),
        submit=submit,
        ready=ready.set,
    )

    async def open_client(stack: contextlib.AsyncExitStack) -> FakeStream:
        return stream

    source = ShardSource(ctx, open_client, starting_position=start)
    task = asyncio.ensure_future(source.run())
    try:
        await asyncio.wait_for(ready.wait(), 5)
        yield ready
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await source.aclose()


async def delivered(route: FakeRoute, count: int) -> list[dict[str, Any]]:
    for _ in range(500):
        if len(route.delivered) >= count:
            return route.delivered
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(route.delivered)} of {count} delivered: {route.delivered}")


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def refreshed(stream: FakeStream, times: int) -> None:
    """Wait until the source has listed the shards `times` more times (each time it may start readers)."""
    target = stream.listings + times
    await until(lambda: stream.listings >= target, f"{times} more shard listings")


def checkpoints(state: Path) -> CheckpointFile:
    return msgspec.json.decode((state / "fn.json").read_bytes(), type=CheckpointFile)


async def test_children_wait_for_their_parents_to_finish(tmp_path: Path) -> None:
    stream = FakeStream()
    stream.add_shard("parent")
    stream.add_shard("child-a", "parent")
    stream.add_shard("child-b", "parent")
    for n in range(5):
        stream.put("parent", "k", f"p{n}")
    stream.put("child-a", "k", "a0")
    stream.put("child-b", "k", "b0")
    release = asyncio.Event()

    async def handler(recs: list[dict[str, Any]]) -> Any:
        if recs[0]["shard"] == "parent":
            await release.wait()
        return ok()

    route = FakeRoute(handler)
    async with running(stream, route, tmp_path):
        await until(lambda: route.calls, "the parent's first batch in flight")
        await refreshed(stream, 2)
        assert route.delivered == []  # the parent is open: its children wait
        stream.closed.add("parent")
        await until(lambda: "parent" in stream.ended, "the parent read to its end")
        await refreshed(stream, 2)
        assert [c for c in route.calls if c and c[0] > 105] == []  # parent read to its end but not settled
        release.set()
        got = await delivered(route, 7)
    values = [r["value"] for r in got]
    assert values[:5] == [f"p{n}" for n in range(5)]
    assert sorted(values[5:]) == ["a0", "b0"]
    state = checkpoints(tmp_path)
    assert state.shards["parent"].finished and not state.shards["child-a"].finished


async def test_restart_resumes_after_the_checkpoint(tmp_path: Path) -> None:
    stream = FakeStream()
    stream.add_shard("s0")
    for n in range(4):
        stream.put("s0", "k", f"v{n}")
    first = FakeRoute()
    async with running(stream, first, tmp_path):
        await delivered(first, 4)
    assert checkpoints(tmp_path).shards["s0"].sequence == "104"

    stream.put("s0", "k", "v4")
    second = FakeRoute()
    async with running(stream, second, tmp_path):
        await delivered(second, 1)
        stream.put("s0", "k", "v5")  # what the shard holds after v4 comes next: nothing settled comes again
        got = await delivered(second, 2)
    assert [r["value"] for r in got] == ["v4", "v5"]
    assert ("s0", "AFTER_SEQUENCE_NUMBER", "104") in stream.iterators


async def test_latest_starts_at_the_end_and_skips_closed_shards(tmp_path: Path) -> None:
    stream = FakeStream()
    stream.add_shard("old")
    stream.add_shard("s0", "old")
    stream.put("old", "k", "gone")
    stream.put("s0", "k", "before")
    stream.closed.add("old")
    route = FakeRoute()
    async with running(stream, route, tmp_path, start="LATEST"):
        await until(lambda: ("s0", "LATEST", None) in stream.iterators, "s0 read from its end")
        stream.put("s0", "k", "after")
        await delivered(route, 1)
        # s0 starts after its parent "old" is done with, so "gone" can no longer come; "before" would have
        # come first, and anything else before the next record.
        stream.put("s0", "k", "next")
        got = await delivered(route, 2)
    assert [r["value"] for r in got] == ["after", "next"]
    assert checkpoints(tmp_path).shards["old"].finished


async def test_new_shards_found_later_start_at_trim_horizon(tmp_path: Path) -> None:
    stream = FakeStream()
    stream.add_shard("s0")
    route = FakeRoute()
    async with running(stream, route, tmp_path, start="LATEST"):
        stream.add_shard("s1")
        stream.put("s1", "k", "first in a new shard")
        got = await delivered(route, 1)
    assert [r["value"] for r in got] == ["first in a new shard"]
    assert ("s1", "TRIM_HORIZON", None) in stream.iterators


async def test_throttling_and_expired_iterators_lose_nothing(tmp_path: Path) -> None:
    stream = FakeStream()
    stream.add_shard("s0")
    for n in range(6):
        stream.put("s0", "k", f"v{n}")
    stream.failures = ["ProvisionedThroughputExceededException", "ExpiredIteratorException"]
    route = FakeRoute()
    async with running(stream, route, tmp_path):
        got = await delivered(route, 6)
        stream.failures = ["ExpiredIteratorException"]
        stream.put("s0", "k", "v6")
        got = await delivered(route, 7)
    assert [r["value"] for r in got] == [f"v{n}" for n in range(7)]


async def test_checkpoints_of_another_stream_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "fn.json").write_bytes(
        msgspec.json.encode(
            {"stream": "arn:fake:stream/old", "shards": {"s0": {"sequence": "999", "finished": True}}}
        )
    )
    stream = FakeStream()
    stream.add_shard("s0")
    stream.put("s0", "k", "v0")
    route = FakeRoute()
    async with running(stream, route, tmp_path):
        got = await delivered(route, 1)
    assert [r["value"] for r in got] == ["v0"]


def test_aws_stream_config_problems_name_the_key() -> None:
    echo = Path(__file__).resolve().parent.parent / "functions" / "echo"
    text = f"""
functions:
  fn: {{runtime: python3.11, handler: app.handler, code: "{echo}"}}
sources:
  orders: {{kind: dynamodb, table: orders, stream_arn: "arn:aws:dynamodb:us-east-1:1:table/orders"}}
  events: {{kind: kinesis, starting_position: AT_TIMESTAMP, poll_interval_s: 0}}
routes:
  - {{source: orders, function: fn}}
  - {{source: events, function: fn}}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    problems = e.value.problems
    assert "sources.orders: give exactly one of table, stream_arn" in problems
    assert any(
        p.startswith("sources.orders.stream_arn: 'arn:aws:dynamodb:us-east-1:1:table/orders' is not")
        for p in problems
    )
    assert any(
        p.startswith("sources.events.poll_interval_s: expected a number between 0.01 and 60")
        for p in problems
    )
