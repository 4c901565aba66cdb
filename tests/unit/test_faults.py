"""router/dispatch/faults.py and its users: seeded draws, faults in the dispatcher's calls (fake instances),
and source faults at the route ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from router.commands import parse_settings
from router.config import FunctionFaults, LatencyFault, SourceFaults
from router.core.backends import AcceptedEvent
from router.core.clock import FakeClock
from router.core.errors import Throttled
from router.core.results import InvocationResult
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.faults import FaultInjected, Faults, Injected, fault_rates_problem
from router.dispatch.routing import RouteHooks, bind_routes
from router.metrics import Metrics
from router.validate import parse_config
from tests.unit.dispatch_fakes import FakeFactory, definition, router_config, until

MIXED = FunctionFaults(error_rate=0.3, crash_rate=0.1, timeout_rate=0.1, throttle_rate=0.1,
                       latency_ms=LatencyFault(p=0.5, add=20), seed=11)  # fmt: skip


def draws(faults: Faults, n: int = 200) -> list[tuple[str | None, int]]:
    out = []
    for _ in range(n):
        d = faults.draw("f")
        out.append((d.kind, d.latency_ms) if d is not None else (None, 0))
    return out


def test_draws_are_repeatable_from_the_seed_and_follow_the_rates() -> None:
    a, b = Faults(), Faults()
    a.configure({"f": MIXED, "g": None}, {})
    b.configure({"f": MIXED}, {})
    first = draws(a)
    assert first == draws(b)  # same seed, same calls: the same faults
    counts = {k: sum(1 for kind, _ in first if kind == k) for k in ("error", "crash", "timeout", "throttle")}
    assert 35 <= counts["error"] <= 85 and all(5 <= counts[k] <= 40 for k in ("crash", "timeout", "throttle"))
    assert {ms for _, ms in first} == {0, 20}
    assert a.draw("g") is None and a.draw("unknown") is None
    a.set_function("f", MIXED)  # set again: the draws start over
    assert draws(a) == first
    other = Faults()
    other.configure({"f": FunctionFaults(error_rate=0.3, seed=12)}, {})
    assert draws(other) != draws(Faults())  # another seed (or none: random), other faults
    unseeded = Faults()
    unseeded.configure({"f": FunctionFaults(error_rate=0.5)}, {})
    shown = unseeded.show()["functions"]["f"]
    assert isinstance(shown["seed"], int)  # a random seed, shown so that the run can be repeated
    again = Faults()
    again.configure({"f": FunctionFaults(error_rate=0.5, seed=shown["seed"])}, {})
    assert draws(again) == draws(unseeded)


def test_settings_that_inject_nothing_are_off_and_rates_are_checked() -> None:
    faults = Faults()
    faults.configure({"f": FunctionFaults(), "g": FunctionFaults(latency_ms=LatencyFault(p=1, add=0))},
                     {"s": SourceFaults()})  # fmt: skip
    assert faults.show() == {"functions": {}, "sources": {}}
    assert fault_rates_problem(FunctionFaults(error_rate=0.6, crash_rate=0.5)) == (
        "error_rate + timeout_rate + crash_rate + throttle_rate is 1.1, more than 1"
    )
    assert parse_settings(["error_rate=0.1", "latency_ms.p=0.2", "latency_ms.add=500", "seed=7"]) == {
        "error_rate": 0.1, "latency_ms": {"p": 0.2, "add": 500}, "seed": 7,
    }  # fmt: skip
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_settings(["error_rate"])


def test_config_faults_are_off_by_default_and_checked(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "app.py").write_text("def handler(e, c):\n    return e\n")
    base = "functions:\n  f: {runtime: python3.11, handler: app.handler, code: c%s}\n"
    assert parse_config(base % "", base_dir=tmp_path).functions["f"].faults is None
    with pytest.raises(Exception, match=r"functions.f.faults: error_rate \+ .* is 1.2, more than 1"):
        parse_config(base % ", faults: {error_rate: 0.6, throttle_rate: 0.6}", base_dir=tmp_path)


async def dispatcher(tmp_path: Path, faults: FunctionFaults, clock: FakeClock | None = None) -> Dispatcher:
    factory = FakeFactory()
    d = Dispatcher(router_config(tmp_path), state_dir=tmp_path, instance_factory=factory, clock=clock,
                   metrics=Metrics())  # fmt: skip
    await d.set_functions({"f": definition("f", tmp_path, timeout_s=2)})
    d.faults.set_function("f", faults)
    await d.start()
    d.factory = factory  # type: ignore[attr-defined]
    return d


async def test_injected_faults_take_the_real_faults_shapes(tmp_path: Path) -> None:
    seen: list[Injected] = []
    results: list[InvocationResult] = []
    d = await dispatcher(tmp_path, FunctionFaults(crash_rate=1.0, seed=1))
    d.faults.on_inject.append(seen.append)
    d.on_result.append(lambda f, c, r: results.append(r))
    try:
        crashed = await d.invoke("f", b'{"n": 1}')
        assert (crashed.function_error, crashed.error_type, crashed.fault) == (
            "Unhandled",
            "Runtime.ExitError",
            "crash",
        )
        assert json.loads(crashed.payload)["errorMessage"].endswith(
            "Runtime exited with error: signal: killed"
        )
        assert "Status: error\tError Type: Runtime.ExitError" in crashed.log.decode()
        factory = d.factory  # type: ignore[attr-defined]
        await until(lambda: factory.instances[0].stopped, "the crashed instance to be stopped")
        assert factory.requests == []  # the function did not run

        d.faults.set_function("f", FunctionFaults(throttle_rate=1.0, seed=1))
        with pytest.raises(Throttled) as throttled:
            await d.invoke("f", b"{}")
        assert throttled.value.reason == "ConcurrentInvocationLimitExceeded"
        assert d.stats().functions["f"].throttles == 1

        d.faults.set_function("f", FunctionFaults(error_rate=1.0, seed=1))
        errored = await d.invoke("f", b"{}")
        assert json.loads(errored.payload)["errorType"] == "InjectedFault" and errored.fault == "error"
        assert len(factory.live("f")) == 1  # an error keeps the instance

        d.faults.set_function("f", None)
        assert (await d.invoke("f", b'{"n": 2}')).fault is None
        assert [(s.kind, s.function, s.source) for s in seen] == [
            ("crash", "f", None), ("throttle", "f", None), ("error", "f", None)
        ]  # fmt: skip
        assert [r.fault for r in results] == ["crash", "error", None]  # a throttle has no result
        text = d.metrics.render().decode()
        assert 'router_faults_injected_total{function="f",kind="crash",source=""} 1.0' in text
    finally:
        await d.aclose()


async def test_an_injected_timeout_holds_the_instance_for_the_timeout(tmp_path: Path) -> None:
    clock = FakeClock()
    d = await dispatcher(tmp_path, FunctionFaults(timeout_rate=1.0, seed=1), clock)
    try:
        call = asyncio.ensure_future(d.invoke("f", b"{}"))
        await until(lambda: clock.sleepers >= 1, "the timeout to be waited for")
        assert not call.done()
        await clock.advance(2)
        result = await call
        assert (result.error_type, result.duration_ms, result.fault) == ("Sandbox.Timeout", 2000, "timeout")
        assert "Task timed out after 2.00 seconds" in json.loads(result.payload)["errorMessage"]
    finally:
        await d.aclose()


class Calls:
    def __init__(self) -> None:
        self.queued: list[tuple[bytes, float]] = []
        self.invoked: list[bytes] = []

    async def invoke(self, function: str, payload: bytes, **kw: Any) -> InvocationResult:
        self.invoked.append(payload)
        return InvocationResult(request_id=f"r{len(self.invoked)}", payload=b"{}")

    async def enqueue(self, function: str, payload: bytes, *, delay_s: float = 0.0, **kw: Any) -> str:
        self.queued.append((payload, delay_s))
        return f"q{len(self.queued)}"


def routes(tmp_path: Path, settings: SourceFaults) -> tuple[Any, Calls, list[AcceptedEvent], Faults]:
    (tmp_path / "c").mkdir(exist_ok=True)
    (tmp_path / "c" / "app.py").write_text("def handler(e, c):\n    return e\n")
    config = parse_config(
        "functions:\n  f: {runtime: python3.11, handler: app.handler, code: c}\n"
        "sources:\n  s: {kind: kafka, brokers: ['127.0.0.1:1'], topic: t}\n"
        "routes:\n  - {source: s, function: f}\n",
        base_dir=tmp_path,
    )
    faults, accepted, calls = Faults(), [], Calls()
    faults.set_source("s", settings)
    (route,) = bind_routes(config, "s", calls, RouteHooks(faults=faults, on_accepted=[accepted.append]))
    return route, calls, accepted, faults


async def test_source_faults_duplicate_drop_acks_and_reorder_at_the_route(tmp_path: Path) -> None:
    route, calls, accepted, _ = routes(tmp_path, SourceFaults(duplicate=1.0, seed=2))
    assert await route.enqueue(b"e1") == "q2"
    assert [e.fault for e in accepted] == [None, "duplicate"] and len(calls.queued) == 2
    await route.invoke(b"b1")
    assert calls.invoked == [b"b1", b"b1"] and [e.mode for e in accepted[2:]] == ["invoked", "invoked"]

    route, calls, accepted, _ = routes(tmp_path, SourceFaults(drop_ack=1.0, seed=2))
    with pytest.raises(FaultInjected):
        await route.enqueue(b"e2")
    assert calls.queued == [(b"e2", 0.0)] and [e.fault for e in accepted] == ["drop_ack"]

    route, calls, accepted, faults = routes(
        tmp_path, SourceFaults(reorder=True, reorder_window_ms=500, seed=2)
    )
    for n in range(20):
        await route.enqueue(str(n).encode())
    delays = [delay for _, delay in calls.queued]
    assert all(0 <= x <= 0.5 for x in delays) and len(set(delays)) == 20
    assert [e.fault for e in accepted] == ["reorder"] * 20
    items: Sequence[int] = list(range(10))
    assert sorted(faults.shuffled("s", list(items))) == list(items)
    assert faults.shuffled("s", list(items)) != list(items)


def test_the_default_config_injects_no_fault() -> None:
    from router.validate import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "config" / "router.yaml", env={})
    assert all(f.faults is None for f in config.functions.values())
    assert all(s.faults is None for s in config.sources.values())
    assert config.record.enabled  # the durable record is on by default
