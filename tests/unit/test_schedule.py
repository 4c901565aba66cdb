"""The schedule source stepped through days on a FakeClock: ticks, restarts, missed ticks, overlap."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from router.config.sources import ScheduleConfig
from router.core.clock import FakeClock
from router.core.envelope import Envelope
from router.core.errors import ConfigError, Throttled
from router.core.ports import Delivery, SourceContext
from router.sources import schedule
from router.validate import parse_config

UTC = dt.UTC


def at(*args: int, tz: dt.tzinfo = UTC) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


def config(expression: str, **settings: Any) -> ScheduleConfig:
    lines = "\n".join(f"    {k}: {v}" for k, v in {"expression": repr(expression), **settings}.items())
    return parse_config(f"sources:\n  nightly:\n    kind: schedule\n{lines}\n").sources["nightly"]  # type: ignore[no-any-return]


class Collector:
    """A submit that records envelopes; `refuse` makes the next calls raise a dispatch error."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse = 0

    async def __call__(self, envelopes: Sequence[Envelope]) -> Delivery:
        if self.refuse:
            self.refuse -= 1
            raise Throttled("over the limit")
        self.envelopes.extend(envelopes)
        return Delivery(queued=len(envelopes), request_ids=[f"req-{len(self.envelopes)}"])

    @property
    def times(self) -> list[str]:
        return [e.record.get("time", "") for e in self.envelopes]


class Running:
    """A schedule source running on a FakeClock, restartable on the same state folder."""

    def __init__(
        self, state_dir: Path, cfg: ScheduleConfig, clock: FakeClock, submit: Collector, settled: Any = None
    ) -> None:
        self.ctx = SourceContext(
            name="nightly",
            config=cfg,
            routes=[],
            state_dir=state_dir,
            clock=clock,
            submit=submit,
            settled=settled,
        )
        self.source = schedule.create(self.ctx)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.source.run())
        for _ in range(5):
            await asyncio.sleep(0)

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.source.aclose()
        await self.source.aclose()  # idempotent


async def run_for(
    tmp_path: Path, cfg: ScheduleConfig, start: float, seconds: float, submit: Collector | None = None
) -> Collector:
    submit = submit or Collector()
    clock = FakeClock(start)
    running = Running(tmp_path, cfg, clock, submit)
    await running.start()
    await clock.advance(seconds)
    await running.stop()
    return submit


async def test_each_tick_fires_once_with_the_scheduled_event(tmp_path: Path) -> None:
    got = await run_for(tmp_path, config("cron(0 3 * * ? *)"), at(2024, 1, 1), 3 * 86400 + 1)
    assert got.times == ["2024-01-01T03:00:00Z", "2024-01-02T03:00:00Z", "2024-01-03T03:00:00Z"]
    ev = got.envelopes[0].record
    assert ev["detail-type"] == "Scheduled Event" and ev["source"] == "aws.events" and ev["detail"] == {}
    assert ev["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/nightly"]
    assert ev["account"] == "123456789012" and ev["region"] == "us-east-1" and ev["version"] == "0"
    assert got.envelopes[0].kind == "schedule" and got.envelopes[0].id == ev["id"]
    assert len({e.id for e in got.envelopes}) == 3


async def test_spring_forward_and_fall_back_in_berlin(tmp_path: Path) -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    got = await run_for(
        tmp_path,
        config("cron(30 2 * * ? *)", timezone="Europe/Berlin"),
        at(2024, 3, 29, tz=berlin),
        4 * 86400,
    )
    # 2024-03-31 02:30 does not exist in Berlin: skipped; before 01:30Z (+01:00), after 00:30Z (+02:00)
    assert got.times == ["2024-03-29T01:30:00Z", "2024-03-30T01:30:00Z", "2024-04-01T00:30:00Z"]

    got = await run_for(
        tmp_path / "fall",
        config("cron(0/30 * * * ? *)", timezone="Europe/Berlin"),
        at(2024, 10, 26, 23, 50),
        3 * 3600,
    )  # 01:50 CEST .. 03:50 CET
    # 02:00 and 02:30 happen twice that night: they fire at the first occurrence only (00:00Z, 00:30Z), not
    # again at 01:00Z and 01:30Z; 03:00 CET is 02:00Z
    assert got.times == [
        "2024-10-27T00:00:00Z",
        "2024-10-27T00:30:00Z",
        "2024-10-27T02:00:00Z",
        "2024-10-27T02:30:00Z",
    ]


async def test_month_ends_and_leap_day_with_l_and_lw(tmp_path: Path) -> None:
    got = await run_for(tmp_path, config("cron(0 0 L * ? *)"), at(2024, 2, 27), 6 * 86400)
    assert got.times == ["2024-02-29T00:00:00Z"]
    got = await run_for(tmp_path / "2023", config("cron(0 0 L * ? *)"), at(2023, 2, 27), 6 * 86400)
    assert got.times == ["2023-02-28T00:00:00Z"]
    got = await run_for(tmp_path / "daily", config("cron(0 12 * * ? *)"), at(2024, 2, 27), 3 * 86400)
    assert [t[:10] for t in got.times] == ["2024-02-27", "2024-02-28", "2024-02-29"]
    got = await run_for(tmp_path / "lw", config("cron(0 18 LW * ? *)"), at(2024, 3, 27), 6 * 86400)
    assert got.times == ["2024-03-29T18:00:00Z"]  # 31 March 2024 is a Sunday: the last weekday is Friday 29th
    got = await run_for(tmp_path / "dec", config("cron(0 0 1 * ? *)"), at(2024, 12, 30), 3 * 86400)
    assert got.times == ["2025-01-01T00:00:00Z"]  # across the year end


async def test_nth_weekday_and_nearest_weekday(tmp_path: Path) -> None:
    got = await run_for(tmp_path, config("cron(0 9 ? * 2#1 *)"), at(2024, 5, 30), 10 * 86400)
    assert got.times == ["2024-06-03T09:00:00Z"]  # the first Monday of June
    got = await run_for(tmp_path / "last", config("cron(0 9 ? * 6L *)"), at(2024, 5, 20), 14 * 86400)
    assert got.times == ["2024-05-31T09:00:00Z"]  # the last Friday of May, not the 24th
    got = await run_for(tmp_path / "w", config("cron(0 9 15W * ? *)"), at(2024, 6, 10), 10 * 86400)
    assert got.times == ["2024-06-14T09:00:00Z"]  # 15 June 2024 is a Saturday: the nearest weekday is Friday


async def test_rate_ticks_are_fixed_durations_from_the_first_start(tmp_path: Path) -> None:
    start = at(2024, 3, 30, 12)
    got = await run_for(tmp_path, config("rate(5 minutes)"), start, 86400)
    assert len(got.envelopes) == 288
    assert got.times[0] == "2024-03-30T12:05:00Z" and got.times[-1] == "2024-03-31T12:00:00Z"
    # rate(1 day) is 24 hours even across a DST change in the schedule's zone
    got = await run_for(tmp_path / "d", config("rate(1 day)", timezone="Europe/Berlin"), start, 3 * 86400)
    assert got.times == ["2024-03-31T12:00:00Z", "2024-04-01T12:00:00Z", "2024-04-02T12:00:00Z"]


async def test_restart_neither_repeats_nor_loses_ticks(tmp_path: Path) -> None:
    cfg = config("cron(0 * * * ? *)")
    submit = Collector()
    clock = FakeClock(at(2024, 1, 1, 0, 30))
    first = Running(tmp_path, cfg, clock, submit)
    await first.start()
    await clock.advance(2 * 3600)  # 01:00, 02:00
    await first.stop()
    second = Running(tmp_path, cfg, clock, submit)  # restart at once: nothing missed, nothing repeated
    await second.start()
    await clock.advance(3600)  # 03:00
    await second.stop()
    assert submit.times == ["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z", "2024-01-01T03:00:00Z"]


@pytest.mark.parametrize(("policy", "expected"), [("fire_once", ["2024-01-01T06:00:00Z"]), ("skip", [])])
async def test_missed_ticks_after_downtime(tmp_path: Path, policy: str, expected: list[str]) -> None:
    cfg = config("cron(0 * * * ? *)", missed=policy)
    submit = Collector()
    clock = FakeClock(at(2024, 1, 1, 0, 30))
    first = Running(tmp_path, cfg, clock, submit)
    await first.start()
    await clock.advance(3600)  # 01:00 fires
    await first.stop()
    await clock.advance(5 * 3600 + 15 * 60)  # down from 01:30 to 06:45: 02:00 .. 06:00 missed
    second = Running(tmp_path, cfg, clock, submit)
    await second.start()
    await clock.advance(30 * 60)  # 07:00 on time
    await second.stop()
    assert submit.times == ["2024-01-01T01:00:00Z", *expected, "2024-01-01T07:00:00Z"]


async def test_restart_right_at_a_tick_fires_it_once_standing_for_the_missed(tmp_path: Path) -> None:
    cfg = config("cron(0 * * * ? *)")
    submit = Collector()
    clock = FakeClock(at(2024, 1, 1, 0, 30))
    first = Running(tmp_path, cfg, clock, submit)
    await first.start()
    await first.stop()
    await clock.advance(3 * 3600 + 30 * 60 + 10)  # 04:00:10: 01:00-03:00 missed, 04:00 on time
    second = Running(tmp_path, cfg, clock, submit)
    await second.start()
    await second.stop()
    assert submit.times == ["2024-01-01T04:00:00Z"]


async def test_first_start_fires_nothing_for_the_past(tmp_path: Path) -> None:
    got = await run_for(tmp_path, config("cron(0 * * * ? *)"), at(2024, 1, 1, 0, 59, 59), 0.5)
    assert got.envelopes == []


async def test_a_refused_tick_is_retried_until_accepted(tmp_path: Path) -> None:
    submit = Collector()
    submit.refuse = 3
    got = await run_for(tmp_path, config("cron(0 * * * ? *)"), at(2024, 1, 1, 0, 30), 3600, submit)
    assert got.times == ["2024-01-01T01:00:00Z"]  # refused 3 times (backoff 1+2+4 s), then accepted once


async def test_overlap_false_waits_for_the_previous_run(tmp_path: Path) -> None:
    release = asyncio.Event()
    waited: list[list[str]] = []

    async def settled(request_ids: Sequence[str]) -> None:
        waited.append(list(request_ids))
        await release.wait()

    submit = Collector()
    clock = FakeClock(at(2024, 1, 1, 0, 0, 30))
    running = Running(tmp_path, config("rate(1 minute)", overlap="false"), clock, submit, settled)
    await running.start()
    await clock.advance(10 * 60)  # the first run "takes" 10 minutes: ticks 2..10 fall due meanwhile
    assert len(submit.envelopes) == 1 and waited == [["req-1"]]
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    # fire_once: one run stands for the ticks missed while the first was going
    assert len(submit.envelopes) == 2
    await running.stop()


async def test_input_replaces_the_event(tmp_path: Path) -> None:
    cfg = config("rate(1 hour)", input="{job: compact, dry_run: true}")
    got = await run_for(tmp_path, cfg, at(2024, 1, 1), 7200)
    assert [e.record for e in got.envelopes] == [{"job": "compact", "dry_run": True}] * 2


async def test_changed_expression_starts_afresh_without_refiring(tmp_path: Path) -> None:
    clock = FakeClock(at(2024, 1, 1, 0, 30))
    submit = Collector()
    first = Running(tmp_path, config("cron(0 * * * ? *)"), clock, submit)
    await first.start()
    await clock.advance(3600)
    await first.stop()
    await clock.advance(4 * 3600)
    second = Running(tmp_path, config("cron(30 * * * ? *)"), clock, submit)
    await second.start()
    await clock.advance(3600)
    await second.stop()
    assert submit.times == ["2024-01-01T01:00:00Z", "2024-01-01T06:30:00Z"]


def test_validation_names_key_and_value() -> None:
    text = """
sources:
  nightly: {kind: schedule, expression: "cron(61 * * * ? *)"}
  hourly: {kind: schedule, expression: "rate(1 hours)", timezone: Mars/Olympus}
  weekly: {kind: schedule, expression: "rate(7 days)", missed: sometimes}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    problems = e.value.problems
    assert "sources.nightly.expression: invalid cron 'cron(61 * * * ? *)': minute 61 out of range" in problems
    assert any(p.startswith("sources.hourly.expression: invalid rate 'rate(1 hours)'") for p in problems)
    assert any(p.startswith("sources.hourly.timezone: unknown time zone 'Mars/Olympus'") for p in problems)
    assert any(p.startswith("sources.weekly.missed") and "sometimes" in p for p in problems)
