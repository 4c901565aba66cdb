"""The schedule: an EventBridge scheduled event every minute (this module runs last, see conftest.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.e2e.stack import Records, Stack


def fired_at(record: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(record["event"]["time"].replace("Z", "+00:00")).timestamp()


def test_schedule_fires_on_the_minute(stack: Stack, records: Records) -> None:
    # Only a tick after the suite began counts: a stack that has run for a while has older ones.
    [record, *_] = records.wait_for("schedule", lambda r: fired_at(r) >= stack.started, timeout=100)
    event = record["event"]
    assert record["function"] == "on_tick"
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["time"].endswith(":00Z")  # cron(* * * * ? *): on the minute
    assert len(event["resources"]) == 1 and ":rule/" in event["resources"][0]
