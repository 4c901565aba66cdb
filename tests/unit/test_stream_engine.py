"""The stream engine with fake routes: ordering, batching, checkpoints, back-pressure, parallel lanes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from router.config import BatchConfig, OnErrorConfig
from router.core.clock import FakeClock
from router.core.errors import Throttled
from router.sources.stream.engine import MappingSettings
from tests.unit.stream_fakes import FakeRoute, error, harness, ok, records


async def test_batches_by_size_in_order_and_checkpoints_the_end() -> None:
    route = FakeRoute()
    async with harness(route, batch_size=3) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 10))
        await h.until("p0", 9)
    assert route.calls == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert h.mapping.stats.delivered == 10


async def test_window_holds_a_batch_until_it_expires_or_fills() -> None:
    clock = FakeClock()
    route = FakeRoute()
    async with harness(route, clock=clock, batch_size=5, window_s=1.0) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 2))
        await clock.advance(0.5)
        assert route.calls == []
        h.mapping.offer("p0", records(2, 1))
        await clock.advance(0.6)  # the window started at the first record
        await h.until("p0", 2)
        assert route.calls == [[0, 1, 2]]
        h.mapping.offer("p0", records(3, 5))  # a full batch does not wait for the window
        await h.until("p0", 7)
        assert route.calls[-1] == [3, 4, 5, 6, 7]


async def test_payload_cap_closes_a_batch() -> None:
    route = FakeRoute()
    async with harness(route, batch_size=100, max_bytes=25) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 5, size=10))
        await h.until("p0", 4)
    assert route.calls == [[0, 1], [2, 3], [4]]


async def test_a_failing_partition_does_not_block_another() -> None:
    def handler(recs):
        return error() if recs[0]["value"] == "bad" else ok()

    route = FakeRoute(handler)
    async with harness(route, batch_size=10, max_retries=-1) as h:
        h.mapping.open("bad")
        h.mapping.open("good")
        h.mapping.offer("bad", records(0, 3, value=lambda n: "bad"))
        for start in range(0, 50, 5):
            h.mapping.offer("good", records(start, 5))
        await h.until("good", 49)
        assert "bad" not in h.kind.checkpoints
        assert [r["position"] for r in route.delivered] == list(range(50))


async def test_filtered_records_are_settled_and_the_checkpoint_moves_past_them() -> None:
    route = FakeRoute(predicate=lambda env: env.record["position"] % 2 == 0)
    async with harness(route, batch_size=100) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 9))
        await h.until("p0", 8)
        h.mapping.offer("p0", records(9, 1))  # only filtered-out records: no call, checkpoint still moves
        await h.until("p0", 9)
    assert [r["position"] for r in route.delivered] == [0, 2, 4, 6, 8]
    assert h.mapping.stats.filtered == 5


async def test_dispatch_errors_back_off_without_skipping_or_counting_retries() -> None:
    refusals = 3

    def handler(recs):
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise Throttled("over the limit")
        return ok()

    route = FakeRoute(handler)
    async with harness(route, batch_size=2, max_retries=0) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 4))
        await h.until("p0", 3)
    assert [r["position"] for r in route.delivered] == [0, 1, 2, 3]
    assert h.mapping.stats.throttled == 3
    assert h.mapping.stats.retries == 0
    assert h.sink.docs == []


async def test_parallel_lanes_keep_order_per_key_and_checkpoint_only_the_settled_prefix() -> None:
    release = asyncio.Event()

    async def handler(recs):
        if recs[0]["key"] == "slow":
            await release.wait()
        return ok()

    route = FakeRoute(handler)
    keys = ["slow", "a", "b", "c"]
    async with harness(route, batch_size=2, parallelization_factor=4) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 40, keys=lambda n: keys[n % 4]))
        for _ in range(200):
            await asyncio.sleep(0)
        # Other keys went ahead while the slow key's lane is stuck, but the checkpoint is held before it.
        assert h.kind.checkpoints.get("p0", -1) < 0
        assert any(r["key"] != "slow" for r in route.delivered)
        release.set()
        await h.until("p0", 39)
    for key in keys:
        got = [r["position"] for r in route.delivered if r["key"] == key]
        assert got == sorted(got) and len(got) == 10


async def test_back_pressure_room_shrinks_and_recovers() -> None:
    gate = asyncio.Event()

    async def handler(recs):
        await gate.wait()
        return ok()

    route = FakeRoute(handler)
    async with harness(route, batch_size=10, buffer_records=50) as h:
        h.mapping.open("p0")
        assert h.mapping.room("p0") == 50
        h.mapping.offer("p0", records(0, 70))
        for _ in range(1000):  # the lane takes a first batch of 10 into flight
            if route.calls:
                break
            await asyncio.sleep(0)
        assert route.calls == [list(range(10))]
        assert h.mapping.room("p0") == 50 - 60
        waiter = asyncio.ensure_future(h.mapping.wait_room("p0"))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        gate.set()
        await asyncio.wait_for(waiter, 5)
        assert h.mapping.room("p0") > 0
        await h.until("p0", 69)


async def test_close_keeps_the_checkpoint_before_in_flight_and_buffered_records() -> None:
    started = asyncio.Event()

    async def handler(recs):
        if recs[0]["position"] >= 4:
            started.set()
            await asyncio.Event().wait()  # hangs: in flight when the partition is revoked
        return ok()

    route = FakeRoute(handler)
    async with harness(route, batch_size=2) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 10))
        await started.wait()
        await h.mapping.close("p0", grace_s=0.01)
        assert h.kind.checkpoints["p0"] == 3
        assert "p0" not in h.mapping.partitions
        h.mapping.offer("p0", records(10, 1))  # a late fetch for a revoked partition is dropped
    assert route.calls == [[0, 1], [2, 3], [4, 5]]


async def test_settings_come_from_the_route_with_the_kind_default_window() -> None:
    route = FakeRoute(
        batch=BatchConfig(size=7, parallelization_factor=3),
        on_error=OnErrorConfig(max_retries=4, bisect=True, report_batch_item_failures=True),
    )
    s = MappingSettings.for_route(route, default_window_s=0.5)  # type: ignore[arg-type]
    assert (s.batch_size, s.window_s, s.parallelization_factor) == (7, 0.5, 3)
    assert (s.max_retries, s.bisect, s.report_batch_item_failures) == (4, True, True)
    explicit = FakeRoute(batch=BatchConfig(window_s=0))
    assert MappingSettings.for_route(explicit, default_window_s=0.5).window_s == 0  # type: ignore[arg-type]


async def test_a_kind_that_renders_its_records_needs_no_envelopes() -> None:
    """Records without an envelope: the kind renders the event (also for the failure record) and the first
    record's trace goes with the call."""
    from router.core.clock import SystemClock
    from router.sources.stream.engine import StreamMapping, StreamRecord
    from router.sources.stream.stats import MappingStats
    from tests.unit.stream_fakes import FakeKind, MemorySink

    class RenderingKind(FakeKind):
        def render(self, partition: str, recs: list[StreamRecord]) -> bytes:
            return msgspec.json.encode({"Records": [r.native for r in recs]})

    class NativeRoute(FakeRoute):
        """Renders nothing itself (the kind does) and remembers each call's trace."""

        def __init__(self, handler: Any) -> None:
            super().__init__(handler)
            self.traces: list[str | None] = []

        def render(self, envelopes: Any) -> bytes:
            raise AssertionError("the kind renders native records")

        async def invoke(
            self, payload: bytes, *, trace: str | None = None, client_context: str | None = None
        ) -> Any:
            self.traces.append(trace)
            return await super().invoke(payload, trace=trace)

    def handler(recs: list[dict[str, Any]]) -> Any:
        return error() if any(r["value"] == "bad" for r in recs) else ok()

    route = NativeRoute(handler)
    sink = MemorySink()
    native = [
        StreamRecord(
            n,
            None,
            1e12,
            10,
            None,
            trace=f"Root=1-{n}",
            native={"position": n, "value": "bad" if n == 4 else n},
        )
        for n in range(6)
    ]
    kind = RenderingKind()
    async with asyncio.TaskGroup() as tg:
        mapping = StreamMapping(
            route,  # type: ignore[arg-type]
            kind,
            MappingSettings(batch_size=3, max_retries=0, bisect=True, retry_delay_s=0.001),
            sink=sink,  # type: ignore[arg-type]
            clock=SystemClock(),
            stats=MappingStats("src", "fn"),
            tasks=tg,
        )
        assert not mapping.filtering  # no predicate, no event names: records are not offered to a filter
        mapping.open("p0")
        mapping.offer("p0", native)
        await asyncio.wait_for(kind.reached("p0", 5), 5)
        await mapping.close_all(0)
    assert route.calls[:2] == [[0, 1, 2], [3, 4, 5]]
    assert route.traces[:2] == ["Root=1-0", "Root=1-3"]
    assert sink.positions() == [4]  # bisected down to the bad record, given up with its own event
