"""Asynchronous invocation (fake instances, real SQLite queue, fake clock): retries, age, destinations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.config import Destination
from router.core.clock import FakeClock
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.queue import DurableQueue, QueuedEvent
from tests.unit.dispatch_fakes import FakeFactory, definition, directory, router_config, until

Make = Callable[..., Any]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[Dispatcher] = []

    async def build(*defs: Any, concurrency: int = 100, **kw: Any) -> Dispatcher:
        kw.setdefault("instance_factory", FakeFactory())
        kw.setdefault("clock", FakeClock())
        d = Dispatcher(router_config(tmp_path, concurrency), state_dir=tmp_path / "state", **kw)
        await d.set_functions({x.name: x for x in defs})
        await d.start()
        made.append(d)
        return d

    yield build
    for d in made:
        await d.aclose()


def payload(**kw: Any) -> bytes:
    return json.dumps(kw).encode()


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def invocations(d: Dispatcher, name: str) -> int:
    return d.stats().functions[name].invocations


async def test_success_goes_to_on_success_and_leaves_the_queue(make: Make, tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    d = await make(definition("f", tmp_path, async_={"on_success": directory(ok)}))
    request_id = await d.enqueue("f", payload(n=1), source="test")
    await until(lambda: records(ok), "success record")
    await until(lambda: d.stats().functions["f"].queue_depth == 0)
    (record,) = records(ok)
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"n": 1}
    assert not list(ok.glob(".*.tmp"))


async def test_function_errors_retry_after_one_then_two_minutes_then_on_failure(
    make: Make, tmp_path: Path
) -> None:
    clock, failed = FakeClock(), tmp_path / "failed"
    d = await make(definition("f", tmp_path, async_={"on_failure": directory(failed)}), clock=clock)
    request_id = await d.enqueue("f", payload(fail=True))
    await until(lambda: invocations(d, "f") == 1)
    await clock.advance(59.9)
    assert invocations(d, "f") == 1
    await clock.advance(0.1)
    await until(lambda: invocations(d, "f") == 2, "retry after 1 min")
    await clock.advance(119.9)
    assert invocations(d, "f") == 2
    await clock.advance(0.1)
    await until(lambda: records(failed), "failure record")
    assert invocations(d, "f") == 3
    (record,) = records(failed)
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"] == {"errorType": "ValueError", "errorMessage": "boom"}
    await until(lambda: d.stats().account.queue_depth == 0)


async def test_max_retries_zero_and_configurable_delays(make: Make, tmp_path: Path) -> None:
    clock, failed = FakeClock(), tmp_path / "failed"
    d = await make(
        definition("once", tmp_path, async_={"max_retries": 0, "on_failure": directory(failed)}),
        definition("twice", tmp_path, async_={"max_retries": 1, "on_failure": directory(failed)}),
        clock=clock, retry_delays_s=(5.0, 10.0),
    )  # fmt: skip
    await d.enqueue("once", payload(fail=True))
    await d.enqueue("twice", payload(fail=True))
    await until(lambda: len(records(failed)) == 1 and invocations(d, "twice") == 1)
    assert records(failed)[0]["requestContext"]["approximateInvokeCount"] == 1
    await clock.advance(5)
    await until(lambda: len(records(failed)) == 2)
    assert invocations(d, "twice") == 2


async def test_reserved_zero_sends_events_straight_to_on_failure(make: Make, tmp_path: Path) -> None:
    failed = tmp_path / "failed"
    d = await make(
        definition("off", tmp_path, reserved_concurrency=0, async_={"on_failure": directory(failed)})
    )
    request_id = await d.enqueue("off", payload(n=1))
    await until(lambda: records(failed))
    (record,) = records(failed)
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["responseContext"]["statusCode"] == 429
    assert record["responsePayload"]["errorType"] == "TooManyRequestsException"
    assert invocations(d, "off") == 0


async def test_an_event_past_its_maximum_age_is_given_up(make: Make, tmp_path: Path) -> None:
    clock, failed = FakeClock(), tmp_path / "failed"
    d = await make(
        definition("f", tmp_path, async_={"max_event_age_s": 60, "on_failure": directory(failed)}),
        clock=clock,
    )
    await d.enqueue("f", payload(fail=True))
    await until(lambda: invocations(d, "f") == 1)
    await clock.advance(30)
    assert d.stats().functions["f"].oldest_age_s == 30
    await clock.advance(30)
    await until(lambda: records(failed))
    (record,) = records(failed)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert invocations(d, "f") == 1


async def test_system_errors_back_off_exponentially_without_counting_attempts(
    make: Make, tmp_path: Path
) -> None:
    clock, factory = FakeClock(), FakeFactory()
    factory.launch_error = OSError("cannot fork")
    d = await make(definition("f", tmp_path), clock=clock, instance_factory=factory)
    await d.enqueue("f", payload(n=1))
    text = lambda: d.metrics.render().decode()  # noqa: E731
    retries = 'router_async_retries_total{cause="system_error",function="f"}'
    await until(lambda: f"{retries} 1.0" in text())
    for n, delay in ((2, 1), (3, 2), (4, 4)):
        await clock.advance(delay - 0.01)
        assert f"{retries} {n - 1}.0" in text()
        await clock.advance(0.01)
        await until(lambda n=n: f"{retries} {n}.0" in text(), f"system retry {n}")
    factory.launch_error = None
    await clock.advance(8)
    await until(lambda: d.stats().functions["f"].queue_depth == 0)
    assert invocations(d, "f") == 1


async def test_events_wait_for_capacity_instead_of_failing(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path, reserved_concurrency=1), instance_factory=factory)
    for _ in range(4):
        await d.enqueue("f", payload(gate="g"))
    await until(lambda: d.stats().functions["f"].in_use == 1)
    assert d.stats().functions["f"].queue_depth == 4
    factory.open("g")
    await until(lambda: d.stats().functions["f"].queue_depth == 0)
    assert invocations(d, "f") == 4 and d.stats().functions["f"].throttles == 0
    assert len(factory.instances) == 1  # one at a time, always the same warm instance


async def test_functions_take_turns_for_shared_capacity(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(
        definition("a", tmp_path), definition("b", tmp_path), concurrency=1, instance_factory=factory
    )
    for i in range(3):
        await d.enqueue("a", payload(gate=f"a{i}"))
    await until(lambda: d.stats().functions["a"].in_use == 1)
    await d.enqueue("b", payload(n=1))
    factory.open("a0")
    await until(lambda: invocations(d, "b") == 1, "b ran before a's backlog")
    assert invocations(d, "a") == 1
    factory.open("a1")
    factory.open("a2")
    await until(lambda: d.stats().account.queue_depth == 0)


async def test_a_function_destination_receives_the_record_as_an_event(make: Make, tmp_path: Path) -> None:
    ok = tmp_path / "dlq-ok"
    d = await make(
        definition("f", tmp_path, async_={"max_retries": 0, "on_failure": Destination(function="dlq")}),
        definition("dlq", tmp_path, async_={"on_success": directory(ok)}),
    )
    request_id = await d.enqueue("f", payload(fail=True))
    await until(lambda: records(ok))
    event = records(ok)[0]["requestPayload"]
    assert event["requestContext"]["requestId"] == request_id
    assert event["requestContext"]["condition"] == "RetriesExhausted"


async def test_stored_events_run_after_a_restart_with_the_same_request_id(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path), instance_factory=factory)
    first = await d.enqueue("f", payload(gate="never"))
    await until(lambda: d.stats().functions["f"].in_use == 1)
    await d.drain(0)  # the running attempt is cancelled; the event stays stored
    await d.aclose()
    factory2 = FakeFactory()
    factory2.open("never")
    d2 = await make(definition("f", tmp_path), instance_factory=factory2)
    await until(lambda: d2.stats().functions["f"].queue_depth == 0)
    assert [r.request_id for r in factory2.requests] == [first]


async def test_events_of_an_undefined_function_wait_until_it_is_defined(make: Make, tmp_path: Path) -> None:
    d = await make(definition("f", tmp_path))
    await d.drain(0)
    await d.aclose()
    queue = DurableQueue(tmp_path / "state" / "queue.db")
    await queue.open()
    event = QueuedEvent(id="req-1", function="later", enqueued_at=FakeClock().time(), not_before=0)
    await queue.put(event, payload(n=1))
    await queue.aclose()
    factory = FakeFactory()
    d2 = await make(definition("f", tmp_path), instance_factory=factory)
    assert d2.stats().functions["later"].queue_depth == 1
    await d2.set_functions({"f": definition("f", tmp_path), "later": definition("later", tmp_path)})
    await until(lambda: d2.stats().account.queue_depth == 0)
    assert [r.request_id for r in factory.requests] == ["req-1"]


async def test_queue_group_commits_and_reloads(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db")
    assert await queue.open() == []
    events = [
        QueuedEvent(id=f"e{i}", function="f" if i % 2 else "g", enqueued_at=i, not_before=i)
        for i in range(200)
    ]
    await asyncio.gather(*(queue.put(e, payload(i=i)) for i, e in enumerate(events)))
    assert (queue.depth(), queue.depth("f"), queue.oldest("f"), queue.oldest()) == (200, 100, 1, 0)
    events[3].attempts, events[3].not_before = 2, 99.0
    await queue.update(events[3])
    await queue.delete(events[0])
    await queue.aclose()
    again = DurableQueue(tmp_path / "q.db")
    loaded = {e.id: e for e in await again.open()}
    assert len(loaded) == 199 and "e0" not in loaded
    assert (loaded["e3"].attempts, loaded["e3"].not_before) == (2, 99.0)
    assert await again.payload("e7") == payload(i=7)
    await again.aclose()


async def test_hundreds_of_mixed_async_events_settle_with_zero_in_use(make: Make, tmp_path: Path) -> None:
    clock, failed = FakeClock(), tmp_path / "failed"
    retry_once = {"max_retries": 1, "on_failure": directory(failed)}
    d = await make(
        definition("a", tmp_path, reserved_concurrency=3, async_=retry_once),
        definition("b", tmp_path, async_={"max_retries": 1}),
        concurrency=8, clock=clock, retry_delays_s=(1.0,),
    )  # fmt: skip
    bodies = [payload(n=1), payload(fail=True), payload(crash=True)]
    await asyncio.gather(*(d.enqueue("ab"[i % 2], bodies[i % 3]) for i in range(300)))
    await until(lambda: invocations(d, "a") + invocations(d, "b") == 300, "first attempts done")
    await until(lambda: d.stats().account.queue_depth == 200, "successes deleted, failures rescheduled")
    await clock.advance(1)
    await until(lambda: d.stats().account.queue_depth == 0, "all settled")
    assert d.accounting.in_use() == 0 and d.accounting.unreserved_in_use == 0
    assert len(records(failed)) == 100  # a's failing and crashing events, after one retry each
    assert invocations(d, "a") + invocations(d, "b") == 100 + 200 * 2


async def test_settled_waits_until_the_event_has_run(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    gate = factory.gate("f")
    d = await make(definition("f", tmp_path), instance_factory=factory)
    request_id = await d.enqueue("f", payload(gate="f"), source="test")
    waiter = asyncio.create_task(d.settled([request_id, "unknown-id"]))
    await until(lambda: factory.requests, "the event started")
    await asyncio.sleep(0.05)
    assert not waiter.done()  # still running behind the gate
    gate.set()
    await asyncio.wait_for(waiter, 10)
    assert d.stats().functions["f"].queue_depth == 0
