"""The schedule driver: `rate(1 minute)` on a FakeClock; an event is the next tick, made by stepping time.

The key is the tick's scheduled time (the event's `time`). Acknowledged = the tick recorded as fired in
`<state_dir>/schedule.json`. After a refusal the source backs off on its clock; `retry` steps the clock past
that back-off (the tick is then still on time, so it fires, with the same event id).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from router.core.clock import FakeClock
from tests.contract.drivers.base import Event, KindDriver
from tests.contract.harness import until

START = 1_700_000_040.0  # a whole minute: the first start anchors rate() ticks here
PERIOD = 60.0
BACKOFF_S = 1.0  # the source's first back-off after a refused tick


class ScheduleDriver(KindDriver):
    kind = "schedule"
    name = "schedule"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fake = FakeClock(START)
        self.clock = self.fake

    def source_yaml(self) -> str:
        return "expression: rate(1 minute)"

    async def produce(self) -> Event:
        now = self.fake.time()
        tick = START + PERIOD * (math.floor((now - START) / PERIOD) + 1)
        await self.fake.advance(tick - now)
        return Event(dt.datetime.fromtimestamp(tick, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), tick)

    def keys(self, event: Any) -> list[str]:
        return [event["time"]]

    async def acknowledged(self, event: Event) -> bool:
        state = json.loads((self.state_dir / "schedule.json").read_text())
        return bool(state["last_tick"] >= event.handle)

    async def retry(self, event: Event) -> Event:
        await until(lambda: self.fake.sleepers > 0, "the schedule source backing off")
        await self.fake.advance(BACKOFF_S)
        return event
