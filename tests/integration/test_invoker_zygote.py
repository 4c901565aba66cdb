"""Python instances forked from the zygote: the same process as a fresh one, the same limits, and the
zygote's own failures never failing a call (real processes throughout)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from router.config import BillingConfig
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.registry import definitions_from_config
from router.invoker import zygote as zygote_module
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec
from router.invoker.zygote import Zygotes
from router.validate import parse_config
from tests.integration.invoker_support import body, make_call

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
Start = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def zygotes() -> AsyncIterator[Zygotes]:
    z = Zygotes()
    yield z
    await z.aclose()


@pytest.fixture
async def start(zygotes: Zygotes) -> AsyncIterator[Start]:
    started: list[Instance] = []

    async def _start(
        name: str, *, code: Path | None = None, via: Zygotes | str | None = "default", **fields: Any
    ) -> Instance:
        fields.setdefault("runtime", "python3.11")
        fields.setdefault("handler", "app.handler")
        fields.setdefault("timeout_s", 1)
        spec = FunctionSpec(name=name, code_dir=code or FUNCTIONS / name, **fields)
        chosen = zygotes if via == "default" else via
        instance = await Instance.start(
            spec,
            billing=BillingConfig(),
            init_timeout_s=5,
            stop_grace_s=0.3,
            zygotes=chosen,  # type: ignore[arg-type]
        )
        started.append(instance)
        return instance

    yield _start
    for instance in started:
        await instance.stop()


call = make_call("zyg")


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for: {what}")


def comparable(probe: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between a forked and a fresh instance of the same function."""
    per_instance = {"AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_LOG_STREAM_NAME", "_X_AMZN_TRACE_ID"}
    kinds = {fd: re.sub(r"\[\d+\]$", "", target or "") for fd, target in probe["fds"].items()}
    return {
        "env": {k: v for k, v in probe["env"].items() if k not in per_instance},
        "fds": {fd: kind for fd, kind in kinds.items() if not kind.startswith("/proc/")},  # listdir's own
        **{k: probe[k] for k in ("cwd", "argv", "path", "flags", "unbuffered", "data_limit", "signals")},
        "tzname": probe["tzname"],
        "main": probe["modules_main"],
    }


async def test_a_forked_instance_is_the_same_process_as_a_fresh_one(
    start: Start, zygotes: Zygotes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_PRIVATE_SETTING", "must-not-leak")
    fields = {"environment": {"STAGE": "test", "TZ": "Europe/Paris"}, "memory_mb": 256}
    forked = await start("zygote_probe", **fields)
    fresh = await start("zygote_probe", via=None, **fields)
    assert zygotes.forks == 1 and zygotes.pid is not None
    assert parent_of(forked.pid) == zygotes.pid and parent_of(fresh.pid) == os.getpid()  # type: ignore[arg-type]
    a, b = body(await call(forked, {})), body(await call(fresh, {}))
    assert a["pid"] == a["pgid"] == a["sid"] == forked.pid  # its own session and process group
    assert a["env"]["AWS_LAMBDA_RUNTIME_API"] == forked.address != fresh.address
    assert "ROUTER_PRIVATE_SETTING" not in a["env"] and a["env"]["STAGE"] == "test"
    assert a["cwd"] == str(FUNCTIONS / "zygote_probe")
    assert a["data_limit"][0] == (256 + 1024) * 1024 * 1024
    assert a["tzname"] == ["CET", "CEST"]  # TZ applied although the zygote started with another
    assert a["fds"]["0"] == "/dev/null" and a["fds"]["1"] == a["fds"]["2"]
    assert a["fds"]["1"].startswith("pipe:") and a["unbuffered"]
    assert comparable(a) == comparable(b)


async def test_output_init_and_metering_of_a_forked_instance(start: Start, zygotes: Zygotes) -> None:
    instance = await start("zygote_probe")
    assert zygotes.forks == 1
    result = await call(instance, {})
    assert result.ok and result.cold and result.init_ms is not None and result.init_ms > 0
    assert b"probe line" in result.log and b"REPORT RequestId" in result.log
    assert result.max_memory_mb > 0


async def test_timeout_kills_the_whole_group_of_a_forked_instance(start: Start, zygotes: Zygotes) -> None:
    instance = await start("orphan", timeout_s=1)
    assert zygotes.forks == 1
    result = await call(instance, {"seconds": 30})
    assert result.error_type == "Sandbox.Timeout" and not instance.alive
    child = int(re.search(rb"child pid (\d+)", result.log).group(1))  # type: ignore[union-attr]
    await until(lambda: not running(child), "the child that ignores SIGTERM killed with the group")
    await until(lambda: not running(instance.pid), "the leader gone")  # type: ignore[arg-type]


async def test_a_child_ignoring_sigterm_goes_with_the_group_on_stop(start: Start, zygotes: Zygotes) -> None:
    instance = await start("orphan")
    child = body(await call(instance, {}))["child"]
    assert running(child) and zygotes.forks == 1
    await instance.stop()
    await until(lambda: not running(child), "the child killed with the group")
    await until(lambda: not running(instance.pid), "the leader reaped by the zygote")  # type: ignore[arg-type]


async def test_out_of_memory_in_a_forked_instance(start: Start, zygotes: Zygotes) -> None:
    instance = await start("oom", memory_mb=64, timeout_s=5)
    result = await call(instance, {"mb": 256})
    assert zygotes.forks == 1
    assert result.error_type == "Runtime.OutOfMemory" and not instance.alive
    assert result.max_memory_mb > 64


async def test_a_crash_reports_the_exit_status_the_zygote_saw(start: Start, zygotes: Zygotes) -> None:
    instance = await start("crash")
    result = await call(instance, {"code": 7})
    assert zygotes.forks == 1
    assert result.error_type == "Runtime.ExitError"
    assert body(result)["errorMessage"].endswith("Runtime exited with error: exit status 7")
    assert b"about to crash" in result.log


async def test_forked_instances_cannot_take_each_others_events(start: Start, zygotes: Zygotes) -> None:
    first, second = await start("echo"), await start("echo")
    assert zygotes.forks == 2
    host, port = first.address.rsplit(":", 1)  # type: ignore[union-attr]
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        received = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        received = b""
    finally:
        writer.close()
    assert received == b""
    assert body(await call(first, {"n": 1}))["event"] == {"n": 1}
    assert body(await call(second, {"n": 2}))["event"] == {"n": 2}


async def test_the_zygote_is_restarted_after_it_dies(start: Start, zygotes: Zygotes) -> None:
    before = await start("echo")
    old = zygotes.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await until(lambda: zygotes.pid is None, "the zygote's death noticed")
    assert body(await call(before, {"still": "served"}))["event"] == {"still": "served"}
    after = await start("echo")
    assert zygotes.pid not in (None, old) and parent_of(after.pid) == zygotes.pid  # type: ignore[arg-type]
    assert zygotes.forks == 2 and zygotes.fallbacks == 0
    await before.stop()  # orphaned by the old zygote: still stopped, its group killed
    assert not running(before.pid)  # type: ignore[arg-type]


async def test_a_stuck_zygote_falls_back_to_a_fresh_interpreter(
    start: Start, zygotes: Zygotes, monkeypatch: pytest.MonkeyPatch
) -> None:
    await start("echo")
    stuck = zygotes.pid
    assert stuck is not None
    monkeypatch.setattr(zygote_module, "FORK_TIMEOUT_S", 0.3)
    os.kill(stuck, signal.SIGSTOP)
    try:
        instance = await start("echo")
    finally:
        with contextlib.suppress(ProcessLookupError):  # already killed, as it should be
            os.kill(stuck, signal.SIGCONT)
    assert parent_of(instance.pid) == os.getpid()  # type: ignore[arg-type]
    assert zygotes.fallbacks == 1 and body(await call(instance, {"k": 1}))["event"] == {"k": 1}
    await until(lambda: not running(stuck), "the stuck zygote stopped")


async def test_zygote_off_unfit_functions_and_per_function_choice(start: Start, tmp_path: Path) -> None:
    off = Zygotes(enabled=False)
    try:
        plain = await start("echo", via=off)
        chosen = await start("echo", via=off, python_zygote=True)
        assert parent_of(plain.pid) == os.getpid()  # type: ignore[arg-type]
        assert parent_of(chosen.pid) == off.pid and off.forks == 1  # type: ignore[arg-type]
    finally:
        await off.aclose()
    on = Zygotes()
    try:
        refused = await start("echo", via=on, python_zygote=False)
        startup_env = await start("echo", via=on, environment={"PYTHONHASHSEED": "1"})
        assert on.forks == 0 and on.pid is None
        for instance in (refused, startup_env):
            assert parent_of(instance.pid) == os.getpid()  # type: ignore[arg-type]
            assert (await call(instance, {})).ok
    finally:
        await on.aclose()


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_dispatcher_forks_from_its_zygote_unless_turned_off(tmp_path: Path, enabled: bool) -> None:
    text = (
        f"invoker: {{python_zygote: {'true' if enabled else 'false'}}}\n"
        "functions:\n"
        f"  probe: {{runtime: python3.11, handler: app.handler, code: {FUNCTIONS / 'zygote_probe'}}}\n"
    )
    config = parse_config(text, base_dir=tmp_path)
    dispatcher = Dispatcher(config, state_dir=tmp_path / "state")
    await dispatcher.set_functions(definitions_from_config(config, tmp_path / "state"))
    await dispatcher.start()
    try:
        parent = body(await dispatcher.invoke("probe", b"{}"))["ppid"]
        if enabled:
            with open(f"/proc/{parent}/cmdline", "rb") as f:
                assert b"--zygote" in f.read()
        else:
            assert parent == os.getpid()
    finally:
        await dispatcher.aclose()
    assert enabled is False or not running(parent)  # the zygote is stopped with the dispatcher


def zygote_children(zygote: int) -> set[int]:
    with open(f"/proc/{zygote}/task/{zygote}/children") as f:
        return {int(pid) for pid in f.read().split()}


async def test_the_zygote_keeps_the_next_instance_forked_ahead(start: Start, zygotes: Zygotes) -> None:
    first = await start("echo")
    zygote = zygotes.pid
    assert zygote is not None and parent_of(first.pid) == zygote  # type: ignore[arg-type]

    def spares(*taken: Instance) -> set[int]:
        return zygote_children(zygote) - {i.pid for i in taken}

    await until(lambda: len(spares(first)) == 1, "a spare forked once the first instance was handed out")
    spare = spares(first).pop()
    # In a session of its own before it is asked for: its group exists the moment it is handed out.
    await until(lambda: os.getsid(spare) == spare, "the spare's own session")
    second = await start("echo")
    assert second.pid == spare and body(await call(second, {"n": 2}))["event"] == {"n": 2}

    # A spare that dies waiting is reaped and replaced at once, without a request.
    await until(lambda: len(spares(first, second)) == 1, "the next spare")
    dead = spares(first, second).pop()
    os.kill(dead, signal.SIGKILL)
    replaced = lambda: dead not in zygote_children(zygote) and len(spares(first, second)) == 1  # noqa: E731
    await until(replaced, "a new spare")
    third = await start("echo")
    assert third.pid != dead and body(await call(third, {"n": 3}))["event"] == {"n": 3}

    # One that dies as a request comes (both seen in one poll) is not handed out: the request is forked.
    await until(lambda: len(spares(first, second, third)) == 1, "a spare again")
    dying = spares(first, second, third).pop()
    os.kill(zygote, signal.SIGSTOP)
    try:
        os.kill(dying, signal.SIGKILL)
        await until(lambda: not running(dying), "the spare dead while the zygote is stopped")
        pending = asyncio.ensure_future(start("echo"))
        await asyncio.sleep(0.2)  # the request waits in the zygote's socket
    finally:
        os.kill(zygote, signal.SIGCONT)
    fourth = await pending
    assert fourth.pid != dying and body(await call(fourth, {"n": 4}))["event"] == {"n": 4}
    assert zygotes.forks == 4 and zygotes.fallbacks == 0

    await until(lambda: len(spares(first, second, third, fourth)) == 1, "a spare once more")
    last = spares(first, second, third, fourth).pop()
    os.kill(zygote, signal.SIGKILL)  # the spare goes with the zygote (its socket's end of file)
    await until(lambda: not running(last), "the spare gone with the zygote")
