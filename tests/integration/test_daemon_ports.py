"""Ports that cannot be bound: at start an error naming the part and the port (exit 2, no traceback); a
source that cannot listen later is retried with one log line per attempt."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.test_daemon import wait_for_log
from tests.support import free_port

pytestmark = pytest.mark.integration

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
functions:
  echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", timeout_s: 2}
"""
HTTP = """
sources:
  api: {kind: http, port: "${HTTP_PORT}"}
routes:
  - {source: api, function: echo, http: {method: GET, path: /echo}}
"""


@contextmanager
def taken_port(port: int) -> Iterator[socket.socket]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield sock


async def serve_exit(router) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "router", "serve", "-c", str(router.config_path), "--log-format", "text",
        env={**os.environ, **router.env},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.parametrize("part", ["server", "sources.api"])
async def test_a_taken_port_at_start_is_an_error_naming_the_part(make_router, part: str) -> None:
    http_port = free_port()
    router = await make_router(CONFIG + HTTP, env={"HTTP_PORT": str(http_port)}, start=False)
    port = router.port if part == "server" else http_port
    with taken_port(port):
        code, err = await serve_exit(router)
    assert code == 2, err
    assert f"cannot start: {part}: cannot listen on 127.0.0.1:{port}: address already in use" in err
    assert "Traceback" not in err


async def test_a_source_that_cannot_listen_later_retries_with_one_line_per_attempt(make_router) -> None:
    http_port = free_port()
    router = await make_router(CONFIG, env={"HTTP_PORT": str(http_port)})
    with taken_port(http_port):
        router.config_path.write_text(CONFIG + HTTP)
        router.send(signal.SIGHUP)
        failing = f"sources.api: cannot listen on 127.0.0.1:{http_port}: address already in use"
        await wait_for_log(router, failing, count=2)
    records = [json.loads(line) for line in router.log_text().splitlines() if line.startswith("{")]
    assert not [r for r in records if "exc" in r], "a listener failure logged a traceback"
    await router.wait_ready()  # the port is free again: the source comes up on its next attempt
    assert router.proc is not None and router.proc.poll() is None
