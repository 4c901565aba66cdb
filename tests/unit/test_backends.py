"""The backend seams (router/core/backends.py): today's implementations satisfy their protocols and keep
their contracts on real files, and the code that uses a seam takes whatever implementation it is given."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from router import backends as local_backends
from router.config import RecordConfig
from router.core.backends import (
    AsyncQueue,
    CheckpointStore,
    InvocationRecord,
    QueuedEvent,
    ScheduleState,
    ShardOwnership,
    ShardState,
    SourceBackends,
    TickClaims,
)
from router.core.clock import FakeClock, SystemClock
from router.core.ports import Delivery, SourceContext
from router.daemon import Daemon
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.queue import DurableQueue
from router.record.memory import InspectStore
from router.record.sqlite import SqliteRecord
from router.sources import schedule
from router.sources.schedule.state import ScheduleFile, open_schedule_file
from router.sources.stream.checkpoints import CheckpointFile, FileCheckpoints, open_checkpoint_file
from router.sources.stream.ownership import SoleOwner
from router.sources.stream.shards import ShardSource
from router.validate import parse_config
from tests.unit.dispatch_fakes import FakeFactory, definition, router_config, until
from tests.unit.stream_fakes import FakeRoute
from tests.unit.test_schedule import Collector, at, config
from tests.unit.test_stream_shards import FakeStream, Settings

# -- every local implementation has its protocol's members, with the same parameters ----------------------

LOCAL: list[tuple[type, Any]] = [
    (AsyncQueue, lambda tmp: DurableQueue(tmp / "queue.db")),
    (CheckpointStore, lambda tmp: open_checkpoint_file(source="s", folder=tmp, mapping="m", stream="arn")),
    (ShardOwnership, lambda tmp: SoleOwner()),
    (TickClaims, lambda tmp: open_schedule_file(source="s", folder=tmp)),
    (InvocationRecord, lambda tmp: InspectStore()),
    (InvocationRecord, lambda tmp: SqliteRecord(tmp / "record.db")),
]


def members(protocol: type) -> list[str]:
    names = [n for n in vars(protocol) if not n.startswith("_")]
    return sorted({*names, *getattr(protocol, "__annotations__", {})})


@pytest.mark.parametrize(
    ("protocol", "build"), LOCAL, ids=[f"{p.__name__}{i}" for i, (p, _) in enumerate(LOCAL)]
)
def test_local_implementation_satisfies_its_protocol(protocol: type, build: Any, tmp_path: Path) -> None:
    impl = build(tmp_path)
    assert isinstance(impl, protocol)
    for name in members(protocol):
        wanted, found = getattr(protocol, name, None), getattr(type(impl), name, None)
        if inspect.isfunction(wanted):
            assert inspect.isfunction(found), f"{type(impl).__name__}.{name} is not a method"
            assert inspect.iscoroutinefunction(found) == inspect.iscoroutinefunction(wanted), name
            params = [(p.name, p.kind) for p in inspect.signature(wanted).parameters.values()]
            assert [(p.name, p.kind) for p in inspect.signature(found).parameters.values()] == params, name
        else:
            assert hasattr(impl, name), f"{type(impl).__name__} has no {name}"


def test_local_bundles_todays_implementations(tmp_path: Path) -> None:
    bundle = local_backends.local(tmp_path, ring_size=7)
    assert isinstance(bundle.queue, DurableQueue) and bundle.queue.path == tmp_path / "queue.db"
    assert isinstance(bundle.record, InspectStore) and bundle.record.ring_size == 7
    durable = local_backends.local(tmp_path, record=RecordConfig(retention="2h", max_mb=3)).record
    assert isinstance(durable, SqliteRecord) and durable.path == tmp_path / "record.db"
    assert (durable.retention_s, durable.max_bytes) == (7200, 3 * 1024 * 1024)
    checkpoints = bundle.sources.checkpoints(source="s", folder=tmp_path, mapping="fn", stream="arn")
    assert isinstance(checkpoints, FileCheckpoints) and checkpoints.path == tmp_path / "fn.json"
    assert isinstance(bundle.sources.ownership(source="s", mapping="fn"), SoleOwner)
    ticks = bundle.sources.ticks(source="s", folder=tmp_path)
    assert isinstance(ticks, ScheduleFile) and ticks.path == tmp_path / "schedule.json"


# -- AsyncQueue: durable once put returns, until deleted -----------------------------------------------------


def event(id: str, at: float, **kw: Any) -> QueuedEvent:
    return QueuedEvent(id=id, function="f", enqueued_at=at, not_before=at, **kw)


async def test_queue_put_update_delete_survive_a_reopen(tmp_path: Path) -> None:
    queue: AsyncQueue = DurableQueue(tmp_path / "queue.db")
    assert await queue.open() == [] and queue.is_open
    stored: list[QueuedEvent] = []
    queue.on_stored = stored.append
    first, second = event("e1", 10.0, trace="Root=1", source="s3"), event("e2", 20.0)
    await queue.put(first, b"one")
    await queue.put(second, b"two")
    assert stored == [first, second]  # announced once durable, in order
    assert (queue.depth(), queue.depth("f"), queue.oldest("f"), queue.functions()) == (2, 2, 10.0, ["f"])
    first.attempts, first.system_errors, first.not_before = 1, 2, 70.0
    await queue.update(first)
    await queue.aclose()
    await queue.aclose()  # idempotent
    assert not queue.is_open

    again: AsyncQueue = DurableQueue(tmp_path / "queue.db")
    assert await again.open() == [first, second]  # oldest first, with the retry bookkeeping
    assert await again.payload("e1") == b"one" and await again.payload("nope") is None
    settled = asyncio.ensure_future(again.settled("e1"))
    await asyncio.sleep(0)
    assert not settled.done()
    await again.delete(first)
    await asyncio.wait_for(settled, 5)
    await again.settled("e1")  # gone: returns at once
    await again.aclose()

    third = DurableQueue(tmp_path / "queue.db")
    assert await third.open() == [second]
    await third.aclose()


# -- CheckpointStore: saved, then loaded; another stream's ignored ------------------------------------------


async def test_checkpoints_saved_then_loaded(tmp_path: Path) -> None:
    store = open_checkpoint_file(source="s", folder=tmp_path, mapping="fn", stream="arn:1")
    await store.load()
    assert store.get("a") == ShardState()
    writer = asyncio.ensure_future(store.writer())
    store.settled("a", "105")
    store.finish("b")
    store.finish("gone")
    store.prune({"a", "b"})  # finished and no longer listed: forgotten
    await until(lambda: (tmp_path / "fn.json").exists(), "the writer to write")
    store.settled("c", "7")
    writer.cancel()  # the writer writes once more when cancelled
    with contextlib.suppress(asyncio.CancelledError):
        await writer

    loaded = open_checkpoint_file(source="s", folder=tmp_path, mapping="fn", stream="arn:1")
    await loaded.load()
    assert loaded.get("a") == ShardState(sequence="105") and loaded.get("b") == ShardState(finished=True)
    assert loaded.get("c").sequence == "7" and loaded.get("gone") == ShardState()
    loaded.forget("a")
    await loaded.flush()
    reread = msgspec.json.decode((tmp_path / "fn.json").read_bytes(), type=CheckpointFile)
    assert set(reread.shards) == {"b", "c"} and reread.stream == "arn:1"

    other = open_checkpoint_file(source="s", folder=tmp_path, mapping="fn", stream="arn:2")
    await other.load()
    assert other.get("b") == ShardState()  # a recreated stream starts afresh


async def test_a_writer_stopped_before_loading_keeps_the_saved_checkpoints(tmp_path: Path) -> None:
    saved = msgspec.json.encode(CheckpointFile(stream="arn", shards={"a": ShardState(sequence="9")}))
    (tmp_path / "fn.json").write_bytes(saved)
    store = open_checkpoint_file(source="s", folder=tmp_path, mapping="fn", stream="arn")
    writer = asyncio.ensure_future(store.writer())
    await asyncio.sleep(0)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    assert (tmp_path / "fn.json").read_bytes() == saved


# -- ShardOwnership: one router owns every shard ------------------------------------------------------------


async def test_sole_owner_owns_every_shard() -> None:
    owner: ShardOwnership = SoleOwner()
    assert await owner.claim(["a", "b", "c"]) == {"a", "b", "c"}
    assert await owner.claim([]) == set()
    assert owner.owns("a") and owner.owns("never-claimed")
    await owner.release("a")
    assert owner.owns("a")  # nobody else could take it


# -- TickClaims: a tick is claimed until a saved state has handled it, across restarts ---------------------


def tick_state(last_tick: float, pending: Sequence[str] = ()) -> ScheduleState:
    return ScheduleState(
        expression="rate(1 minute)", timezone="UTC", anchor=40.0, last_tick=last_tick, pending=list(pending)
    )


async def test_tick_claims_succeed_once_per_tick_and_stay_claimed_after_a_restart(tmp_path: Path) -> None:
    claims: TickClaims = open_schedule_file(source="nightly", folder=tmp_path)
    assert await claims.load() is None
    assert await claims.claim(100.0)
    assert await claims.claim(100.0)  # not confirmed yet: a crash now fires it again
    await claims.save(tick_state(100.0, ["req-1"]))
    assert not await claims.claim(100.0) and not await claims.claim(40.0)
    assert await claims.claim(160.0)

    restarted: TickClaims = open_schedule_file(source="nightly", folder=tmp_path)
    assert not await restarted.claim(100.0) and await restarted.claim(160.0)
    assert await restarted.load() == tick_state(100.0, ["req-1"])
    on_disk = json.loads((tmp_path / "schedule.json").read_text())  # the file schedules always wrote
    assert on_disk == {
        "expression": "rate(1 minute)", "timezone": "UTC", "anchor": 40.0, "last_tick": 100.0,
        "pending": ["req-1"],
    }  # fmt: skip


async def test_unreadable_tick_state_loads_as_none_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "schedule.json").write_text("{not json")
    claims = open_schedule_file(source="nightly", folder=tmp_path)
    with caplog.at_level(logging.WARNING, logger="router.sources.schedule"):
        assert await claims.load() is None
    assert "schedule nightly: state unreadable" in caplog.text
    assert await claims.claim(1.0)


# -- InvocationRecord: what the dispatcher ran, read back by cursor ------------------------------------------


async def test_record_round_trip_through_the_dispatcher(tmp_path: Path) -> None:
    bundle = local_backends.local(tmp_path / "state", ring_size=2)
    d = Dispatcher(
        router_config(tmp_path),
        state_dir=tmp_path / "other",
        instance_factory=FakeFactory(),
        queue=bundle.queue,
    )
    record = bundle.record
    record.attach(d)
    await d.set_functions({"f": definition("f", tmp_path)})
    await d.start()
    try:
        assert d.queue is bundle.queue and (tmp_path / "state" / "queue.db").exists()
        assert not (tmp_path / "other" / "queue.db").exists()
        assert record.cursor == 0
        wanted = asyncio.ensure_future(record.wait("f", lambda v: v["event"] == {"n": 1}, 0, 10))
        for n in range(3):
            await d.invoke("f", json.dumps({"n": n}).encode(), source="test")
        found = await wanted
        assert found is not None and (found.seq, found.function, found.source) == (2, "f", "test")
        assert record.cursor == 3 and await record.functions() == {"f": 2}  # the ring holds the newest two
        assert [i.seq for i in await record.recent("f")] == [2, 3] and await record.recent(after=3) == []
        request_id = await d.enqueue("f", b'{"n": 9}')
        (queued,) = await record.since("f", 3, 10)
        assert (queued.request_id, queued.invocation_type, queued.event) == (request_id, "Event", b'{"n": 9}')
        record.close()
        assert await record.wait("f", None, 99, 10) is None  # closed: waits end at once
    finally:
        await d.aclose()


# -- the users of the seams take the implementation they are given ------------------------------------------


class GrantedShards:
    """A ShardOwnership owning only the shards the test grants, like a lease table shared with others."""

    def __init__(self, *granted: str) -> None:
        self.granted = set(granted)
        self.claimed: list[list[str]] = []
        self.released: list[str] = []

    async def claim(self, shards: Sequence[str]) -> set[str]:
        self.claimed.append(list(shards))
        return {s for s in shards if s in self.granted}

    def owns(self, shard: str) -> bool:
        return shard in self.granted

    async def release(self, shard: str) -> None:
        self.released.append(shard)


async def test_the_shard_reader_reads_only_owned_shards_and_stops_when_one_is_lost(tmp_path: Path) -> None:
    stream = FakeStream()
    for shard in ("a", "b"):
        stream.add_shard(shard)
        stream.put(shard, "k", f"{shard}0")
    leases = GrantedShards("a")
    route = FakeRoute()
    ready = asyncio.Event()

    async def submit(envelopes: Any) -> Delivery:
        return Delivery()

    ctx = SourceContext(
        name="src", config=Settings(), routes=[route], state_dir=tmp_path, clock=SystemClock(),
        submit=submit, ready=ready.set,
        backends=SourceBackends(
            checkpoints=open_checkpoint_file, ownership=lambda **_: leases, ticks=open_schedule_file
        ),
    )  # fmt: skip

    async def open_client(stack: contextlib.AsyncExitStack) -> FakeStream:
        return stream

    source = ShardSource(ctx, open_client, starting_position="TRIM_HORIZON")
    task = asyncio.ensure_future(source.run())
    try:
        await until(lambda: len(route.delivered) == 1, "a's record")
        assert ["a", "b"] in leases.claimed  # every ready shard is claimed; only the granted one is read
        leases.granted.clear()  # another router took "a"
        await until(lambda: "a" in leases.released, "the reader of a to stop")
        assert leases.released == ["a"]  # no reader ever started on "b"
        stream.put("a", "k", "a1")
        leases.granted.add("b")
        await until(lambda: len(route.delivered) == 2, "b's record, once b is owned")
        await asyncio.sleep(0.1)  # several refreshes and polls: "a" stays unread while not owned
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [r["value"] for r in route.delivered] == ["a0", "b0"]
    saved = msgspec.json.decode((tmp_path / "fn.json").read_bytes(), type=CheckpointFile)
    assert saved.shards["a"].sequence == "101"  # what it settled before losing the shard is checkpointed


class OtherRouterFired:
    """TickClaims over the local state file, refusing the ticks another router fired."""

    def __init__(self, folder: Path, fired_elsewhere: set[float]) -> None:
        self.file = ScheduleFile(folder / "schedule.json", "nightly")
        self.fired_elsewhere = fired_elsewhere
        self.asked: list[float] = []

    async def load(self) -> ScheduleState | None:
        return await self.file.load()

    async def claim(self, tick: float) -> bool:
        self.asked.append(tick)
        return tick not in self.fired_elsewhere and await self.file.claim(tick)

    async def save(self, state: ScheduleState) -> None:
        await self.file.save(state)


async def test_a_schedule_fires_only_the_ticks_it_claims(tmp_path: Path) -> None:
    start = at(2024, 1, 1, 0, 30)
    claims = OtherRouterFired(tmp_path, {at(2024, 1, 1, 2)})
    clock, submit = FakeClock(start), Collector()
    ctx = SourceContext(
        name="nightly", config=config("cron(0 * * * ? *)"), routes=[], state_dir=tmp_path, clock=clock,
        submit=submit,
        backends=SourceBackends(
            checkpoints=open_checkpoint_file, ownership=lambda **_: SoleOwner(), ticks=lambda **_: claims
        ),
    )  # fmt: skip
    source = schedule.create(ctx)
    task = asyncio.ensure_future(source.run())
    for _ in range(5):
        await asyncio.sleep(0)
    await clock.advance(3 * 3600)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert claims.asked == [at(2024, 1, 1, hour) for hour in (1, 2, 3)]
    assert submit.times == ["2024-01-01T01:00:00Z", "2024-01-01T03:00:00Z"]  # 02:00 was not ours
    saved = await claims.load()
    assert saved is not None and saved.last_tick == at(2024, 1, 1, 3)


DAEMON_CONFIG = """
server: {port: 0}
state_dir: state
inspect: {ring_size: 5}
functions:
  f: {runtime: python3.11, handler: app.handler, code: fn}
sources:
  hourly: {kind: schedule, expression: "rate(1 hour)"}
routes:
  - {source: hourly, function: f}
"""


async def test_the_daemon_hands_every_seam_to_its_user(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    cfg = parse_config(DAEMON_CONFIG, base_dir=tmp_path, env={})
    opened: list[tuple[str, Path]] = []

    def ticks(*, source: str, folder: Path) -> TickClaims:
        opened.append((source, folder))
        return open_schedule_file(source=source, folder=folder)

    local = local_backends.local(tmp_path / "elsewhere", ring_size=3)
    chosen = dataclasses.replace(local, sources=dataclasses.replace(local.sources, ticks=ticks))
    async with Daemon(cfg, backends=chosen) as daemon:
        assert daemon.dispatcher is not None and daemon.dispatcher.queue is chosen.queue
        assert daemon.inspect is chosen.record
        await until(lambda: opened, "the schedule to open its tick claims")
        assert daemon.contexts["hourly"].backends is chosen.sources
        assert opened == [("hourly", tmp_path / "state" / "sources" / "hourly")]
    assert (tmp_path / "elsewhere" / "queue.db").exists() and not (tmp_path / "state" / "queue.db").exists()

    async with Daemon(cfg) as default:  # without backends: today's, from the config
        assert isinstance(default.backends.queue, DurableQueue)
        assert default.backends.queue.path == tmp_path / "state" / "queue.db"
        assert isinstance(default.inspect, SqliteRecord)  # record.enabled by default: durable
        assert default.inspect.path == tmp_path / "state" / "record.db"
