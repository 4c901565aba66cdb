"""Accepted async events survive `kill -9` of the router: after a restart every one of them runs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import aiohttp

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
invoker: {isolation: "off"}  # the functions leave marks in the test's folder
functions:
  record:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/dispatch_record"
    timeout_s: 2
    %s
    environment: {RECORD_DIR: "${TMP}/marks"}
"""
EVENTS = 100


def marked(base: Path) -> set[int]:
    folder = base / "marks"
    return {int(p.name.split("-", 1)[0]) for p in folder.iterdir()} if folder.exists() else set()


def stored(base: Path) -> int:
    with sqlite3.connect(base / "state" / "queue.db") as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


async def test_sigkill_with_100_queued_events_then_restart_delivers_all(make_router) -> None:  # type: ignore[no-untyped-def]
    # One at a time and slow: when the router is killed, most events are still waiting in the queue.
    router = await make_router(CONFIG % "reserved_concurrency: 1")
    url = f"{router.url}/2015-03-31/functions/record/invocations"
    async with aiohttp.ClientSession() as http:
        for n in range(EVENTS):
            body = json.dumps({"n": n, "sleep": 0.05})
            async with http.post(url, data=body, headers={"X-Amz-Invocation-Type": "Event"}) as resp:
                assert resp.status == 202, await resp.text()
    await router.kill()
    before = marked(router.base_dir)
    waiting = stored(router.base_dir)
    assert len(before) < EVENTS and waiting >= EVENTS - len(before)

    router.config_path.write_text(CONFIG % "reserved_concurrency: 10")
    await router.restart()
    for _ in range(3000):
        if marked(router.base_dir) == set(range(EVENTS)):
            break
        await asyncio.sleep(0.01)
    assert marked(router.base_dir) == set(range(EVENTS))
    for _ in range(500):  # the last events are deleted from the store just after they ran
        if stored(router.base_dir) == 0:
            break
        await asyncio.sleep(0.01)
    assert stored(router.base_dir) == 0
    assert await router.stop() == 0
