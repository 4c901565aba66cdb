"""The Node.js runtime's programming model, as aws-lambda-nodejs-runtime-interface-client implements it, on
real node processes (fixture: tests/functions/node_semantics)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from router.config import BillingConfig
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec
from tests.integration.invoker_support import body, make_call

pytestmark = pytest.mark.integration

CODE = Path(__file__).resolve().parents[1] / "functions" / "node_semantics"
BILLING = BillingConfig(granularity_ms=1, gb_second_usd=0.0000166667, request_usd=0.0000002)
call = make_call("node")


@pytest.fixture
async def node() -> AsyncIterator[Callable[[str], Awaitable[Instance]]]:
    started: list[Instance] = []

    async def start(handler: str) -> Instance:
        spec = FunctionSpec(
            name="semantics", code_dir=CODE, runtime="nodejs20.x", handler=handler, timeout_s=3
        )
        instance = await Instance.start(spec, billing=BILLING, init_type="on-demand", init_timeout_s=5)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await instance.stop()


async def test_a_thrown_error_like_object_reports_its_name_message_and_stack(node) -> None:
    instance = await node("index.handler")
    result = await call(instance, {"mode": "errorlike"})
    assert result.error_type == "CustomError"
    assert body(result) == {
        "errorType": "CustomError",
        "errorMessage": "a plain object",
        "trace": ["CustomError: a plain object", "    at fixture"],
    }


async def test_a_promise_rejected_with_undefined_is_the_error_handled(node) -> None:
    instance = await node("index.handler")
    result = await call(instance, {"mode": "reject_undefined"})
    assert body(result) == {"errorType": "string", "errorMessage": "handled", "trace": []}
    assert instance.alive


async def test_a_sync_handler_that_never_answers_returns_null_once_the_event_loop_is_empty(node) -> None:
    instance = await node("index.handler")
    for mode in ("forget", "forget_after_timer", "forget"):
        result = await call(instance, {"mode": mode})
        assert result.ok and result.function_error is None, result.payload
        assert body(result) is None
        # The answer waits for what the call left running, as the runtime interface client's does.
        assert ("timer fired" in result.log.decode()) == (mode == "forget_after_timer")
    ok = await call(instance, {"mode": "plain"})
    assert body(ok) == {"ok": True} and instance.alive


async def test_an_async_handler_whose_promise_never_settles_fails_with_nodejs_exit(node) -> None:
    instance = await node("index.never")
    result = await call(instance, {})
    assert result.error_type == "Runtime.NodeJsExit"
    assert "a Promise that was never settled" in body(result)["errorMessage"]
    assert instance.alive
