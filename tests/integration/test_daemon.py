"""The daemon as a user runs it: `router serve` in a subprocess, SIGHUP reloads, SIGTERM stops in order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.request

from tests.support import RouterProcess, wait_for

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
functions:
  first: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", timeout_s: 2}
"""

SECOND = (
    CONFIG
    + """
  second: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", timeout_s: 2}
"""
)

BROKEN = (
    CONFIG
    + """
  third: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo", memory_mb: big}
"""
)


def invoke(router: RouterProcess, name: str, payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(
        f"{router.url}/2015-03-31/functions/{name}/invocations",
        data=json.dumps(payload).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=150) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with e:  # an HTTPError holds the open response: close it, don't leave the socket to the GC
            return e.code, json.loads(e.read() or b"{}")


def metrics(router: RouterProcess) -> str:
    with urllib.request.urlopen(f"{router.url}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


async def wait_in_flight(router: RouterProcess, function: str) -> None:
    """Wait until a call of `function` has reached the dispatcher (it counts as a concurrent execution)."""
    needle = f'router_concurrent_executions{{function="{function}"}} 1.0'
    text = await wait_for(lambda: asyncio.to_thread(metrics, router), lambda t: needle in t, 30)
    assert needle in text, f"no call of {function} in flight"


def log_records(router: RouterProcess) -> list[dict[str, object]]:
    records = []
    for line in router.log_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


async def wait_for_log(router: RouterProcess, text: str, timeout: float = 15.0, count: int = 1) -> None:
    """Wait until the log holds `count` lines containing text (the log file spans restarts)."""
    for _ in range(int(timeout / 0.05)):
        if sum(text in str(r.get("msg")) for r in log_records(router)) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not logged:\n{router.log_text()[-3000:]}")


async def test_sighup_reload_then_sigterm(make_router) -> None:
    router = await make_router(CONFIG)
    status, body = await asyncio.to_thread(invoke, router, "first", {"n": 1})
    assert status == 200 and body["event"] == {"n": 1}
    status, _ = await asyncio.to_thread(invoke, router, "second", {})
    assert status == 404

    # A changed config: the new function answers without a restart.
    router.config_path.write_text(SECOND)
    router.send(signal.SIGHUP)
    await wait_for_log(router, "reload: applied")
    status, body = await asyncio.to_thread(invoke, router, "second", {"n": 2})
    assert status == 200 and body["event"] == {"n": 2}

    # A broken config: rejected with the reason and the path, the running config kept.
    router.config_path.write_text(BROKEN)
    router.send(signal.SIGHUP)
    await wait_for_log(router, "reload rejected: keeping the running config")
    msgs = [str(r.get("msg")) for r in log_records(router)]
    assert any(
        "functions.third.memory_mb: expected an integer between 128 and 10240, got 'big'" in m for m in msgs
    )
    status, body = await asyncio.to_thread(invoke, router, "second", {"n": 3})
    assert status == 200 and body["event"] == {"n": 3}

    assert await router.stop() == 0
    msgs = [str(r.get("msg")) for r in log_records(router)]
    order = [m for m in msgs if m.startswith("stopping:") or m == "stopped"]
    assert order == ["stopping: sources", "stopping: draining in-flight calls", "stopped"]


async def test_serve_refuses_a_broken_config(make_router) -> None:
    router = await make_router(BROKEN, start=False)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router",
        "serve",
        "-c",
        str(router.config_path),
        "--log-format",
        "json",
        env={**os.environ, **router.env},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"functions.third.memory_mb: expected an integer between 128 and 10240, got 'big'" in err


SLOW = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
limits: {drain_grace_s: 120}
functions:
  slow: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/sleep", timeout_s: 120}
"""


async def test_sigterm_drains_in_flight_calls_and_a_second_signal_cuts_the_grace(make_router) -> None:
    router = await make_router(SLOW)

    # A first SIGTERM lets the call in flight finish (the grace is long): it succeeds.
    call = asyncio.create_task(asyncio.to_thread(invoke, router, "slow", {"seconds": 1}))
    await wait_in_flight(router, "slow")
    router.send(signal.SIGTERM)
    status, body = await call
    assert (status, body) == (200, {"slept": 1})
    assert await router.stop() == 0

    # With a call that would outlast the test, a second SIGTERM stops the router without waiting for it.
    await router.start()
    call = asyncio.create_task(asyncio.to_thread(invoke_raw, router, "slow", {"seconds": 100}))
    await wait_in_flight(router, "slow")
    router.send(signal.SIGTERM)
    # Signals sent close together merge into one: wait until this run's drain has begun.
    await wait_for_log(router, "stopping: draining in-flight calls", count=2)
    router.send(signal.SIGTERM)
    assert await router.stop(timeout=60) == 0
    outcome = await call
    assert outcome != (200, {"slept": 100})  # the call was cut short, not completed
    msgs = [str(r.get("msg")) for r in log_records(router)]
    assert "second stop request: skipping the drain grace period" in msgs


def invoke_raw(router: RouterProcess, name: str, payload: dict[str, object]) -> tuple[int, object]:
    try:
        return invoke(router, name, payload)
    except (OSError, ValueError) as e:  # the connection closed under the call
        return (0, repr(e))
