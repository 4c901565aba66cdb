"""One router per state_dir (router/core/state_lock.py): a second `router serve` on a folder in use exits 2
with one line naming the folder and the router that holds it, and touches nothing of the first one. Before
the lock, the second swept the first one's instance groups at its start and removed its cgroups as it gave
up, so every later cold start of the first router failed with Sandbox.Failure. Real processes throughout."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import MakeRouter
from tests.support import RouterProcess, free_port, wait_until

pytestmark = pytest.mark.integration

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: "${STATE}"
functions:
  first:  {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo"}
  second: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo"}
"""


def invoke(router: RouterProcess, function: str) -> tuple[int, dict[str, object]]:
    url = f"{router.url}/2015-03-31/functions/{function}/invocations"
    request = urllib.request.Request(url, data=b'{"n": 1}', method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, {
            **json.loads(response.read()),
            "error": response.headers.get("X-Amz-Function-Error"),
        }


async def report(router: RouterProcess, request_id: str) -> dict[str, object]:
    """The fields of the call's REPORT line in the router's log."""

    def find() -> dict[str, object] | None:
        for line in router.log_text().splitlines():
            if request_id in line and '"msg":"REPORT' in line:
                return dict(json.loads(line))
        return None

    await wait_until(lambda: find() is not None, f"the REPORT line of {request_id}", context=router.log_text)
    found = find()
    assert found is not None
    return found


def instance_groups(state: Path) -> list[Path]:
    record = json.loads((state / "run" / "router.json").read_text())
    return [g for d in record["cgroups"] if Path(d).is_dir() for g in Path(d).iterdir() if g.is_dir()]


async def test_a_second_router_on_the_same_state_dir_stops_and_leaves_the_first_alone(
    make_router: MakeRouter, tmp_path: Path
) -> None:
    state = tmp_path / "shared-state"
    running = await make_router(CONFIG, env={"STATE": str(state)}, name="running")
    status, body = await asyncio.to_thread(invoke, running, "first")
    assert (status, body["error"]) == (200, None)
    warm = body["request_id"]
    groups = instance_groups(state)  # empty where cgroups are not available; the rest still holds

    other = await make_router(CONFIG, env={"STATE": str(state), "ROUTER_PORT": str(free_port())},
                              name="other", start=False)  # fmt: skip
    with pytest.raises(RuntimeError, match="exited with 2"):
        await other.start()
    assert running.proc is not None
    assert (
        f"state_dir {state.resolve()} is in use by another router (pid {running.proc.pid})"
        in other.log_text()
    )

    assert all(g.is_dir() for g in groups)  # the first router's instance is still there...
    status, body = await asyncio.to_thread(invoke, running, "first")
    assert (status, body["error"]) == (200, None) and body["request_id"] != warm
    assert (await report(running, str(body["request_id"])))["cold"] is False
    # ...and a cold start still gets its sandbox (the folder's cgroups were not removed under it).
    status, body = await asyncio.to_thread(invoke, running, "second")
    assert (status, body["error"]) == (200, None), body
    assert await running.stop() == 0


async def test_a_router_starts_right_after_the_previous_one_stopped(
    make_router: MakeRouter, tmp_path: Path
) -> None:
    """A clean stop releases the folder at once, and tells its keeper there is nothing to clean."""
    state = tmp_path / "state"
    router = await make_router(CONFIG, env={"STATE": str(state)})
    assert (await asyncio.to_thread(invoke, router, "first"))[0] == 200
    assert await router.stop() == 0
    again = await make_router(CONFIG, env={"STATE": str(state)}, name="again")
    status, body = await asyncio.to_thread(invoke, again, "second")
    assert (status, body["error"]) == (200, None)
    assert "killed" not in router.log_text() + again.log_text()
