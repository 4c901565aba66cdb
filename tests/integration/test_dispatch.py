"""The dispatcher with real function instances (processes speaking the Runtime API)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.core.clock import FakeClock
from router.core.errors import REASON_ACCOUNT, REASON_RESERVED, ShuttingDown, Throttled
from router.core.results import InvocationResult
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.registry import definitions_from_config
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec
from router.validate import parse_config
from tests.support import FUNCTIONS

Make = Callable[..., Any]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[Dispatcher] = []

    async def build(functions: str, *, concurrency: int = 10, **kw: Any) -> Dispatcher:
        # isolation off: functions here leave marks in the test's folder
        text = (
            f"account: {{concurrency: {concurrency}, unreserved_min: 0}}\ninvoker: {{isolation: 'off'}}\n"
            f"functions:\n{functions}"
        )
        config = parse_config(text, base_dir=tmp_path, env={"FUNCTIONS": str(FUNCTIONS)})
        d = Dispatcher(config, state_dir=tmp_path / "state", **kw)
        await d.set_functions(definitions_from_config(config, tmp_path / "state"))
        made.append(d)
        await d.start()
        return d

    yield build
    for d in made:
        await d.aclose()


def fn(name: str, code: str, **settings: Any) -> str:
    base = {
        "runtime": "python3.11",
        "handler": "app.handler",
        "code": f"${{FUNCTIONS}}/{code}",
        "timeout_s": 2,
    }
    return f"  {name}: {json.dumps({**base, **settings})}\n"


async def until(condition: Callable[[], bool], what: str, steps: int = 2000) -> None:
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def alive(pids: list[int | None]) -> list[int | None]:
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")]


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


async def test_reserved_two_five_simultaneous_calls_two_succeed_three_throttled(make: Make) -> None:
    d = await make(fn("sleep", "sleep", reserved_concurrency=2))
    calls = [d.invoke("sleep", b'{"seconds": 0.3}') for _ in range(5)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if isinstance(r, InvocationResult)]
    throttled = [r for r in results if isinstance(r, Throttled)]
    assert len(ok) == 2 and len(throttled) == 3
    assert all(r.ok and json.loads(r.payload) == {"slept": 0.3} for r in ok)
    assert {t.reason for t in throttled} == {REASON_RESERVED}
    stats = d.stats().functions["sleep"]
    assert (stats.throttles, stats.invocations, stats.in_use, stats.idle) == (3, 2, 0, 2)


async def test_account_limit_across_two_functions(make: Make) -> None:
    d = await make(fn("a", "sleep") + fn("b", "sleep"), concurrency=3)
    held = [asyncio.create_task(d.invoke(name, b'{"seconds": 0.5}')) for name in ("a", "a", "b")]
    await until(lambda: d.accounting.in_use() == 3, "three calls in flight")
    for name in ("a", "b"):
        with pytest.raises(Throttled) as e:
            await d.invoke(name, b'{"seconds": 0}')
        assert e.value.reason == REASON_ACCOUNT
    assert all(r.ok for r in await asyncio.gather(*held))
    assert (await d.invoke("b", b'{"seconds": 0}')).ok  # capacity is back
    assert d.stats().account.in_use == 0


async def test_provisioned_instances_are_initialised_before_the_first_call(make: Make) -> None:
    d = await make(fn("env", "environ", provisioned_concurrency=2))
    stats = d.stats().functions["env"]
    assert (stats.idle, stats.provisioned, stats.cold_starts) == (2, 2, 0)
    result = await d.invoke("env", b"{}")
    assert not result.cold and result.init_ms is None
    assert json.loads(result.payload)["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert d.stats().functions["env"].warm_starts == 1


async def test_idle_instances_are_reaped_to_zero_and_their_processes_end(make: Make, tmp_path: Path) -> None:
    clock = FakeClock()
    started: list[Instance] = []

    async def factory(spec: FunctionSpec, init_type: str, request_id: str) -> Instance:
        instance = await Instance.start(
            spec, billing=d.config.billing, init_type=init_type, request_id=request_id
        )
        started.append(instance)
        return instance

    d = await make(fn("s", "sleep", idle_timeout_s=60), clock=clock, instance_factory=factory)
    await asyncio.gather(*(d.invoke("s", b'{"seconds": 0.2}') for _ in range(2)))
    assert d.stats().functions["s"].idle == 2
    pids = [i.pid for i in started]
    await clock.advance(59)
    assert d.stats().functions["s"].idle == 2
    await clock.advance(2)
    await until(lambda: d.stats().functions["s"].idle == 0, "reaped")
    await until(lambda: not alive(pids), "instance processes gone")
    result = await d.invoke("s", b'{"seconds": 0}')
    assert result.cold  # scaled to zero: the next call starts cold


async def test_async_retries_then_on_failure_record_and_on_success_record(make: Make, tmp_path: Path) -> None:
    failed, ok = tmp_path / "failed", tmp_path / "ok"
    d = await make(
        fn("fail", "fail", **{"async": {"on_failure": {"directory": str(failed)}}})
        + fn("echo", "echo", **{"async": {"on_success": {"directory": str(ok)}}}),
        retry_delays_s=(0.05, 0.1),
    )
    failing = await d.enqueue("fail", b'{"message": "no good"}')
    fine = await d.enqueue("echo", b'{"n": 7}')
    await until(lambda: records(failed) and records(ok), "both records")
    (record,) = records(failed)
    assert record["requestContext"]["requestId"] == failing
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == {"message": "no good"}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "no good"
    (success,) = records(ok)
    assert success["requestContext"]["requestId"] == fine
    assert success["requestContext"]["condition"] == "Success"
    assert success["responsePayload"]["event"] == {"n": 7}
    assert success["responsePayload"]["request_id"] == fine  # the function saw the same request id
    assert d.stats().functions["fail"].invocations == 3
    await until(lambda: d.stats().account.queue_depth == 0, "queue empty")


async def test_a_crashing_function_is_a_function_error_and_the_router_keeps_serving(
    make: Make, tmp_path: Path
) -> None:
    failed = tmp_path / "failed"
    d = await make(
        fn("crash", "crash", **{"async": {"max_retries": 1, "on_failure": {"directory": str(failed)}}})
        + fn("echo", "echo"),
        retry_delays_s=(0.05,),
    )
    sync = await d.invoke("crash", b"{}")
    assert sync.error_type == "Runtime.ExitError"
    await d.enqueue("crash", b'{"code": 5}')
    await until(lambda: records(failed), "crash record")
    (record,) = records(failed)
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert (await d.invoke("echo", b"{}")).ok
    stats = d.stats().functions["crash"]
    assert (stats.cold_starts, stats.idle, stats.in_use) == (3, 0, 0)


async def test_drain_finishes_in_flight_calls_and_refuses_new_ones(make: Make, tmp_path: Path) -> None:
    marks = {"RECORD_DIR": str(tmp_path / "marks")}
    d = await make(
        fn("sleep", "sleep") + fn("rec", "dispatch_record", reserved_concurrency=1, environment=marks)
    )
    call = asyncio.create_task(d.invoke("sleep", b'{"seconds": 0.3}'))
    for n in range(3):
        await d.enqueue("rec", json.dumps({"n": n, "sleep": 0.3}).encode())
    await until(lambda: d.accounting.in_use() == 2, "both running")
    await d.drain(10)
    assert (await call).ok
    with pytest.raises(ShuttingDown):
        await d.invoke("sleep", b"{}")
    # The async event in flight finished; the two that had not started are still stored.
    assert len(os.listdir(tmp_path / "marks")) == 1
    assert d.stats().functions["rec"].queue_depth == 2


async def test_on_failure_record_to_a_kafka_topic(make: Make, kafka_broker: str) -> None:
    from aiokafka import AIOKafkaConsumer

    target = {"kafka": {"brokers": [kafka_broker], "topic": "dispatch-failures"}}
    d = await make(fn("fail", "fail", **{"async": {"max_retries": 0, "on_failure": target}}))
    request_id = await d.enqueue("fail", b'{"message": "to kafka"}')
    await until(lambda: d.stats().account.queue_depth == 0, "record produced")
    consumer = AIOKafkaConsumer(
        "dispatch-failures", bootstrap_servers=kafka_broker, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert message.key == request_id.encode()
    record = json.loads(message.value)
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorMessage"] == "to kafka"


async def test_aclose_leaves_no_instance_process_behind(tmp_path: Path) -> None:
    started: list[Instance] = []
    text = f"functions:\n{fn('p', 'sleep', provisioned_concurrency=2)}{fn('s', 'sleep')}"
    config = parse_config(text, base_dir=tmp_path, env={"FUNCTIONS": str(FUNCTIONS)})

    async def factory(spec: FunctionSpec, init_type: str, request_id: str) -> Instance:
        instance = await Instance.start(
            spec, billing=config.billing, init_type=init_type, request_id=request_id
        )
        started.append(instance)
        return instance

    d = Dispatcher(config, state_dir=tmp_path / "state", instance_factory=factory)
    await d.set_functions(definitions_from_config(config, tmp_path / "state"))
    await d.start()
    busy = asyncio.create_task(d.invoke("s", b'{"seconds": 30}'))  # a busy instance
    await until(lambda: d.stats().functions["s"].busy == 1, "busy")
    await d.invoke("s", b'{"seconds": 0}')  # and an idle one
    pids = [i.pid for i in started]
    assert len(pids) == 4
    await d.drain(0)
    await d.aclose()
    with pytest.raises(ShuttingDown):
        await busy
    assert alive(pids) == []
