"""Front processes (`server.processes`, `serve --processes N`) with a real `router serve`: the Invoke API is
served from two processes on one port, and nothing the router promises changes. Calls land on both
processes (the `ancestry` function says which one runs it), reserved and account concurrency stay exact
across them, everything but a synchronous call is handed to the primary with its connection, the primary
records and counts every call, deployments, limits and faults reach the other process before its next call,
a killed front process is replaced with its slots given back, and a stop leaves nothing behind."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from router.dispatch.ledger import Ledger
from router.processes import START_TIMEOUT_S, FrontProcesses
from tests.integration.inspect_client import Inspector
from tests.support import RouterProcess, children, free_port, wait_gone
from tests.unit.test_control_support import lambda_client, make_zip

CONFIG = """
server: {port: "${ROUTER_PORT}", processes: 2}
state_dir: state
account: {concurrency: 40, unreserved_min: 10}
invoker: {isolation: "off"}  # the function reads /proc up its process tree
functions:
  anc: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/ancestry", timeout_s: 10}
  capped: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/ancestry", timeout_s: 10,
           reserved_concurrency: 2}
  warm: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/ancestry", timeout_s: 10,
         provisioned_concurrency: 1}
"""

ANCESTRY = (Path(__file__).parents[1] / "functions" / "ancestry" / "app.py").read_text()


def invoke(router: RouterProcess, name: str, payload: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """One call on a fresh connection (so that the kernel picks a process for each)."""
    req = urllib.request.Request(
        f"{router.url}/2015-03-31/functions/{name}/invocations", data=json.dumps(payload).encode()
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), json.loads(e.read())


def front_processes(router: RouterProcess) -> list[int]:
    assert router.proc is not None
    return [
        p
        for p in children(router.proc.pid)
        if b"router.process_main" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]


def ran_on(answer: tuple[int, dict[str, str], Any], fronts: list[int]) -> str:
    """ "front" when a front process is up the instance's tree, else "primary"."""
    chain = answer[2]["chain"]
    return "front" if any(p in chain for p in fronts) else "primary"


async def calls(router: RouterProcess, name: str, payload: dict[str, Any], n: int) -> list[Any]:
    return list(await asyncio.gather(*(asyncio.to_thread(invoke, router, name, payload) for _ in range(n))))


async def test_calls_spread_and_limits_hold_across_processes(make_router) -> None:
    router = await make_router(CONFIG)
    fronts = front_processes(router)
    assert len(fronts) == 1
    inspector = Inspector(router.url)
    cursor = await inspector.cursor()
    # Forty calls, each on its own connection: both processes serve some.
    answers = [await asyncio.to_thread(invoke, router, "anc", {}) for _ in range(40)]
    assert {a[0] for a in answers} == {200}
    where = [ran_on(a, fronts) for a in answers]
    assert where.count("front") > 0 and where.count("primary") > 0, where
    # Reserved concurrency 2 holds across both processes, twice (the slots come back wherever they were).
    for _ in range(2):
        capped = await calls(router, "capped", {"seconds": 1.0}, 8)
        assert sorted(a[0] for a in capped) == [200] * 2 + [429] * 6
        throttled = next(a for a in capped if a[0] == 429)
        assert throttled[2]["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # A function with provisioned concurrency runs on the primary's provisioned instances only.
    warm = [await asyncio.to_thread(invoke, router, "warm", {}) for _ in range(10)]
    assert {a[0] for a in warm} == {200} and {ran_on(a, fronts) for a in warm} == {"primary"}
    # The primary counts, records and logs every call, the front process's too.
    front_ids = [a[1]["x-amzn-RequestId"] for a, w in zip(answers, where, strict=True) if w == "front"]
    for _ in range(100):
        if (
            await inspector.metric(
                "router_invocations_total", function="anc", invocation_type="RequestResponse"
            )
            >= 40
        ):
            break
        await asyncio.sleep(0.05)
    assert (
        await inspector.metric("router_invocations_total", function="anc", invocation_type="RequestResponse")
        == 40
    )
    reason = "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert await inspector.metric("router_throttles_total", function="capped", reason=reason) == 12
    # Its gauges count the front process's instances too (reported each second).
    instances = len({a[2]["chain"][0] for a in answers})  # one warm instance per process, reused
    assert instances == 2
    for _ in range(100):
        if await inspector.metric("router_instances", function="anc", state="idle") == instances:
            break
        await asyncio.sleep(0.05)
    assert await inspector.metric("router_instances", function="anc", state="idle") == instances
    # A poller may ask for one metric only (name[], as prometheus_client's exposition filters).
    url = f"{router.url}/metrics?name[]=router_invocations_total"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: ASYNC210 - one short local call
        only = [line for line in response.read().decode().splitlines() if not line.startswith("#")]
    assert only and all(line.startswith("router_invocations_total{") for line in only), only
    recorded = {i["request_id"] for i in await inspector.invocations("anc", after=cursor, limit=100)}
    assert set(front_ids) <= recorded
    assert f"REPORT RequestId: {front_ids[0]}" in router.log_text()


async def test_everything_else_is_handed_to_the_primary(make_router) -> None:
    router = await make_router(CONFIG)
    fronts = front_processes(router)
    seen = set()
    # On each of twelve connections: a management call, an Event invoke, then a synchronous one, in turn.
    for _ in range(12):
        connection = http.client.HTTPConnection("127.0.0.1", router.port, timeout=30)
        connection.request("POST", "/2015-03-31/functions/anc/invocations", body=b"{}")
        first = connection.getresponse()
        seen.add(ran_on((first.status, {}, json.loads(first.read())), fronts))
        connection.request("GET", "/2015-03-31/functions/")
        listed = connection.getresponse()
        assert listed.status == 200
        assert sorted(f["FunctionName"] for f in json.loads(listed.read())["Functions"]) == [
            "anc",
            "capped",
            "warm",
        ]
        connection.request(
            "POST",
            "/2015-03-31/functions/anc/invocations",
            body=b"{}",
            headers={"X-Amz-Invocation-Type": "Event"},
        )
        queued = connection.getresponse()
        assert queued.status == 202 and queued.read() == b""
        connection.request("POST", "/2015-03-31/functions/anc/invocations", body=b"{}")
        after = connection.getresponse()
        assert after.status == 200 and ran_on((200, {}, json.loads(after.read())), fronts) == "primary"
        connection.close()
    assert seen == {"front", "primary"}  # some connections did start on the front process
    # A large request handed over while its body is still arriving: the primary reads it whole, in order.
    big = json.dumps({"pad": "x" * 900_000}).encode()
    for _ in range(8):
        connection = http.client.HTTPConnection("127.0.0.1", router.port, timeout=30)
        event = {"X-Amz-Invocation-Type": "Event"}
        connection.request("POST", "/2015-03-31/functions/anc/invocations", body=big, headers=event)
        queued = connection.getresponse()
        assert queued.status == 202, queued.read()
        queued.read()
        connection.close()
    inspector = Inspector(router.url)
    for _ in range(200):
        if await inspector.metric("router_invocations_total", function="anc", invocation_type="Event") == 20:
            break
        await asyncio.sleep(0.05)
    assert await inspector.metric("router_invocations_total", function="anc", invocation_type="Event") == 20


async def test_changes_reach_the_front_process_before_its_next_call(make_router) -> None:
    router = await make_router(CONFIG)
    fronts = front_processes(router)
    client = lambda_client(router.url)
    role = "arn:aws:iam::123456789012:role/x"
    zip_v1 = make_zip({"app.py": ANCESTRY})
    await asyncio.to_thread(
        client.create_function,
        FunctionName="deployed", Runtime="python3.11", Role=role, Handler="app.handler",
        Code={"ZipFile": zip_v1}, Timeout=10,
    )  # fmt: skip
    first = [await asyncio.to_thread(invoke, router, "deployed", {}) for _ in range(16)]
    assert {a[0] for a in first} == {200} and {a[2]["tag"] for a in first} == {"v1"}
    assert {ran_on(a, fronts) for a in first} == {"front", "primary"}
    zip_v2 = make_zip({"app.py": ANCESTRY.replace('TAG = "v1"', 'TAG = "v2"')})
    await asyncio.to_thread(client.update_function_code, FunctionName="deployed", ZipFile=zip_v2)
    second = [await asyncio.to_thread(invoke, router, "deployed", {}) for _ in range(16)]
    assert {a[2]["tag"] for a in second} == {"v2"}
    # A reservation of 0 throttles it everywhere at once.
    await asyncio.to_thread(
        client.put_function_concurrency, FunctionName="deployed", ReservedConcurrentExecutions=0
    )
    third = [await asyncio.to_thread(invoke, router, "deployed", {}) for _ in range(16)]
    assert {a[0] for a in third} == {429}
    # Faults set through the inspection API apply to every call, whichever process took the connection.
    inspector = Inspector(router.url)
    await inspector.faults(functions={"anc": {"error_rate": 1.0, "seed": 1}})
    faulted = [await asyncio.to_thread(invoke, router, "anc", {}) for _ in range(16)]
    assert {a[1].get("X-Amz-Function-Error") for a in faulted} == {"Unhandled"}
    await inspector.faults(functions={"anc": None})
    healed = [await asyncio.to_thread(invoke, router, "anc", {}) for _ in range(16)]
    assert {a[0] for a in healed} == {200} and {ran_on(a, fronts) for a in healed} == {"front", "primary"}


async def test_a_killed_front_process_is_replaced_and_its_slots_come_back(make_router) -> None:
    router = await make_router(CONFIG.replace("reserved_concurrency: 2", "reserved_concurrency: 6"))
    (victim,) = front_processes(router)
    # Six long calls fill the reservation, spread over both processes; the front process dies under some.
    running = asyncio.gather(
        *(asyncio.to_thread(invoke, router, "capped", {"seconds": 2.0}) for _ in range(6))
    )
    await asyncio.sleep(1.0)
    orphans = {p for c in children(victim) for p in (c, *children(c))}
    os.kill(victim, signal.SIGKILL)
    answers = await asyncio.gather(running, return_exceptions=True)
    assert not isinstance(answers, BaseException)
    for _ in range(300):
        now = front_processes(router)
        if now and now != [victim] and router.log_text().count("front process 1 listening") == 2:
            break
        await asyncio.sleep(0.05)
    (replacement,) = front_processes(router)
    assert replacement != victim
    # The dead process's slots were given back: all six fit again.
    again = await calls(router, "capped", {"seconds": 0.5}, 6)
    assert [a[0] for a in again] == [200] * 6
    assert await asyncio.to_thread(wait_gone, orphans, 5.0) == []
    # A stop drains and ends everything: the front process, its instances, and the shared ledger file.
    argv = (await asyncio.to_thread(Path(f"/proc/{replacement}/cmdline").read_bytes)).split(b"\0")
    ledger = Path(argv[argv.index(b"--ledger") + 1].decode())
    assert await asyncio.to_thread(ledger.is_file)
    processes = {replacement, *(p for c in children(replacement) for p in (c, *children(c)))}
    assert await router.stop() == 0
    assert await asyncio.to_thread(wait_gone, processes, 5.0) == []
    assert not await asyncio.to_thread(ledger.exists)


async def test_a_front_process_that_cannot_start_fails_the_start_at_once(tmp_path: Path) -> None:
    ledger = Ledger.create(2)
    ledger.path.unlink()  # the front process cannot open it: it exits before it listens
    dispatcher: Any = SimpleNamespace(elsewhere={})  # all the start touches of it: no message comes
    starting = FrontProcesses(
        processes=2, ledger=ledger, dispatcher=dispatcher, front=None, config=lambda: None,  # type: ignore[arg-type]
        state_dir=tmp_path, port=free_port(),
    )  # fmt: skip
    began = time.monotonic()
    with pytest.raises(RuntimeError, match=r"front process\(es\) \[1\] did not start"):
        await starting.start()
    assert time.monotonic() - began < START_TIMEOUT_S / 2  # not after the whole start timeout
    await starting.stop()
    ledger.close()


GATEWAY = (
    CONFIG
    + """
  edited: {runtime: python3.11, handler: app.handler, code: "${TMP}/edited", timeout_s: 10}
sources:
  api: {kind: http, port: "${HTTP_PORT}"}
routes:
  - {source: api, function: anc, http: {method: GET, path: /who}}
  - {source: api, function: edited, http: {method: GET, path: /edited}}
"""
)


def get(port: int, path: str) -> tuple[int, Any]:
    """One gateway request on a fresh connection."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return response.status, json.loads(response.read())


async def test_the_http_gateway_is_served_by_every_process(make_router) -> None:
    port = free_port()
    router = await make_router(GATEWAY, env={"HTTP_PORT": str(port)}, files={"edited/app.py": ANCESTRY})
    fronts = front_processes(router)
    inspector = Inspector(router.url)
    answers = [await asyncio.to_thread(get, port, "/who") for _ in range(30)]
    assert {status for status, _ in answers} == {200}
    where = [ran_on((200, {}, body), fronts) for _, body in answers]
    assert where.count("front") > 0 and where.count("primary") > 0, where
    # The primary records the front process's gateway calls, with the events its routes accepted.
    for _ in range(100):
        recorded = await inspector.invocations("anc", limit=100)
        if len(recorded) >= 30:
            break
        await asyncio.sleep(0.05)
    assert len(recorded) == 30 and {r["source"] for r in recorded} == {"api"}
    # While the gateway has faults in force, the primary serves it alone; once they end, both again.
    await inspector.faults(sources={"api": {"duplicate": 1.0, "seed": 3}})
    for _ in range(100):  # the front process closes its gateway when it catches up (its next Invoke call)
        await asyncio.to_thread(invoke, router, "anc", {})
        if not await asyncio.to_thread(listening, router, port, fronts[0]):
            break
    faulted = [await asyncio.to_thread(get, port, "/who") for _ in range(16)]
    assert {ran_on((200, {}, body), fronts) for _, body in faulted} == {"primary"}
    await inspector.faults(sources={"api": None})
    for _ in range(100):
        await asyncio.to_thread(invoke, router, "anc", {})
        if await asyncio.to_thread(listening, router, port, fronts[0]):
            break
    healed = [await asyncio.to_thread(get, port, "/who") for _ in range(30)]
    assert {ran_on((200, {}, body), fronts) for _, body in healed} == {"front", "primary"}
    # Edited code (hot reload in the primary) is what the next gateway call runs, on either process, with no
    # Invoke call in between to make the front process catch up.
    first = [await asyncio.to_thread(get, port, "/edited") for _ in range(12)]
    assert {body["tag"] for _, body in first} == {"v1"}
    code = router.base_dir / "edited" / "app.py"
    await asyncio.to_thread(code.write_text, ANCESTRY.replace('TAG = "v1"', 'TAG = "v2"'))
    for _ in range(200):
        if "hot reload: edited" in router.log_text():
            break
        await asyncio.sleep(0.05)
    edited = [await asyncio.to_thread(get, port, "/edited") for _ in range(20)]
    assert {body["tag"] for _, body in edited} == {"v2"}
    assert {ran_on((200, {}, body), fronts) for _, body in edited} == {"front", "primary"}


def listening(router: RouterProcess, port: int, pid: int) -> bool:
    """Whether process `pid` has a listening socket on `port` (from /proc/net/tcp and its descriptors)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            inodes.add(fields[9])
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False
