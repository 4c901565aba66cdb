"""Real instances of every runtime over the Runtime API: results, errors, context, environment, logs."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from router.config import BillingConfig
from router.invoker.code import prepare_code
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec, InitFailed
from tests.integration.invoker_support import body, make_call

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
BILLING = BillingConfig(granularity_ms=1, gb_second_usd=0.0000166667, request_usd=0.0000002)
Start = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    started: list[Instance] = []

    async def _start(
        name: str, *, code: Path | None = None, init_type: str = "on-demand", **fields: Any
    ) -> Instance:
        fields.setdefault("runtime", "python3.11")
        fields.setdefault("handler", "app.handler")
        fields.setdefault("timeout_s", 1)
        spec = FunctionSpec(name=name, code_dir=code or FUNCTIONS / name, **fields)
        instance = await Instance.start(spec, billing=BILLING, init_type=init_type, init_timeout_s=5)
        started.append(instance)
        return instance

    yield _start
    for instance in started:
        await instance.stop()


call = make_call("req")


async def test_python_echo_context_and_metering(start: Start) -> None:
    instance = await start("echo")
    cold = await call(instance, {"a": 1})
    assert cold.ok and cold.function_error is None
    out = body(cold)
    assert out["event"] == {"a": 1}
    assert out["function_name"] == "echo" and out["request_id"] == cold.request_id
    assert out["memory_limit_in_mb"] == "128"  # a string, as in AWS's Python runtime
    assert 0 < out["remaining_ms"] <= 1000
    assert cold.cold and cold.init_ms is not None and cold.init_ms > 0
    assert cold.billed_ms == math.ceil(cold.duration_ms + cold.init_ms)
    assert 1 <= cold.max_memory_mb < 128
    assert cold.cost_usd == pytest.approx(0.0000002 + cold.billed_ms / 1000 * 128 / 1024 * 0.0000166667)
    lines = cold.log.decode().splitlines()
    assert lines[0] == f"START RequestId: {cold.request_id} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {cold.request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {cold.request_id}\tDuration: ")
    assert "\tInit Duration: " in lines[-1]

    warm = await call(instance, [1, 2])
    assert body(warm)["event"] == [1, 2]
    assert not warm.cold and warm.init_ms is None
    assert "Init Duration" not in warm.log.decode()
    assert instance.alive and not instance.busy and instance.invocations == 2


async def test_python_handler_error_is_lambdas_shape(start: Start) -> None:
    instance = await start("fail")
    result = await call(instance, {"message": "no good"})
    assert result.function_error == "Unhandled" and result.error_type == "ValueError"
    error = body(result)
    assert error["errorMessage"] == "no good" and error["errorType"] == "ValueError"
    assert error["requestId"] == result.request_id
    assert any("fail/app.py" in frame and "raise ValueError" in frame for frame in error["stackTrace"])
    assert not any("python_bootstrap" in frame for frame in error["stackTrace"])
    assert "[ERROR] ValueError: no good" in result.log.decode()
    again = await call(instance, {})
    assert body(again)["errorMessage"] == "boom" and instance.alive


async def test_environment_working_directory_and_context(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_PRIVATE_SETTING", "must-not-leak")
    instance = await start("environ", environment={"STAGE": "test"}, memory_mb=256)
    client_context = base64.b64encode(b'{"custom": {"tenant": "t1"}}').decode()
    out = body(await call(instance, {}, client_context=client_context))
    env, code_dir = out["env"], str(FUNCTIONS / "environ")
    assert out["cwd"] == code_dir and out["path0"] == code_dir
    assert env["STAGE"] == "test" and "ROUTER_PRIVATE_SETTING" not in env
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "environ",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/environ",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": code_dir,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": instance.address,
    }
    assert {k: env.get(k) for k in expected} == expected
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-") and out["c_trace"] == env["_X_AMZN_TRACE_ID"]
    again = body(await call(instance, {}))  # each call's own trace, in os.environ and getenv(3) alike
    assert again["env"]["_X_AMZN_TRACE_ID"] == again["c_trace"] != env["_X_AMZN_TRACE_ID"]
    assert out["log_stream"] == env["AWS_LAMBDA_LOG_STREAM_NAME"] and "[$LATEST]" in out["log_stream"]
    assert out["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:environ"
    assert out["client_context"] == {"tenant": "t1"}


async def test_provisioned_instance_is_not_a_cold_call(start: Start) -> None:
    instance = await start("environ", init_type="provisioned-concurrency")
    result = await call(instance, {})
    assert body(result)["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert not result.cold and result.init_ms is None and instance.init_ms is not None


async def test_logs_are_captured_per_call_and_forwarded(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="router.function.chatty"):
        instance = await start("chatty")
        first = await call(instance, {"tag": "one"})
        second = await call(instance, {"tag": "two"})
    log1, log2 = first.log.decode(), second.log.decode()
    assert log1.startswith("chatty at init\nSTART RequestId: ")  # init output goes with the cold call
    for line in (f"to stdout {first.request_id}", f"to stderr {first.request_id}", "no newline at the end"):
        assert line + "\n" in log1
    assert f"\t{first.request_id}\tvia logging one\n" in log1 and log1.count("[INFO]\t") == 1
    assert first.request_id not in log2 and "chatty at init" not in log2
    assert f"to stdout {second.request_id}" in log2
    forwarded = [(r.getMessage(), getattr(r, "request_id", None)) for r in caplog.records]
    assert (f"to stderr {second.request_id}", second.request_id) in forwarded
    assert ("chatty at init", None) in forwarded


async def test_response_over_6mb_fails_but_instance_lives(start: Start) -> None:
    instance = await start("big", timeout_s=5)
    result = await call(instance, {"bytes": 7 * 1024 * 1024})
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert "6291556 bytes" in body(result)["errorMessage"]
    small = await call(instance, {"bytes": 3})
    assert small.ok and body(small) == "xxx"


async def test_node_async_handler(start: Start) -> None:
    instance = await start("node_echo", runtime="nodejs20.x", handler="index.handler")
    result = await call(instance, {"k": [1, 2]})
    out = body(result)
    assert out["event"] == {"k": [1, 2]} and out["function_name"] == "node_echo"
    assert out["request_id"] == result.request_id and out["memory_limit_in_mb"] == "128"
    assert 0 < out["remaining_ms"] <= 1000
    assert f"\t{result.request_id}\tINFO\tnode echo {result.request_id}\n" in result.log.decode()
    assert out["trace"].startswith("Root=1-")
    again = body(await call(instance, {"child": True}))  # each call's own trace, a child process's too
    assert again["trace"] == again["child_trace"] != out["trace"]


async def test_node_callback_handler_and_error(start: Start) -> None:
    instance = await start("node_callback", runtime="nodejs20.x", handler="index.handler")
    ok = await call(instance, {"n": 1})
    assert body(ok) == {"ok": True, "event": {"n": 1}, "request_id": ok.request_id}
    failed = await call(instance, {"fail": True})
    error = body(failed)
    assert failed.error_type == "Error" and error["errorMessage"] == "callback boom"
    assert error["trace"][0] == "Error: callback boom"
    assert instance.alive


async def test_node_init_failures(start: Start, tmp_path: Path) -> None:
    with pytest.raises(InitFailed) as missing:
        await start("node_echo", runtime="nodejs20.x", handler="nothere.handler")
    assert missing.value.result.error_type == "Runtime.ImportModuleError"
    with pytest.raises(InitFailed) as no_export:
        await start("node_echo", runtime="nodejs20.x", handler="index.other")
    assert no_export.value.result.error_type == "Runtime.HandlerNotFound"
    assert body(no_export.value.result)["errorMessage"] == "index.other is undefined or not exported"


async def test_provided_runtime_with_a_curl_bootstrap(start: Start) -> None:
    instance = await start("provided_curl", runtime="provided", handler="function.handler")
    ok = await call(instance, {"k": 1})
    assert body(ok) == {"echo": {"k": 1}, "handler": "function.handler"}
    assert f"handling {ok.request_id}\n" in ok.log.decode()
    failed = await call(instance, "please fail")
    assert failed.error_type == "Custom.Failure" and body(failed)["errorMessage"] == "asked to fail"
    assert (await call(instance, [3])).ok


async def test_python_init_failures(start: Start) -> None:
    with pytest.raises(InitFailed) as bad_handler:
        await start("badhandler")
    result = bad_handler.value.result
    assert result.error_type == "Runtime.HandlerNotFound" and result.function_error == "Unhandled"
    assert body(result)["errorMessage"] == "Handler 'handler' missing on module 'app'"
    assert "INIT_REPORT Init Duration: " in result.log.decode()
    with pytest.raises(InitFailed) as import_error:
        await start("importerror")
    message = body(import_error.value.result)["errorMessage"]
    assert import_error.value.result.error_type == "Runtime.ImportModuleError"
    assert (
        message
        == "Unable to import module 'app': No module named 'router_fixture_module_that_does_not_exist'"
    )
    with pytest.raises(InitFailed) as no_module:
        await start("echo", handler="missing.handler")
    assert (
        body(no_module.value.result)["errorMessage"]
        == "Unable to import module 'missing': No module named 'missing'"
    )


async def test_code_from_a_zip(start: Start, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(FUNCTIONS / "echo" / "app.py", "app.py")
    (tmp_path / "echo.zip").write_bytes(buf.getvalue())
    code = prepare_code(tmp_path / "echo.zip", tmp_path / "cache")
    instance = await start("zipped", code=code)
    out = body(await call(instance, {"from": "zip"}))
    assert out["event"] == {"from": "zip"} and out["function_name"] == "zipped"


async def test_runtime_api_refuses_other_processes(start: Start) -> None:
    instance = await start("echo")
    assert instance.address is not None
    host, port = instance.address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        received = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        received = b""
    finally:
        writer.close()
    assert received == b""  # closed without an answer: the test process is not one of the instance's
    assert (await call(instance, {"still": "served"})).ok
    assert instance.alive
