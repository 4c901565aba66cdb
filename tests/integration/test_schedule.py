"""Schedules end to end: the router as a subprocess, a real function recording the events it receives.

Ticks are minutes or hours apart, so instead of waiting for one the tests start the router as if it had been
down for hours: they write the schedule's state (its last fired tick, hours ago) into the state folder before
the start, which is exactly what a router stopped hours ago leaves behind. The missed-tick policy then decides
what fires at the start.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from tests.integration import record_function
from tests.integration.record_function import events
from tests.integration.source_triggers import last_tick
from tests.support import wait_until

CONFIG = (
    record_function.CONFIG
    + """
sources:
  hourly: {kind: schedule, expression: "cron(0 * * * ? *)"}
  skipped: {kind: schedule, expression: "cron(0 * * * ? *)", missed: skip}
  compact: {kind: schedule, expression: "rate(5 minutes)", input: {job: compact, dry_run: false}}
  sentinel: {kind: schedule, expression: "cron(0 * * * ? *)"}
routes:
  - {source: hourly, function: record}
  - {source: skipped, function: record}
  - {source: compact, function: record}
  - {source: sentinel, function: record}
"""
)

# Hourly at a minute half an hour away from now, so that no tick can fall "on time" (within missed_after_s)
# while the test runs, whatever the time of day: the test is about missed ticks only.
MINUTE = (dt.datetime.now(dt.UTC).minute + 30) % 60
HOURLY = f"cron({MINUTE} * * * ? *)"
CONFIG = CONFIG.replace("cron(0 * * * ? *)", HOURLY)


def state(expression: str, last_tick: float, anchor: float | None = None) -> str:
    return json.dumps(
        {
            "expression": expression,
            "timezone": "UTC",
            "anchor": anchor or last_tick,
            "last_tick": last_tick,
            "pending": [],
        }
    )


def from_rule(base: Path, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events(base)
        if e.get("resources") == [f"arn:aws:events:us-east-1:123456789012:rule/{name}"]
    ]


def jobs(base: Path) -> list[dict[str, Any]]:
    """Events of the `compact` schedule: its input replaces the scheduled event."""
    return [e for e in events(base) if "job" in e]


def hour_floor(t: float) -> str:
    """The latest hourly tick (at MINUTE past the hour) at or before t."""
    tick = t // 3600 * 3600 + MINUTE * 60
    if tick > t:
        tick -= 3600
    return dt.datetime.fromtimestamp(tick, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_missed_ticks_fire_once_at_start_and_never_again(make_router) -> None:
    before = time.time()
    hours_ago = before - 3 * 3600 - 60
    anchor = before - 12 * 60  # rate(5 minutes): ticks at +5 and +10 minutes were missed
    files = {
        "state/sources/hourly/schedule.json": state(HOURLY, hours_ago),
        "state/sources/skipped/schedule.json": state(HOURLY, hours_ago),
        "state/sources/compact/schedule.json": state("rate(5 minutes)", anchor, anchor),
    }
    router = await make_router(CONFIG, files=files)
    after = time.time()
    base = router.base_dir

    await wait_until(
        lambda: len(from_rule(base, "hourly")) == 1 and len(jobs(base)) == 1,
        "the missed ticks to fire",
    )
    await wait_until(
        lambda: last_tick(base, "skipped") > hours_ago, "the skipped schedule to handle its ticks"
    )
    hourly = from_rule(base, "hourly")[0]
    assert hourly["time"] in {hour_floor(before), hour_floor(after)}  # the latest missed tick, fired once
    assert hourly["detail-type"] == "Scheduled Event" and hourly["source"] == "aws.events"
    assert hourly["detail"] == {} and hourly["version"] == "0" and hourly["account"] == "123456789012"
    assert jobs(base) == [{"job": "compact", "dry_run": False}]  # the input, instead of the scheduled event
    assert from_rule(base, "skipped") == []  # missed: skip fires nothing for the downtime

    # A graceful restart fires nothing again; the sentinel, made to look hours late, shows the start is done.
    assert await router.stop() == 0
    (base / "state" / "sources" / "sentinel" / "schedule.json").write_text(state(HOURLY, time.time() - 7200))
    await router.start()
    await wait_until(lambda: len(from_rule(base, "sentinel")) == 1, "the sentinel tick")
    assert len(from_rule(base, "hourly")) == 1 and len(jobs(base)) == 1
    assert from_rule(base, "skipped") == []
