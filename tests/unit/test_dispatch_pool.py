"""Instance pools through the dispatcher (fake instances): warm reuse, cold starts, provisioned, reaping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.core.clock import FakeClock
from router.core.errors import DispatchError
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.pool import INIT_ON_DEMAND, INIT_PROVISIONED
from tests.unit.dispatch_fakes import FakeFactory, definition, router_config, until

Make = Callable[..., Any]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[Dispatcher] = []

    async def build(
        *defs: Any, clock: FakeClock | None = None, factory: FakeFactory | None = None
    ) -> Dispatcher:
        d = Dispatcher(
            router_config(tmp_path), state_dir=tmp_path / "state", clock=clock or FakeClock(),
            instance_factory=factory or FakeFactory(),
        )  # fmt: skip
        await d.set_functions({x.name: x for x in defs})
        await d.start()
        made.append(d)
        return d

    yield build
    for d in made:
        await d.aclose()


def payload(**kw: Any) -> bytes:
    return json.dumps(kw).encode()


async def test_first_call_is_cold_then_warm_on_the_same_instance(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path), factory=factory)
    first = await d.invoke("f", payload(n=1))
    second = await d.invoke("f", payload(n=2))
    assert (first.cold, second.cold) == (True, False)
    assert first.init_ms is not None and second.init_ms is None
    assert len(factory.instances) == 1 and factory.instances[0].init_type == INIT_ON_DEMAND
    stats = d.stats().functions["f"]
    assert (stats.cold_starts, stats.warm_starts, stats.idle, stats.in_use) == (1, 1, 1, 0)


async def test_concurrent_calls_each_get_their_own_instance_and_the_most_recent_is_reused(
    make: Make, tmp_path: Path
) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path), factory=factory)
    calls = [asyncio.create_task(d.invoke("f", payload(gate=f"g{i}"))) for i in range(3)]
    await until(lambda: d.stats().functions["f"].busy == 3)
    assert len(factory.instances) == 3
    for i in (2, 0, 1):  # the instance of g1 finishes last: it is the most recently used
        factory.open(f"g{i}")
        await calls[i]
    await d.invoke("f", payload())
    assert factory.instances[1].calls[-1] == factory.requests[-1].request_id
    assert d.stats().functions["f"].idle == 3


async def test_a_dead_instance_is_stopped_and_replaced(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path), factory=factory)
    crashed = await d.invoke("f", payload(crash=True))
    assert crashed.error_type == "Runtime.ExitError"
    await until(lambda: factory.instances[0].stopped, "crashed instance stopped")
    again = await d.invoke("f", payload())
    assert again.ok and again.cold
    assert len(factory.instances) == 2


async def test_a_cancelled_call_kills_its_instance_and_frees_its_slot(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path), factory=factory)
    call = asyncio.create_task(d.invoke("f", payload(gate="never")))
    await until(lambda: d.stats().functions["f"].busy == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await until(lambda: factory.instances[0].stopped, "cancelled instance stopped")
    stats = d.stats().functions["f"]
    assert (stats.in_use, stats.busy, stats.idle) == (0, 0, 0)


async def test_init_failure_is_the_result_of_the_call(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    factory.init_fails = True
    d = await make(definition("f", tmp_path), factory=factory)
    result = await d.invoke("f", payload())
    assert result.error_type == "Runtime.InitError" and result.cold
    assert d.stats().functions["f"].in_use == 0


async def test_a_launch_failure_is_a_dispatch_error(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    factory.launch_error = OSError("no such runtime")
    d = await make(definition("f", tmp_path), factory=factory)
    with pytest.raises(DispatchError, match="could not launch"):
        await d.invoke("f", payload())
    assert d.accounting.in_use() == 0


async def test_provisioned_instances_exist_before_the_first_call(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path, provisioned_concurrency=2), factory=factory)
    assert [i.init_type for i in factory.instances] == [INIT_PROVISIONED] * 2
    stats = d.stats().functions["f"]
    assert (stats.idle, stats.provisioned, stats.cold_starts) == (2, 2, 0)
    result = await d.invoke("f", payload())
    assert not result.cold
    # All provisioned busy: the third call spills over to an on-demand instance.
    calls = [asyncio.create_task(d.invoke("f", payload(gate="g"))) for _ in range(3)]
    await until(lambda: d.stats().functions["f"].busy == 3)
    assert [i.init_type for i in factory.instances][2:] == [INIT_ON_DEMAND]
    factory.open("g")
    assert sum(r.cold for r in await asyncio.gather(*calls)) == 1


async def test_a_provisioned_instance_that_dies_is_relaunched(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path, provisioned_concurrency=1), factory=factory)
    await d.invoke("f", payload(crash=True))
    await until(lambda: d.stats().functions["f"].provisioned == 1 and len(factory.instances) == 2)
    assert factory.instances[1].init_type == INIT_PROVISIONED


async def test_idle_instances_are_reaped_to_zero_but_provisioned_stay(make: Make, tmp_path: Path) -> None:
    clock, factory = FakeClock(), FakeFactory()
    d = await make(
        definition("f", tmp_path, idle_timeout_s=600),
        definition("p", tmp_path, idle_timeout_s=600, provisioned_concurrency=1),
        clock=clock, factory=factory,
    )  # fmt: skip
    calls = [asyncio.create_task(d.invoke(name, payload(gate="g"))) for name in ("f", "f", "p", "p")]
    await until(lambda: sum(s.busy for s in d.stats().functions.values()) == 4)
    factory.open("g")
    await asyncio.gather(*calls)
    assert d.stats().functions["f"].idle == 2 and d.stats().functions["p"].idle == 2
    await clock.advance(599)
    assert d.stats().functions["f"].idle == 2
    await clock.advance(2)
    await until(lambda: d.stats().functions["f"].idle == 0, "reaped to zero")
    assert d.stats().functions["p"].idle == 1  # the provisioned one stays
    await until(lambda: len(factory.live()) == 1, "reaped instances stopped")
    assert factory.live()[0].init_type == INIT_PROVISIONED


async def test_new_revision_new_calls_on_new_instances_in_flight_finish_on_old(
    make: Make, tmp_path: Path
) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path, code_sha="v1"), factory=factory)
    await d.invoke("f", payload())  # one idle v1 instance
    in_flight = asyncio.create_task(d.invoke("f", payload(gate="old")))
    await until(lambda: d.stats().functions["f"].busy == 1)
    old = factory.instances[0]
    await d.set_functions({"f": definition("f", tmp_path, code_sha="v2")})
    result = await d.invoke("f", payload())
    assert result.cold and factory.instances[-1].spec.revision != old.spec.revision
    assert not old.stopped  # still running the in-flight call
    factory.open("old")
    assert (await in_flight).ok
    await until(lambda: old.stopped, "old instance stopped after its call")
    assert d.stats().functions["f"].revision == factory.instances[-1].spec.revision


async def test_a_concurrency_change_keeps_warm_instances(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path), factory=factory)
    await d.invoke("f", payload())
    await d.set_functions({"f": definition("f", tmp_path, reserved_concurrency=5)})
    assert not (await d.invoke("f", payload())).cold
    assert d.stats().functions["f"].reserved == 5


async def test_provisioned_instances_dying_together_are_relaunched_exactly_once(
    make: Make, tmp_path: Path
) -> None:
    factory = FakeFactory()
    clock = FakeClock()
    d = await make(definition("f", tmp_path, provisioned_concurrency=2), factory=factory, clock=clock)
    await asyncio.gather(*(d.invoke("f", payload(crash=True)) for _ in range(2)))
    await until(lambda: len(factory.live()) == 2 and len(factory.instances) == 4, "two relaunched")
    await clock.advance(5)  # the reaper's upkeep must not launch more either
    await until(lambda: d.stats().functions["f"].launching == 0)
    assert len(factory.instances) == 4 and d.stats().functions["f"].provisioned == 2
