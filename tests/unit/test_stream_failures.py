"""The stream engine's error handling: retries, bisection, partial batch responses, age, destinations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from router.config import Destination
from router.core.clock import FakeClock, SystemClock
from router.core.results import InvocationResult
from router.sources.stream.failure import (
    PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    DirectorySink,
    DiscardSink,
    build_sink,
    failure_record,
)
from tests.unit.stream_fakes import FakeRoute, error, harness, ok, records


def poison(bad: set[int]):
    def handler(recs):
        return error("poisoned") if any(r["position"] in bad for r in recs) else ok()

    return handler


async def test_retries_then_gives_up_to_the_destination() -> None:
    route = FakeRoute(poison({1}))
    async with harness(route, batch_size=3, max_retries=2) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 6))
        await h.until("p0", 5)
    assert route.calls == [[0, 1, 2]] * 3 + [[3, 4, 5]]
    [doc] = h.sink.docs
    assert doc["requestContext"]["condition"] == RETRIES_EXHAUSTED
    assert doc["requestContext"]["approximateInvokeCount"] == 3
    assert doc["responseContext"]["functionError"] == "Unhandled"
    assert doc["FakeBatchInfo"] == {"partition": "p0", "start": 0, "end": 2, "batchSize": 3}
    assert h.sink.positions() == [0, 1, 2]
    assert h.mapping.stats.retries == 2 and h.mapping.stats.failed == 3


async def test_bisect_isolates_the_poisoned_record() -> None:
    route = FakeRoute(poison({37}))
    async with harness(route, batch_size=100, max_retries=1, bisect=True) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 100))
        await h.until("p0", 99)
    assert h.sink.positions() == [37]
    delivered = [r["position"] for r in route.delivered]
    assert delivered == [n for n in range(100) if n != 37]  # each once, in order
    assert h.mapping.stats.bisections == 6  # [0,100) [0,50) [25,50) [37,50) [37,43) [37,40) -> [37]
    assert route.calls.count([37]) == 2  # the single record: first call and one retry


async def test_partial_batch_response_checkpoints_before_the_lowest_failure() -> None:
    fail_once = {4}

    def handler(recs):
        hit = sorted(fail_once & {r["position"] for r in recs})
        fail_once.clear()
        return ok({"batchItemFailures": [{"itemIdentifier": str(p)} for p in hit]})

    route = FakeRoute(handler)
    async with harness(route, batch_size=10, report_batch_item_failures=True, max_retries=3) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 10))
        await h.until("p0", 9)
    assert route.calls == [list(range(10)), list(range(4, 10))]
    assert h.mapping.stats.retries == 1


async def test_partial_batch_response_naming_an_unknown_record_fails_the_whole_batch() -> None:
    answers = [
        {"batchItemFailures": [{"itemIdentifier": "999"}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"wrongKey": "1"}]},
        {"batchItemFailures": []},
    ]

    route = FakeRoute(lambda recs: ok(answers.pop(0)))
    async with harness(route, batch_size=3, report_batch_item_failures=True) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 3))
        await h.until("p0", 2)
    assert route.calls == [[0, 1, 2]] * 4


async def test_partial_batch_response_is_ignored_unless_enabled() -> None:
    route = FakeRoute(lambda recs: ok({"batchItemFailures": [{"itemIdentifier": "1"}]}))
    async with harness(route, batch_size=3) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 3))
        await h.until("p0", 2)
    assert route.calls == [[0, 1, 2]]


async def test_expired_records_go_to_the_destination_without_a_call() -> None:
    clock = FakeClock()
    route = FakeRoute()
    async with harness(route, clock=clock, batch_size=10, max_record_age_s=60) as h:
        h.mapping.open("p0")
        old = records(0, 3, arrival=clock.time() - 61)
        fresh = records(3, 2, arrival=clock.time() - 1)
        h.mapping.offer("p0", old + fresh)
        await clock.advance(0.01)
        await h.until("p0", 4)
    assert route.calls == [[3, 4]]
    [doc] = h.sink.docs
    assert doc["requestContext"]["condition"] == RECORD_AGE_EXCEEDED
    assert doc["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in doc
    assert h.sink.positions() == [0, 1, 2]


async def test_records_expire_while_being_retried() -> None:
    clock = FakeClock()
    route = FakeRoute(poison({0}))
    async with harness(
        route,
        clock=clock,
        batch_size=10,
        max_record_age_s=60,
        max_retries=-1,
        retry_delay_s=10,
        retry_delay_max_s=10,
    ) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 2, arrival=clock.time()))
        for _ in range(8):
            await clock.advance(10)
        await h.until("p0", 1)
    assert 5 <= len(route.calls) <= 8
    assert h.sink.docs[0]["requestContext"]["condition"] == RECORD_AGE_EXCEEDED
    assert h.sink.positions() == [0, 1]


async def test_a_record_over_the_payload_cap_is_given_up_and_its_batch_split() -> None:
    big = "x" * (6 * 1024 * 1024)
    route = FakeRoute()
    async with harness(route, batch_size=10) as h:
        h.mapping.open("p0")
        h.mapping.offer("p0", records(0, 4, value=lambda n: big if n == 2 else n))
        await h.until("p0", 3)
    assert [r["position"] for r in route.delivered] == [0, 1, 3]
    assert h.sink.docs[0]["requestContext"]["condition"] == PAYLOAD_SIZE_EXCEEDED


async def test_directory_sink_writes_one_json_file_per_failure_atomically(tmp_path: Path) -> None:
    sink = build_sink(
        Destination(directory="failed"), base_dir=tmp_path, route=FakeRoute(), clock=SystemClock()
    )
    assert isinstance(sink, DirectorySink)
    doc = failure_record(
        condition=RETRIES_EXHAUSTED,
        function="fn",
        region="eu-west-1",
        account_id="111122223333",
        info_key="KafkaBatchInfo",
        info={"partition": 0},
        event={"records": {}},
        result=InvocationResult(request_id="r1", payload=b"{}", function_error="Unhandled"),
        invokes=3,
        now=1_700_000_000.5,
    )
    await sink.put(doc, partition="clicks-0", first=5, last=9)
    [written] = list((tmp_path / "failed").iterdir())
    assert written.name.endswith(".json") and "-clicks-0-5-9-" in written.name
    data = json.loads(written.read_text())
    assert data["requestContext"] == {
        "requestId": "r1",
        "condition": RETRIES_EXHAUSTED,
        "approximateInvokeCount": 3,
        "functionArn": "arn:aws:lambda:eu-west-1:111122223333:function:fn",
    }
    assert data["timestamp"] == "2023-11-14T22:13:20.500Z"
    assert data["version"] == "1.0" and data["payload"] == {"records": {}}


async def test_directory_sink_retries_until_it_can_write(tmp_path: Path) -> None:
    blocker = tmp_path / "failed"
    blocker.write_text("a file where the folder should be")
    clock = FakeClock()
    sink = DirectorySink(blocker, clock)
    task = asyncio.ensure_future(sink.put({"x": 1}, partition="p", first=0, last=0))
    for _ in range(8):  # each failed write (in a thread) is followed by a wait on the clock
        await _until(lambda: clock.sleepers == 1 or task.done())
        assert not task.done()
        await clock.advance(5)  # the longest wait
    blocker.unlink()
    # the write woken by the last advance may already run after the unlink and succeed: then no wait follows
    await _until(lambda: clock.sleepers == 1 or task.done())
    if not task.done():
        await clock.advance(5)
    await asyncio.wait_for(task, 10)
    assert len(list(blocker.iterdir())) == 1


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("never happened")


async def test_no_destination_discards() -> None:
    sink = build_sink(None, base_dir=Path("."), route=FakeRoute(), clock=SystemClock())
    assert isinstance(sink, DiscardSink)
    await sink.put({}, partition="p", first=0, last=0)
