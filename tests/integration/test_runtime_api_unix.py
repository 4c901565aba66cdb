"""The Runtime API on a Unix socket for the router's own runtimes: Python and Node instances reach it there
(no TCP stack per message), `provided` ones only get AWS_LAMBDA_RUNTIME_API (TCP), which stays set for
everyone; and the Unix socket refuses a process that is not the instance's, as the TCP port does."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from router.config import BillingConfig
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec
from tests.integration.invoker_support import body, make_call

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
Start = Callable[..., Awaitable[Instance]]
call = make_call("unix")


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    started: list[Instance] = []

    async def _start(name: str, **fields: Any) -> Instance:
        fields.setdefault("runtime", "python3.11")
        fields.setdefault("handler", "app.handler")
        spec = FunctionSpec(name=name, code_dir=FUNCTIONS / name, timeout_s=2, **fields)
        instance = await Instance.start(spec, billing=BillingConfig(), init_timeout_s=5)
        started.append(instance)
        return instance

    yield _start
    for instance in started:
        await instance.stop()


def exists(path: str | None) -> bool:
    return path is not None and os.path.exists(path)


def connected_to(path: str | None) -> int:
    """How many connected Unix sockets are bound to `path` (the server's ends of accepted connections)."""
    count = 0
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == path and fields[5] == "03":  # SS_CONNECTED
            count += 1
    return count


async def test_python_and_node_use_the_unix_socket(start: Start) -> None:
    python = await start("environ")
    node = await start("node_echo", runtime="nodejs20.x", handler="index.handler")
    for instance in (python, node):
        assert exists(instance.unix_address)
        assert instance.address is not None and ":" in instance.address
    env = body(await call(python, {}))["env"]
    assert env["AWS_LAMBDA_RUNTIME_API"] == python.address  # still set, still TCP
    assert not any(k.startswith("_ROUTER") for k in env)  # the bootstrap keeps the socket to itself
    assert (await call(node, {"n": 1})).ok
    assert connected_to(python.unix_address) == 1 and connected_to(node.unix_address) == 1
    socket_path = python.unix_address
    await python.stop()
    assert not exists(socket_path)


async def test_provided_keeps_tcp(start: Start) -> None:
    instance = await start("provided_curl", runtime="provided", handler="function.handler")
    assert instance.unix_address is None
    assert body(await call(instance, {"k": 1})) == {"echo": {"k": 1}, "handler": "function.handler"}


async def test_the_unix_socket_refuses_other_processes(start: Start) -> None:
    instance = await start("echo")
    assert instance.unix_address is not None
    reader, writer = await asyncio.open_unix_connection(instance.unix_address)
    writer.write(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        received = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        received = b""
    finally:
        writer.close()
    assert received == b""  # closed without an answer: the test process is not one of the instance's
    assert (await call(instance, {"still": "served"})).ok
