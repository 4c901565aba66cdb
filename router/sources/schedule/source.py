"""Schedule source (`kind: schedule`): rate() and cron() expressions firing EventBridge scheduled events.

Contract:

* Each tick becomes one EventBridge "Scheduled Event" (`router.shapes.schedule`), its `time` the tick's
  scheduled time, its `id` derived from the source name and the tick (so a re-fired tick carries the same id),
  its resource the rule ARN `arn:aws:events:REGION:ACCOUNT:rule/<source name>`. With `input:` the function
  receives that constant JSON instead, as with EventBridge's Input option.
* A tick fires only once its claim succeeds (`TickClaims` of router/core/backends.py, from
  `ctx.backends.ticks`; by default today's state file `<state_dir>/schedule.json`, state.py). It is submitted
  (queued durably for asynchronous invocation), then recorded as fired by saving the state; a tick recorded
  there never fires again, across restarts. A crash between the two (a window of one fsync) fires that tick
  again after restart, with the same event id. A refused claim (handled elsewhere) counts as handled.
* A tick is on time when it is handled within `missed_after_s` of its scheduled time; older ones are missed
  (the router was down, the previous run was still going, submit was refused). `missed: fire_once` (default)
  runs once for all missed ticks, with the latest missed tick's time, unless a tick is on time anyway, which
  then stands for them; `missed: skip` drops them. The first start fires nothing for the past.
* `overlap: false`: a tick is not submitted while the invocation of the previous tick is still queued or
  running; the source waits for it through `ctx.settled` (the dispatcher's completion hook), and ticks that
  fall due meanwhile count as missed. Without the hook, overlap cannot be prevented and a warning is logged.
* A `DispatchError` from submit leaves the tick unrecorded: the source backs off and tries again (the tick
  may by then have become a missed one).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

import msgspec

from router.config.sources.schedule import Config
from router.core.backends import ScheduleState
from router.core.errors import DispatchError
from router.core.retry import Backoff
from router.shapes import schedule as shape
from router.sources.schedule.expr import (
    CronExpression,
    Expression,
    ExpressionError,
    RateExpression,
    parse_expression,
    parse_timezone,
)
from router.sources.schedule.state import open_schedule_file

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.core.backends import TickClaims
    from router.core.envelope import Envelope
    from router.core.ports import SourceContext

log = logging.getLogger("router.sources.schedule")

MAX_SLEEP_S = 300.0  # re-read the wall clock at least this often, so clock changes are noticed
MAX_BACKOFF_S = 60.0
INPUT_MAX_BYTES = 8192  # EventBridge's limit on a target's Input


__all__ = ["ScheduleSource", "ScheduleState", "check", "create"]


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    try:
        parse_expression(settings.expression)
    except ExpressionError as e:
        problems.append(f"{where}.expression: {e}")
    try:
        parse_timezone(settings.timezone)
    except ExpressionError as e:
        problems.append(f"{where}.timezone: {e}")
    if settings.input is not None:
        size = len(msgspec.json.encode(settings.input))
        if size > INPUT_MAX_BYTES:
            problems.append(f"{where}.input: {size} bytes of JSON, over EventBridge's {INPUT_MAX_BYTES}")


def create(ctx: SourceContext) -> ScheduleSource:
    return ScheduleSource(ctx)


class ScheduleSource:
    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._config: Config = ctx.config
        self._expr: Expression = parse_expression(self._config.expression)
        self._tz = parse_timezone(self._config.timezone)
        open_claims = ctx.backends.ticks if ctx.backends is not None else open_schedule_file
        self._claims: TickClaims = open_claims(source=ctx.name, folder=ctx.state_dir)
        self._rule_arn = shape.rule_arn(ctx.name, region=ctx.region, account=ctx.account_id)
        self._warned_overlap = False
        self._memo: tuple[float, float | None] | None = None

    # -- the loop ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        clock = self._ctx.clock
        state = await self._load_state(clock.time())
        self._ctx.ready()
        backoff = Backoff(1.0, MAX_BACKOFF_S)
        while True:
            await self._wait_for_previous(state)
            try:
                state = await self._handle_due(state, clock.time())
                backoff.reset()
            except DispatchError as e:
                delay = backoff.next()
                log.warning(
                    "schedule %s: tick not accepted (%s: %s), retrying in %.0fs",
                    self._ctx.name,
                    e.code,
                    e.message,
                    delay,
                    extra={"fields": {"source": self._ctx.name, "error": e.code}},
                )
                await clock.sleep(delay)
                continue
            # last_tick is now the latest tick <= now (or later than now if the clock went back), so the
            # next one after it is the next one to wait for.
            upcoming = self.next_after(state.last_tick, state)
            if upcoming is None:
                log.info("schedule %s: %r has no more ticks", self._ctx.name, self._config.expression)
                await asyncio.Event().wait()
                return
            await clock.sleep(min(upcoming - clock.time(), MAX_SLEEP_S))

    async def _handle_due(self, state: ScheduleState, now: float) -> ScheduleState:
        fire, handled = self.plan(state, now)
        for tick in fire:
            if not await self._claims.claim(tick):
                state.last_tick = tick  # handled already (by another router): not ours to fire
                continue
            outcome = await self._ctx.submit([self.envelope(tick)])
            state.last_tick = tick
            state.pending = list(outcome.request_ids)
            await self._claims.save(state)
        if handled is not None and handled > state.last_tick:
            state.last_tick = handled  # missed ticks dropped by the policy
            await self._claims.save(state)
        return state

    async def _wait_for_previous(self, state: ScheduleState) -> None:
        if self._config.overlap or not state.pending:
            return
        settled = self._ctx.settled
        if settled is None:
            if not self._warned_overlap:
                log.warning("schedule %s: overlap: false needs the dispatcher's result hook", self._ctx.name)
                self._warned_overlap = True
            return
        await settled(state.pending)
        state.pending = []
        await self._claims.save(state)

    # -- tick arithmetic (pure, for tests) ----------------------------------------------------------------

    def next_after(self, t: float, state: ScheduleState) -> float | None:
        if isinstance(self._expr, RateExpression):
            return self._expr.next_after(t, state.anchor)
        assert isinstance(self._expr, CronExpression)
        if self._memo is not None and self._memo[0] == t:
            return self._memo[1]  # the loop asks for the tick after last_tick on every wake-up
        nxt = self._expr.next_after(t, self._tz)
        self._memo = (t, nxt)
        return nxt

    def plan(self, state: ScheduleState, now: float) -> tuple[list[float], float | None]:
        """(ticks to fire, latest tick handled) for the ticks in (last_tick, now], by the missed policy."""
        first = self.next_after(state.last_tick, state)
        if first is None or first > now:
            return [], None
        cutoff = now - self._config.missed_after_s
        on_time = self._ticks_between(max(state.last_tick, cutoff), now, state)
        latest_missed = self._latest_at_or_before(cutoff, state) if first <= cutoff else None
        handled = max([*on_time, latest_missed or 0.0]) or None
        if on_time or latest_missed is None or self._config.missed == "skip":
            return on_time, handled
        return [latest_missed], handled

    def _ticks_between(self, after: float, until: float, state: ScheduleState) -> list[float]:
        ticks: list[float] = []
        t = self.next_after(after, state)
        while t is not None and t <= until:
            ticks.append(t)
            t = self.next_after(t, state)
        return ticks

    def _latest_at_or_before(self, t: float, state: ScheduleState) -> float | None:
        """The latest tick in (last_tick, t], searching back in growing windows (missed time can be long)."""
        window = 3600.0
        while True:
            start = max(state.last_tick, t - window)
            ticks = self._ticks_between_last(start, t, state)
            if ticks is not None or start <= state.last_tick:
                return ticks
            window *= 4

    def _ticks_between_last(self, after: float, until: float, state: ScheduleState) -> float | None:
        latest = None
        n = self.next_after(after, state)
        while n is not None and n <= until:
            latest = n
            n = self.next_after(n, state)
        return latest

    # -- the event --------------------------------------------------------------------------------------

    def envelope(self, tick: float) -> Envelope:
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"router:schedule:{self._ctx.name}:{tick:.3f}"))
        ev = shape.event(rule_arn=self._rule_arn, time=tick, id=event_id)
        env = shape.envelope(ev, source_name=self._ctx.name, meta={"scheduled_time": tick})
        if self._config.input is not None:
            env = msgspec.structs.replace(env, record=self._config.input)
        return env

    # -- state ------------------------------------------------------------------------------------------

    async def _load_state(self, now: float) -> ScheduleState:
        fresh = ScheduleState(
            expression=self._config.expression,
            timezone=self._config.timezone,
            anchor=float(int(now)),
            last_tick=now,
        )
        state = await self._claims.load()
        if state is None:  # never started, or unreadable (logged)
            await self._claims.save(fresh)
            # Shared claims (a cluster) keep the state the first node saved: its anchor is everyone's.
            return await self._claims.load() or fresh
        if (state.expression, state.timezone) != (self._config.expression, self._config.timezone):
            # A new schedule: nothing of the old one is owed, but never fire before what the old one fired.
            log.info("schedule %s: now %r, starting it afresh", self._ctx.name, fresh.expression)
            fresh.last_tick = max(now, state.last_tick)
            fresh.pending = state.pending
            await self._claims.save(fresh)
            return fresh
        return state

    async def aclose(self) -> None:
        return None
