"""Metering, REPORT lines, outcomes wording and the launch environment (pure logic)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import msgspec
import pytest

from router.config import BillingConfig
from router.core.results import InvocationResult
from router.invoker import launch, metering, outcomes
from router.invoker.types import FunctionSpec
from router.logs import CallLines


@pytest.mark.parametrize(
    ("duration", "granularity", "billed"),
    [
        (27.55, 1, 28),
        (27.0, 1, 27),
        (27.0000000001, 1, 27),
        (0.2, 1, 1),
        (0.0, 1, 0),
        (101.0, 100, 200),
        (99.9, 100, 100),
    ],
)
def test_billed_duration_rounds_up_to_the_granularity(duration: float, granularity: int, billed: int) -> None:
    assert metering.billed_ms(duration, granularity) == billed


def test_cost_is_requests_plus_gb_seconds() -> None:
    billing = BillingConfig(gb_second_usd=0.0000166667, request_usd=0.0000002)
    # 1000 ms at 1024 MB is one GB-second.
    assert metering.cost_usd(1000, 1024, billing) == pytest.approx(0.0000002 + 0.0000166667)
    assert metering.cost_usd(28, 128, billing) == pytest.approx(0.0000002 + 0.028 * 0.125 * 0.0000166667)


def test_report_line_is_lambdas_tab_separated_format() -> None:
    result = InvocationResult(
        request_id="8f50",
        payload=b"",
        duration_ms=15.741,
        billed_ms=16,
        memory_mb=128,
        max_memory_mb=56,
        init_ms=130.494,
    )
    assert metering.report_line(result) == (
        "REPORT RequestId: 8f50\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 56 MB\tInit Duration: 130.49 ms"
    )
    result.init_ms, result.error_type = None, "Runtime.OutOfMemory"
    assert metering.report_line(result, status="error").endswith(
        "Max Memory Used: 56 MB\tStatus: error\tError Type: Runtime.OutOfMemory"
    )
    assert metering.report_line(result, status="timeout").endswith("\tStatus: timeout")
    assert metering.start_line("8f50", "$LATEST") == "START RequestId: 8f50 Version: $LATEST"
    assert metering.end_line("8f50") == "END RequestId: 8f50"


def test_call_log_keeps_the_tail() -> None:
    log = metering.CallLog(limit=21)
    for i in range(10):
        log.add(f"line {i}".encode())
    assert log.take() == b"line 7\nline 8\nline 9\n"
    assert log.take() == b""
    log.add(b"y" * 50)
    assert log.take() == b"y" * 20 + b"\n"


def test_one_structured_line_per_invocation(caplog: pytest.LogCaptureFixture) -> None:
    """The REPORT line carries the call's figures (as fields in JSON logs; here, without the daemon's log
    set-up, as attributes of an ordinary record)."""
    result = InvocationResult(
        request_id="r9",
        payload=b"",
        error_type="Sandbox.Timeout",
        function_error="Unhandled",
        duration_ms=1000.5,
        billed_ms=1001,
        max_memory_mb=20,
    )
    report = metering.report_line(result, status="timeout")
    with caplog.at_level(logging.INFO, logger="router.function.fn"):
        CallLines("fn").emit(["END RequestId: r9", report], "r9", metering.report_fields(result, "fn"))
    end, last = caplog.records
    assert end.getMessage() == "END RequestId: r9" and not hasattr(end, "outcome")
    assert last.getMessage() == report
    fields = {
        k: getattr(last, k) for k in ("request_id", "function", "duration", "billed", "memory", "outcome")
    }
    assert fields == {
        "request_id": "r9",
        "function": "fn",
        "duration": 1000.5,
        "billed": 1001,
        "memory": 20,
        "outcome": "Sandbox.Timeout",
    }


def test_exit_wording_follows_lambda() -> None:
    assert outcomes.exit_words(3) == "exit status 3"
    assert outcomes.exit_words(-signal.SIGKILL) == "signal: killed"
    assert outcomes.exit_words(-signal.SIGSEGV) == "signal: segmentation fault"
    body = msgspec.json.decode(outcomes.exit_payload("r1", 2))
    assert body == {
        "errorMessage": "RequestId: r1 Error: Runtime exited with error: exit status 2",
        "errorType": "Runtime.ExitError",
    }
    assert msgspec.json.decode(outcomes.oom_payload("r1"))["errorType"] == "Runtime.OutOfMemory"
    assert outcomes.timeout_message("r1", 1).endswith(" r1 Task timed out after 1.00 seconds")


def test_function_error_bodies() -> None:
    body = b'{"errorMessage":"m","errorType":"ValueError"}'
    assert outcomes.function_error(body, "Header.Type") == (body, "ValueError")
    assert outcomes.function_error(b'{"errorMessage":"m"}', "Header.Type")[1] == "Header.Type"
    payload, kind = outcomes.function_error(b"plain text", None)
    assert kind == "Runtime.Unknown"
    assert msgspec.json.decode(payload) == {"errorMessage": "plain text", "errorType": "Runtime.Unknown"}


def spec(tmp_path: Path, **kw: object) -> FunctionSpec:
    fields: dict[str, object] = {
        "name": "fn",
        "runtime": "python3.11",
        "handler": "app.handler",
        "code_dir": tmp_path,
    }
    fields.update(kw)
    return FunctionSpec(**fields)  # type: ignore[arg-type]


def test_environment_has_lambdas_variables_and_reserved_names_win(tmp_path: Path) -> None:
    env = launch.environment(
        spec(
            tmp_path,
            environment={"STAGE": "dev", "AWS_LAMBDA_FUNCTION_NAME": "spoof", "TZ": "Europe/Paris"},
            memory_mb=256,
            region="eu-west-1",
        ),
        runtime_api="127.0.0.1:1234",
        init_type="provisioned-concurrency",
        log_stream="2024/01/01/[$LATEST]abc",
    )
    assert env["STAGE"] == "dev" and env["TZ"] == "Europe/Paris"  # TZ may be set by the function
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:1234"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fn"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path) and env["_HANDLER"] == "app.handler"
    assert env["LANG"] == "en_US.UTF-8" and "/usr/bin" in env["PATH"].split(":")


def test_log_stream_name_shape() -> None:
    name = launch.log_stream_name()
    day, _, rest = name.rpartition("/")
    assert len(day.split("/")) == 3 and rest.startswith("[$LATEST]") and len(rest) == len("[$LATEST]") + 32


def test_provided_needs_an_executable_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(launch.LaunchError, match="Couldn't find valid bootstrap"):
        launch.command(spec(tmp_path, runtime="provided"))
    (tmp_path / "bootstrap").write_text("#!/bin/sh\n")
    with pytest.raises(launch.LaunchError):
        launch.command(spec(tmp_path, runtime="provided.al2023"))
    (tmp_path / "bootstrap").chmod(0o755)
    assert launch.command(spec(tmp_path, runtime="provided.al2023")) == [str(tmp_path / "bootstrap")]
    assert "AWS_EXECUTION_ENV" not in launch.environment(
        spec(tmp_path, runtime="provided"), runtime_api="h:1", init_type="on-demand", log_stream="s"
    )
    with pytest.raises(launch.LaunchError, match="unknown runtime"):
        launch.command(spec(tmp_path, runtime="cobol"))
