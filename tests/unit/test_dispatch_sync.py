"""Synchronous calls through the dispatcher (fake instances): throttles, exact counts, drain, metrics."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from router.core.clock import FakeClock
from router.core.errors import REASON_ACCOUNT, REASON_RESERVED, FunctionNotFound, ShuttingDown, Throttled
from router.core.results import InvocationResult
from router.dispatch.dispatcher import Call, Dispatcher
from router.metrics import Metrics
from tests.unit.dispatch_fakes import FakeFactory, definition, router_config, until

Make = Callable[..., Any]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[Dispatcher] = []

    async def build(
        *defs: Any, concurrency: int = 100, clock: FakeClock | None = None, **kw: Any
    ) -> Dispatcher:
        kw.setdefault("instance_factory", FakeFactory())
        d = Dispatcher(
            router_config(tmp_path, concurrency),
            state_dir=tmp_path / "state",
            clock=clock or FakeClock(),
            **kw,
        )
        await d.set_functions({x.name: x for x in defs})
        await d.start()
        made.append(d)
        return d

    yield build
    for d in made:
        await d.aclose()


def payload(**kw: Any) -> bytes:
    return json.dumps(kw).encode()


async def outcomes(calls: list[asyncio.Task[InvocationResult]]) -> list[Any]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def test_reserved_two_and_five_simultaneous_calls(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path, reserved_concurrency=2), instance_factory=factory)
    calls = [asyncio.create_task(d.invoke("f", payload(gate="g"))) for _ in range(5)]
    await until(lambda: sum(c.done() for c in calls) == 3, "three throttled at once")
    assert d.stats().functions["f"].in_use == 2
    factory.open("g")
    results = await outcomes(calls)
    ok = [r for r in results if isinstance(r, InvocationResult) and r.ok]
    throttled = [r for r in results if isinstance(r, Throttled)]
    assert len(ok) == 2 and len(throttled) == 3
    assert {t.reason for t in throttled} == {REASON_RESERVED}
    stats = d.stats().functions["f"]
    assert (stats.throttles, stats.invocations, stats.in_use) == (3, 2, 0)


async def test_account_limit_is_shared_by_unreserved_functions(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(
        definition("a", tmp_path), definition("b", tmp_path),
        definition("r", tmp_path, reserved_concurrency=1), concurrency=4, instance_factory=factory,
    )  # fmt: skip
    held = [asyncio.create_task(d.invoke(f, payload(gate="g"))) for f in ("a", "a", "b")]
    await until(lambda: d.accounting.in_use() == 3)
    with pytest.raises(Throttled) as e:
        await d.invoke("b", payload())
    assert e.value.reason == REASON_ACCOUNT
    with pytest.raises(Throttled) as e:
        await d.invoke("a", payload())
    assert e.value.reason == REASON_ACCOUNT
    # r's reservation is carved out of the account: it still runs.
    r = asyncio.create_task(d.invoke("r", payload(gate="g")))
    await until(lambda: d.accounting.in_use() == 4)
    factory.open("g")
    assert all(x.ok for x in await asyncio.gather(*held, r))
    account = d.stats().account
    assert (account.in_use, account.unreserved_limit) == (0, 3)


async def test_unknown_function(make: Make) -> None:
    d = await make()
    with pytest.raises(FunctionNotFound):
        await d.invoke("nope", b"{}")
    with pytest.raises(FunctionNotFound):
        d.check("nope")
    with pytest.raises(FunctionNotFound):
        await d.enqueue("nope", b"{}")


async def test_thousands_of_mixed_calls_end_with_zero_in_use(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(
        definition("a", tmp_path, reserved_concurrency=7), definition("b", tmp_path),
        definition("c", tmp_path), concurrency=20, instance_factory=factory,
    )  # fmt: skip
    rng = random.Random(4)
    kinds = ["ok", "fail", "crash", "gate", "cancel"]
    tasks = []
    for i in range(3000):
        kind = rng.choice(kinds)
        body = {"ok": {}, "fail": {"fail": True}, "crash": {"crash": True}}.get(
            kind, {"gate": f"g{i // 50}-{i % 3}"}
        )
        tasks.append((kind, asyncio.create_task(d.invoke(rng.choice("abc"), payload(**body)))))
        if i % 50 == 49:  # let this batch run, and finish some of the calls still waiting
            await asyncio.sleep(0)
            factory.open(f"g{rng.randrange(i // 50 + 1)}-{rng.randrange(3)}")
    await asyncio.sleep(0)
    for kind, task in tasks:
        if kind == "cancel":
            task.cancel()
    for i in range(3000):
        factory.open(f"g{i // 50}-{i % 3}")
    results = await asyncio.gather(*(t for _, t in tasks), return_exceptions=True)
    assert any(isinstance(r, Throttled) for r in results)
    assert any(isinstance(r, asyncio.CancelledError) for r in results)
    assert any(isinstance(r, InvocationResult) and r.error_type == "Runtime.ExitError" for r in results)
    assert d.accounting.in_use() == 0 and d.accounting.unreserved_in_use == 0
    assert all(s.in_use == 0 and s.busy == 0 for s in d.stats().functions.values())


async def test_drain_lets_in_flight_calls_finish_and_refuses_new_ones(make: Make, tmp_path: Path) -> None:
    clock, factory = FakeClock(), FakeFactory()
    d = await make(definition("f", tmp_path), clock=clock, instance_factory=factory)
    call = asyncio.create_task(d.invoke("f", payload(gate="g")))
    await until(lambda: d.stats().functions["f"].busy == 1)
    drain = asyncio.create_task(d.drain(10))
    await until(lambda: d.draining)
    with pytest.raises(ShuttingDown):
        await d.invoke("f", payload())
    with pytest.raises(ShuttingDown):
        await d.enqueue("f", payload())
    factory.open("g")
    assert (await call).ok
    await drain


async def test_drain_cancels_calls_still_running_after_the_grace(make: Make, tmp_path: Path) -> None:
    clock, factory = FakeClock(), FakeFactory()
    d = await make(definition("f", tmp_path), clock=clock, instance_factory=factory)
    call = asyncio.create_task(d.invoke("f", payload(gate="never")))
    await until(lambda: d.stats().functions["f"].busy == 1)
    drain = asyncio.create_task(d.drain(5))
    await until(lambda: d.draining)
    await clock.advance(4)
    assert not drain.done()
    await clock.advance(1)
    await drain
    with pytest.raises(ShuttingDown):
        await call
    assert d.accounting.in_use() == 0


async def test_on_result_hooks_see_every_call_and_a_failing_hook_is_contained(
    make: Make, tmp_path: Path
) -> None:
    d = await make(definition("f", tmp_path))
    seen: list[tuple[str, Call, InvocationResult]] = []

    def broken(*_: Any) -> None:
        raise RuntimeError("hook bug")

    d.on_result.extend([broken, lambda f, c, r: seen.append((f, c, r))])
    result = await d.invoke("f", payload(x=1), trace="Root=1-abc;Lineage=00000000:2")
    ((function, call, got),) = seen
    assert function == "f" and got is result
    assert (call.request_id, call.invocation_type, call.attempt) == (result.request_id, "RequestResponse", 1)
    # The call carries the caller's trace one hop deeper (loop protection, router/trace.py).
    assert call.trace_id is not None and call.trace_id.startswith("Root=1-abc;") and ":3" in call.trace_id


async def test_metrics_render_counts_and_live_gauges(make: Make, tmp_path: Path) -> None:
    metrics = Metrics()
    factory = FakeFactory()
    d = await make(
        definition("f", tmp_path, reserved_concurrency=1), metrics=metrics, instance_factory=factory
    )
    await d.invoke("f", payload())
    await d.invoke("f", payload(fail=True))
    held = asyncio.create_task(d.invoke("f", payload(gate="g")))
    await until(lambda: d.stats().functions["f"].busy == 1)
    with pytest.raises(Throttled):
        await d.invoke("f", payload())
    text = metrics.render().decode()
    assert 'router_invocations_total{function="f",invocation_type="RequestResponse"} 2.0' in text
    assert 'router_errors_total{error_type="ValueError",function="f"} 1.0' in text
    assert f'router_throttles_total{{function="f",reason="{REASON_RESERVED}"}} 1.0' in text
    assert 'router_cold_starts_total{function="f"} 1.0' in text
    assert 'router_warm_starts_total{function="f"} 1.0' in text
    assert 'router_concurrent_executions{function="f"} 1.0' in text
    assert 'router_instances{function="f",state="busy"} 1.0' in text
    assert 'router_duration_seconds_count{function="f"} 2.0' in text
    assert 'router_max_memory_used_mb{function="f"} 40.0' in text
    factory.open("g")
    await held


async def test_reservable_leaves_unreserved_min_and_set_account_applies(make: Make, tmp_path: Path) -> None:
    d = await make(definition("a", tmp_path, reserved_concurrency=30), definition("b", tmp_path))
    account = d.config.account
    assert d.reservable("b") == account.concurrency - account.unreserved_min - 30
    assert d.reservable("a") == account.concurrency - account.unreserved_min
    d.set_account(msgspec.structs.replace(account, concurrency=31))
    assert d.stats().account.unreserved_limit == 1
    await d.invoke("b", payload())
    held = asyncio.create_task(d.invoke("b", payload(gate="g")))
    await until(lambda: d.accounting.in_use("b") == 1)
    with pytest.raises(Throttled):
        await d.invoke("b", payload())
    held.cancel()


async def test_a_deleted_function_leaves_the_live_gauges(make: Make, tmp_path: Path) -> None:
    metrics = Metrics()
    d = await make(definition("a", tmp_path), definition("gone", tmp_path), metrics=metrics)
    await d.invoke("gone", payload())
    assert 'router_instances{function="gone",state="idle"} 1.0' in metrics.render().decode()
    await d.set_functions({"a": definition("a", tmp_path)})
    text = metrics.render().decode()
    assert 'router_instances{function="gone"' not in text
    assert 'router_instances{function="a",state="idle"} 0.0' in text
