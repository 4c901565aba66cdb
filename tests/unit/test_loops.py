"""Loop protection in the dispatcher (fake instances): the depth limit on every path it controls."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from router.config import Destination, LimitsConfig
from router.core import trace as T
from router.core.clock import FakeClock
from router.core.errors import LoopDetected
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.loops import LoopGuard, StoppedCall
from router.metrics import Metrics
from tests.unit.dispatch_fakes import FakeFactory, definition, directory, router_config, until

Make = Callable[..., Any]


def at_hops(hops: int) -> str:
    return T.Trace(root="1-00000000-abc", parent="p", hops=hops).header()


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[Dispatcher] = []

    async def build(*defs: Any, max_depth: int = 3, **kw: Any) -> Dispatcher:
        config = msgspec.structs.replace(
            router_config(tmp_path), limits=LimitsConfig(max_loop_depth=max_depth)
        )
        kw.setdefault("instance_factory", FakeFactory())
        d = Dispatcher(config, state_dir=tmp_path / "state", clock=FakeClock(), **kw)
        await d.set_functions({x.name: x for x in defs})
        await d.start()
        made.append(d)
        return d

    yield build
    for d in made:
        await d.aclose()


def test_guard_admits_up_to_the_depth_then_logs_counts_and_tells(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    guard = LoopGuard(3, metrics=metrics)
    stopped: list[StoppedCall] = []
    guard.on_stop.append(stopped.append)
    guard.on_stop.append(lambda _: 1 / 0)  # a broken observer is contained
    assert T.depth(guard.admit("f", None)) == 1
    assert T.depth(guard.admit("f", at_hops(1))) == 3
    with caplog.at_level(logging.WARNING, "router.dispatch.loops"), pytest.raises(LoopDetected) as info:
        guard.admit("f", at_hops(2), invocation_type="Event", source="clicks", payload=b"{}")
    assert info.value.depth == 4 and T.parse(info.value.trace).hops == 3  # type: ignore[union-attr]
    assert (info.value.status, info.value.api_error) == (400, "RecursiveInvocationException")
    assert "recursive loop stopped: f not invoked at depth 4 (limits.max_loop_depth is 3)" in caplog.text
    assert (stopped[0].function, stopped[0].source, stopped[0].depth) == ("f", "clicks", 4)
    assert b'router_loops_stopped_total{function="f",invocation_type="Event"} 1.0' in metrics.render()


async def test_sync_call_past_the_depth_is_refused_without_running(make: Make, tmp_path: Path) -> None:
    factory = FakeFactory()
    d = await make(definition("f", tmp_path), instance_factory=factory)
    result = await d.invoke("f", b'{"n": 1}', trace=at_hops(1))
    assert T.parse(factory.requests[-1].trace_id).hops == 2  # type: ignore[union-attr]
    assert result.ok
    with pytest.raises(LoopDetected):
        await d.invoke("f", b'{"n": 2}', trace=at_hops(2))
    assert len(factory.requests) == 1


async def test_async_event_past_the_depth_goes_to_on_failure(make: Make, tmp_path: Path) -> None:
    dlq = tmp_path / "dlq"
    factory = FakeFactory()
    d = await make(
        definition("f", tmp_path, async_={"max_retries": 0, "on_failure": directory(dlq)}),
        instance_factory=factory,
    )
    request_id = await d.enqueue("f", b'{"n": 9}', trace=at_hops(2), source="uploads")
    (record_file,) = dlq.iterdir()
    record = json.loads(record_file.read_text())
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RecursiveLoopDetected"
    assert record["requestPayload"] == {"n": 9}
    assert record["responseContext"]["statusCode"] == 400
    assert record["responsePayload"]["errorType"] == "RecursiveInvocationException"
    assert factory.requests == [] and d.queue.depth() == 0  # never stored, never run


async def test_a_loop_through_destinations_ends(make: Make, tmp_path: Path) -> None:
    """f's on_success is f itself: each record is one hop deeper, so the chain stops at the depth, and the
    stopped record is not sent on to another function (which would be the next hop of the same chain)."""
    factory = FakeFactory()
    f = definition(
        "f",
        tmp_path,
        async_={"on_success": Destination(function="f"), "on_failure": Destination(function="g")},
    )
    d = await make(f, definition("g", tmp_path), instance_factory=factory)
    await d.enqueue("f", b'{"start": true}')
    await until(lambda: len(factory.requests) >= 3 and d.queue.depth() == 0, "the chain to run and stop")
    for _ in range(20):  # nothing else is coming: the stopped record went nowhere
        await asyncio.sleep(0)
    assert [T.depth(r.trace_id) for r in factory.requests] == [1, 2, 3]
    assert all(r.trace_id and T.parse(r.trace_id).root == T.parse(factory.requests[0].trace_id).root  # type: ignore[union-attr]
               for r in factory.requests)  # fmt: skip
    assert {i.spec.name for i in factory.instances} == {"f"}


async def test_botocore_inside_a_function_carries_the_trace_to_invoke(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """In a Lambda environment botocore sends _X_AMZN_TRACE_ID as X-Amzn-Trace-Id: the Invoke API counts it,
    and boto3 raises its modelled RecursiveInvocationException."""
    from botocore.exceptions import ClientError

    from tests.unit.test_control_support import ApiHarness

    config = (
        "limits: {max_loop_depth: 2}\n"
        "functions:\n  f: {runtime: python3.11, handler: app.handler, code: code}\n"
    )
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(e, c):\n    return e\n")
    async with ApiHarness(tmp_path, config) as h:
        client = h.client()
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "caller")
        monkeypatch.setenv("_X_AMZN_TRACE_ID", at_hops(0))
        ok = await asyncio.to_thread(client.invoke, FunctionName="f", Payload=b"{}")
        assert ok["StatusCode"] == 200
        monkeypatch.setenv("_X_AMZN_TRACE_ID", at_hops(1))
        with pytest.raises(ClientError) as info:
            await asyncio.to_thread(client.invoke, FunctionName="f", Payload=b"{}")
        error = info.value.response
        assert error["Error"]["Code"] == "RecursiveInvocationException"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert isinstance(info.value, client.exceptions.RecursiveInvocationException)
