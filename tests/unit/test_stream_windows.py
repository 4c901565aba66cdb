"""Tumbling windows in the stream engine (router/sources/stream/windows.py), with a fake clock and route."""

from __future__ import annotations

from typing import Any

import msgspec

from router.core.clock import FakeClock
from router.core.results import InvocationResult
from tests.unit.stream_fakes import FakeRoute, error, harness, ok, records

START = 1_700_000_010  # a multiple of 30: a window starts here


class WindowRoute(FakeRoute):
    """Keeps every event it is invoked with; the function counts records in its state."""

    def __init__(self, fail_first: bool = False, state_bytes: int = 0) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.state_bytes = state_bytes

    async def invoke(self, payload: bytes, **_: Any) -> InvocationResult:
        event = msgspec.json.decode(payload)
        self.events.append(event)
        if self.fail_first and len(self.events) == 1:
            return error()
        counted = event["state"].get("n", 0) + len(event["Records"])
        state = {"n": counted, **({"pad": "x" * self.state_bytes} if self.state_bytes else {})}
        return ok(None if event["isFinalInvokeForWindow"] else {"state": state})


def summary(event: dict[str, Any]) -> tuple[Any, ...]:
    positions = [r["position"] for r in event["Records"]]
    return (event["window"]["start"], positions, event["state"].get("n"), event["isFinalInvokeForWindow"])


async def test_state_is_carried_through_a_window_and_a_final_invoke_closes_it() -> None:
    clock, route = FakeClock(START), WindowRoute()
    async with harness(route, clock=clock, batch_size=2, tumbling_window_s=30) as h:
        h.mapping.open("shardId-1")
        h.mapping.offer("shardId-1", records(0, 3, arrival=START + 5))
        await h.until("shardId-1", 2)
        h.mapping.offer("shardId-1", records(3, 1, arrival=START + 35))  # the next window
        await h.until("shardId-1", 3)
        await clock.advance(70)  # past the second window's end
        assert len(route.events) == 5
    assert [summary(e) for e in route.events] == [
        ("2023-11-14T22:13:30Z", [0, 1], None, False),
        ("2023-11-14T22:13:30Z", [2], 2, False),
        ("2023-11-14T22:13:30Z", [], 3, True),  # before the next window's first batch
        ("2023-11-14T22:14:00Z", [3], None, False),
        ("2023-11-14T22:14:00Z", [], 1, True),  # when the clock passed its end
    ]
    first = route.events[0]
    assert first["window"] == {"start": "2023-11-14T22:13:30Z", "end": "2023-11-14T22:14:00Z"}
    assert first["shardId"] == "shardId-1" and first["isWindowTerminatedEarly"] is False
    assert "eventSourceARN" in first


async def test_a_function_error_retries_with_the_same_state() -> None:
    clock, route = FakeClock(START), WindowRoute(fail_first=True)
    async with harness(route, clock=clock, batch_size=10, tumbling_window_s=30, max_retries=2) as h:
        h.mapping.open("s")
        h.mapping.offer("s", records(0, 2, arrival=START + 1))
        while len(route.events) < 2:
            await clock.advance(0.01)  # the pause before the retry
        await h.until("s", 1)
    assert [summary(e)[1:3] for e in route.events] == [([0, 1], None), ([0, 1], None)]


async def test_a_state_over_1_mb_ends_the_window_early() -> None:
    clock, route = FakeClock(START), WindowRoute(state_bytes=1024 * 1024)
    async with harness(route, clock=clock, batch_size=1, tumbling_window_s=30) as h:
        h.mapping.open("s")
        h.mapping.offer("s", records(0, 2, arrival=START + 1))
        await h.until("s", 1)
    assert [(summary(e)[1], e["isFinalInvokeForWindow"], e["isWindowTerminatedEarly"]) for e in route.events][
        :4
    ] == [([0], False, False), ([], True, True), ([1], False, False), ([], True, True)]
    assert route.events[2]["state"] == {}  # the window starts again


async def test_without_tumbling_windows_events_carry_no_window_fields() -> None:
    route = FakeRoute()
    seen: list[dict[str, Any]] = []
    invoke = route.invoke

    async def keep(payload: bytes, **kw: Any) -> InvocationResult:
        seen.append(msgspec.json.decode(payload))
        return await invoke(payload, **kw)

    route.invoke = keep  # type: ignore[method-assign]
    async with harness(route, batch_size=5) as h:
        h.mapping.open("s")
        h.mapping.offer("s", records(0, 2))
        await h.until("s", 1)
    assert seen and all(set(e) == {"Records"} for e in seen)


def test_tumbling_windows_are_refused_on_kafka_routes() -> None:
    import pytest

    from router.core.errors import ConfigError
    from router.validate import parse_config

    text = """
functions: {f: {runtime: provided, handler: x, code: .}}
sources: {k: {kind: kafka, brokers: ["127.0.0.1:9092"], topic: t, group: g}}
routes: [{source: k, function: f, batch: {tumbling_window_s: 30}}]
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert "routes[0].batch.tumbling_window_s: tumbling windows apply to" in "\n".join(info.value.problems)
    assert "not 'kafka'" in "\n".join(info.value.problems)
