"""Invoker workers (`invoker.workers`, `serve --workers N`) with a real `router serve`: instances run in
worker processes, and nothing the daemon promises changes: calls run on instances spread over the workers,
timeouts are enforced, reserved concurrency throttles exactly, each call has its REPORT line, a worker that
dies is replaced, and stopping the router leaves no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import RouterProcess, children, wait_gone

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
invoker: {workers: 2}
functions:
  sleep: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/sleep", timeout_s: 1}
  capped: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/sleep", timeout_s: 5,
           reserved_concurrency: 2}
"""


def invoke(router: RouterProcess, name: str, payload: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        f"{router.url}/2015-03-31/functions/{name}/invocations", data=json.dumps(payload).encode()
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def workers_of(router: RouterProcess) -> list[int]:
    assert router.proc is not None
    return [
        p
        for p in children(router.proc.pid)
        if b"router.invoker.worker" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]


def instances_of(workers: list[int]) -> set[int]:
    """Instance processes started by the workers (spawned, or forked by a worker's zygote)."""
    found = set()
    for worker in workers:
        for child in children(worker):
            found |= {child, *children(child)}
    return found


async def test_calls_limits_and_reports_with_workers(make_router) -> None:
    router = await make_router(CONFIG)
    calls = [asyncio.to_thread(invoke, router, "sleep", {"seconds": 0.3}) for _ in range(4)]
    answers = await asyncio.gather(*calls)
    assert [a[0] for a in answers] == [200] * 4 and all(json.loads(a[2]) == {"slept": 0.3} for a in answers)
    workers = workers_of(router)
    assert len(workers) == 2
    assert all(children(w) for w in workers)  # the instances are spread over both workers
    # The timeout is enforced in the worker, as in the daemon.
    status, headers, body = await asyncio.to_thread(invoke, router, "sleep", {"seconds": 3})
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(body)["errorType"] == "Sandbox.Timeout"
    # Reserved concurrency is taken in the daemon before a worker sees the call: exactly 2 run at once.
    capped = await asyncio.gather(
        *(asyncio.to_thread(invoke, router, "capped", {"seconds": 1}) for _ in range(4))
    )
    assert sorted(a[0] for a in capped) == [200, 200, 429, 429]
    throttled = next(a for a in capped if a[0] == 429)
    assert json.loads(throttled[2])["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # Each call's REPORT line, written by the worker that ran it, is on the daemon's log.
    request_id = answers[0][1]["x-amzn-RequestId"]
    for _ in range(100):
        if f"REPORT RequestId: {request_id}" in router.log_text():
            break
        await asyncio.sleep(0.05)
    assert f"REPORT RequestId: {request_id}" in router.log_text()


async def test_a_lost_worker_is_replaced_and_stop_leaves_nothing(make_router) -> None:
    router = await make_router(CONFIG)
    await asyncio.gather(*(asyncio.to_thread(invoke, router, "sleep", {"seconds": 0.2}) for _ in range(2)))
    workers = workers_of(router)
    victim = workers[0]
    orphans = instances_of([victim])
    os.kill(victim, signal.SIGKILL)
    await asyncio.sleep(0.5)
    # Calls go on: on the other worker's instances, and on new ones, launched in a fresh worker in place of
    # the lost one.
    again = await asyncio.gather(
        *(asyncio.to_thread(invoke, router, "sleep", {"seconds": 0.3}) for _ in range(3))
    )
    assert [a[0] for a in again] == [200] * 3 and all(json.loads(a[2]) == {"slept": 0.3} for a in again)
    now = workers_of(router)
    assert victim not in now and len(now) == 2
    # The lost worker's instances lost their Runtime API with it, and end.
    assert await asyncio.to_thread(wait_gone, orphans, 5.0) == []
    processes = instances_of(now) | set(now)
    assert await router.stop() == 0
    assert await asyncio.to_thread(wait_gone, processes, 5.0) == []
