"""No instance outlives the router: kill -9 of `router serve` with busy, looping, daemonising and
SIGTERM-ignoring instances (forked from the zygote, fresh Python, Node.js) leaves no process behind: the
keeper kills them at once; if the keeper dies too, the next start on the same state_dir does
(router/invoker/leftovers.py). Real processes throughout."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import MakeRouter
from tests.support import RouterProcess, children, wait_until

pytestmark = pytest.mark.integration

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: "${TMP}/state"
functions:
  forked:   {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/spawner", timeout_s: 600}
  fresh:    {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/spawner", timeout_s: 600,
             python_zygote: false}
  looping:  {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/spawner", timeout_s: 600}
  node:     {runtime: nodejs20.x, handler: index.handler, code: "${FUNCTIONS}/node_sleep", timeout_s: 600}
"""
EVENTS = [
    ("forked", {"mode": "double"}),
    ("forked", {"mode": "child"}),
    ("fresh", {"mode": "double"}),
    ("fresh", {"mode": "child"}),
    ("looping", {"mode": "loop"}),
    ("node", {}),
]


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def survivors(pids: list[int]) -> list[tuple[int, str]]:
    return [(p, cmdline(p)) for p in pids if running(p)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


PIDS = re.compile(r"pids: ([\d ]+)")


def logged_pids(router: RouterProcess) -> list[list[int]]:
    """The "pids: ..." line of each busy instance (Python prints it bare, Node.js with its prefix)."""
    found = []
    for line in router.log_text().splitlines():
        try:
            match = PIDS.search(json.loads(line).get("msg", ""))
        except ValueError:
            continue
        if match:
            found.append([int(p) for p in match.group(1).split()])
    return found


def helpers_of(router: RouterProcess) -> list[int]:
    """The router's own helpers: its zygote, its keeper and its record's writer."""
    zygotes = [int(z) for z in re.findall(r"python zygote (\d+) started", router.log_text())]
    state = str(router.base_dir / "state")
    keepers = [int(e) for e in os.listdir("/proc") if e.isdigit() and "leftovers " + state in cmdline(int(e))]
    return zygotes + keepers + writers_of(router)


def writers_of(router: RouterProcess) -> list[int]:
    """The router's record writer process (router/record/writer.py), a child of one of its threads."""
    assert router.proc is not None
    return [c for c in children(router.proc.pid) if "router.record.writer" in cmdline(c)]


def invoke_async(router: RouterProcess, function: str, event: dict[str, object]) -> None:
    url = f"{router.url}/2015-03-31/functions/{function}/invocations"
    headers = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(event).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def cgroup_dirs(router: RouterProcess) -> list[Path]:
    record = json.loads((router.base_dir / "state" / "run" / "router.json").read_text())
    return [Path(d) for d in record["cgroups"]]


def instance_groups(dirs: list[Path]) -> list[Path]:
    return [g for d in dirs if d.is_dir() for g in d.iterdir() if g.is_dir()]


async def busy_router(make_router: MakeRouter) -> tuple[RouterProcess, list[int]]:
    """A router with every kind of instance busy, and the pids of all they started."""
    router = await make_router(CONFIG)
    for function, event in EVENTS:
        await asyncio.to_thread(invoke_async, router, function, event)
    await wait_until(
        lambda: len(logged_pids(router)) >= len(EVENTS),
        "every instance busy",
        context=lambda: router.log_text()[-3000:],
    )
    pids = [p for line in logged_pids(router) for p in line]
    assert len(pids) == len(EVENTS) + 4 and all(running(p) for p in pids)
    return router, pids


async def test_kill_9_of_the_router_leaves_no_process_behind(make_router: MakeRouter) -> None:
    router, pids = await busy_router(make_router)
    helpers = helpers_of(router)
    assert len(writers_of(router)) == 1  # the record's writer, which ends at EOF of its socket
    groups = instance_groups(cgroup_dirs(router))
    assert router.proc is not None
    router.proc.kill()
    router.proc.wait()
    await wait_until(
        lambda: not any(running(p) for p in pids + helpers),
        lambda: f"every instance and helper gone; left: {survivors(pids + helpers)}",
    )
    await wait_until(lambda: not any(g.exists() for g in groups), "every instance's cgroup removed")


async def test_what_survives_the_router_and_its_keeper_dies_at_the_next_start(
    make_router: MakeRouter,
) -> None:
    router, pids = await busy_router(make_router)
    keeper = [p for p in helpers_of(router) if "leftovers" in cmdline(p)]
    assert len(keeper) == 1
    groups = instance_groups(cgroup_dirs(router))
    assert groups
    os.kill(keeper[0], signal.SIGKILL)  # the router and its keeper die together
    assert router.proc is not None
    router.proc.kill()
    router.proc.wait()
    await wait_until(lambda: not running(keeper[0]), "the keeper gone")
    assert any(running(p) for p in pids)  # the daemons of double forks, at least: nobody killed them yet
    await router.start()  # same state_dir
    assert not any(running(p) for p in pids)
    assert not any(g.exists() for g in groups)
    dirs = cgroup_dirs(router)
    await router.stop()
    assert not any(d.exists() for d in dirs)  # a clean stop removes the router's own groups too


async def test_the_routers_own_processes_are_not_taken_for_strays(make_router: MakeRouter) -> None:
    """The router is a child subreaper: a child it did not start is a stray from an instance's tree, killed
    with the router. Its own (the record's writer, the zygote, the keeper) must not be taken for one."""
    router = await make_router(CONFIG)
    await asyncio.to_thread(invoke_async, router, "looping", {"mode": "child"})  # instances: the sweep runs
    await wait_until(lambda: logged_pids(router), "the instance started", context=router.log_text)
    writer = writers_of(router)
    assert len(writer) == 1
    await asyncio.sleep(2.5)  # the orphan sweep runs every second
    run = router.base_dir / "state" / "run"
    strays = sorted(int(p.stem.split("-", 1)[1]) for p in run.glob("stray-*.json"))
    own = set(helpers_of(router))
    assert not own & set(strays), (strays, own, [cmdline(p) for p in strays])
    for pid in own:
        assert f"pid {pid} left its instance's process tree" not in router.log_text()
