"""Limits with real processes: timeout, memory, crashes, init failures, stubborn children, cancellation."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from router.config import BillingConfig
from router.invoker.instance import Instance
from router.invoker.lifecycle import State
from router.invoker.types import FunctionSpec, InitFailed
from tests.integration.invoker_support import body, make_call

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
Start = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    started: list[Instance] = []

    async def _start(
        name: str, *, code: Path | None = None, init_timeout_s: float = 5, **fields: Any
    ) -> Instance:
        fields.setdefault("runtime", "python3.11")
        fields.setdefault("handler", "app.handler")
        fields.setdefault("timeout_s", 1)
        spec = FunctionSpec(name=name, code_dir=code or FUNCTIONS / name, **fields)
        instance = await Instance.start(
            spec, billing=BillingConfig(), init_timeout_s=init_timeout_s, stop_grace_s=0.3
        )
        started.append(instance)
        return instance

    yield _start
    for instance in started:
        await instance.stop()


call = make_call("lim")


def running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != b"Z"


async def gone(pid: int) -> bool:
    """Whether pid is gone, waiting a bounded while for a SIGKILLed process to be scheduled and die."""
    for _ in range(200):
        if not running(pid):
            return True
        await asyncio.sleep(0.01)
    return False


async def assert_other_function_served(start: Start) -> None:
    other = await start("echo")
    assert body(await call(other, {"after": "failure"}))["event"] == {"after": "failure"}


async def test_timeout_kills_the_group_and_the_next_instance_is_fresh(start: Start) -> None:
    instance = await start("sleep")
    pid = instance.pid
    assert pid is not None
    result = await call(instance, {"seconds": 30})
    assert result.error_type == "Sandbox.Timeout" and result.function_error == "Unhandled"
    assert re.fullmatch(r"\S+Z lim-\d+ Task timed out after 1\.00 seconds", body(result)["errorMessage"])
    assert result.duration_ms >= 1000
    assert "\tStatus: timeout" in result.log.decode().splitlines()[-1]
    assert not instance.alive and not running(pid) and instance.state is State.DEAD
    dead = await call(instance, {"seconds": 0})  # a dead instance answers with data, never an exception
    assert dead.error_type == "Runtime.ExitError"
    fresh = await start("sleep")
    assert fresh.pid != pid and body(await call(fresh, {"seconds": 0})) == {"slept": 0}
    await assert_other_function_served(start)


async def test_memory_past_the_limit_is_out_of_memory(start: Start) -> None:
    instance = await start("oom", memory_mb=128, timeout_s=10)
    pid = instance.pid
    assert pid is not None
    result = await call(instance, {"mb": 2048})
    assert result.error_type == "Runtime.OutOfMemory"
    assert body(result)["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert result.max_memory_mb > 128  # measured, not the configured size
    assert "Error Type: Runtime.OutOfMemory" in result.log.decode()
    assert not instance.alive and not running(pid) and instance.state is State.DEAD
    await assert_other_function_served(start)


async def test_memory_is_measured_per_call(start: Start) -> None:
    instance = await start("oom", memory_mb=256, timeout_s=5)
    small = await call(instance, {"mb": 8})
    big = await call(instance, {"mb": 96})
    again = await call(instance, {"mb": 96})  # already held: the peak of this call is the held memory only
    assert small.ok and big.ok and again.ok
    assert big.max_memory_mb >= small.max_memory_mb + 80
    assert again.max_memory_mb >= 96 and instance.alive and instance.state is State.IDLE


async def test_exit_mid_call_is_exit_error(start: Start) -> None:
    instance = await start("crash")
    pid = instance.pid
    assert pid is not None
    result = await call(instance, {"code": 3})
    assert result.error_type == "Runtime.ExitError"
    assert (
        body(result)["errorMessage"]
        == f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3"
    )
    assert "about to crash\n" in result.log.decode()
    assert not instance.alive and not running(pid) and instance.state is State.DEAD
    await assert_other_function_served(start)


async def test_child_ignoring_sigterm_is_killed_by_stop(start: Start) -> None:
    instance = await start("orphan")
    child = body(await call(instance, {"seconds": 0}))["child"]
    assert running(child)
    await instance.stop()
    assert await gone(child) and instance.state is State.DEAD
    await instance.stop()  # idempotent
    assert instance.state is State.DEAD


async def test_child_ignoring_sigterm_is_killed_on_timeout(start: Start) -> None:
    instance = await start("orphan")
    result = await call(instance, {"seconds": 30})
    assert result.error_type == "Sandbox.Timeout"
    match = re.search(r"child pid (\d+)", result.log.decode())
    assert match is not None
    assert await gone(int(match.group(1)))


async def test_leader_ignoring_sigterm_is_killed_after_the_grace(start: Start, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "def handler(event, context):\n"
        "    return 1\n"
    )
    instance = await start("stubborn", code=tmp_path)
    pid = instance.pid
    assert pid is not None and (await call(instance, {})).ok
    await instance.stop()
    assert not running(pid)


async def test_slow_init_is_metered_on_the_cold_call(start: Start) -> None:
    instance = await start("slowinit", environment={"SLOWINIT_SECONDS": "0.2"})
    assert instance.init_ms is not None and instance.init_ms >= 200
    result = await call(instance, {})
    assert body(result) == {"initialised_for": 0.2} and result.cold
    assert result.init_ms == instance.init_ms
    assert result.log.decode().startswith("init sleeping 0.2s\n")


async def test_init_past_its_limit_fails(start: Start) -> None:
    with pytest.raises(InitFailed) as failed:
        await start("slowinit", environment={"SLOWINIT_SECONDS": "30"}, init_timeout_s=0.3)
    result = failed.value.result
    assert result.error_type == "Runtime.InitError" and result.function_error == "Unhandled"
    assert body(result)["errorMessage"] == "Init phase timed out after 0.30 seconds"
    assert result.init_ms is not None and result.init_ms >= 300
    await assert_other_function_served(start)


async def test_exit_during_init_is_exit_error(start: Start, tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text("#!/bin/sh\necho 'cannot start'\nexit 2\n")
    bootstrap.chmod(0o755)
    with pytest.raises(InitFailed) as failed:
        await start("dies", code=tmp_path, runtime="provided")
    result = failed.value.result
    assert result.error_type == "Runtime.ExitError"
    assert body(result)["errorMessage"].endswith("Runtime exited with error: exit status 2")
    assert "cannot start\n" in result.log.decode()


async def test_missing_bootstrap_is_invalid_entrypoint(start: Start, tmp_path: Path) -> None:
    with pytest.raises(InitFailed) as failed:
        await start("nothing", code=tmp_path, runtime="provided")
    assert failed.value.result.error_type == "Runtime.InvalidEntrypoint"


async def test_one_call_at_a_time_and_stop_during_a_call(start: Start) -> None:
    instance = await start("sleep", timeout_s=10)
    running_call = asyncio.create_task(call(instance, {"seconds": 30}))
    for _ in range(500):
        if instance.busy:
            break
        await asyncio.sleep(0.01)
    assert instance.state is State.BUSY
    with pytest.raises(RuntimeError, match="busy"):
        await call(instance, {"seconds": 0})
    await instance.stop()
    result = await running_call
    assert instance.state is State.DEAD and not instance.busy
    assert result.error_type == "Runtime.ExitError"
    assert body(result)["errorMessage"].endswith("signal: terminated")


async def test_cancelled_call_kills_the_instance(start: Start) -> None:
    instance = await start("sleep", timeout_s=10)
    pid = instance.pid
    assert pid is not None
    task = asyncio.create_task(call(instance, {"seconds": 30}))
    for _ in range(500):
        if instance.busy:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(pid)
    assert not instance.alive and not instance.busy and instance.state is State.DEAD


async def test_router_descriptors_are_released(start: Start) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        instance = await start("echo")
        assert (await call(instance, {})).ok
        await instance.stop()
    for name in ("crash", "sleep"):
        instance = await start(name)
        await call(instance, {"seconds": 30})
    assert len(os.listdir("/proc/self/fd")) <= before + 2  # the two dead ones are already released
