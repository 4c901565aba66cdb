"""The dispatcher's recent past, in memory: one point per function every `step_s` (10 s) for `span_s` (1 h).

What the console's graphs draw, with no Prometheus server: the router keeps its own small time series.

Contract:

* `History(stats, clock=..., step_s=10, span_s=3600)`: `stats` returns the dispatcher's `DispatcherStats`
  (`Dispatcher.stats`). `record(function, call, result)` is a `Dispatcher.on_result` hook: it keeps the
  call's duration (up to `SAMPLES` per bucket, a uniform reservoir beyond), its peak memory and, for an
  asynchronous attempt after the first, a retry. It never waits and allocates little.
* `sample()` closes the bucket that ends now. Its point holds, per function: the increase of the
  dispatcher's counters since the previous sample (invocations, errors, throttles, cold starts), the
  gauges at that moment (calls in use, idle and busy instances, queued async events), and from the
  recorded results the duration p50/p99 (nearest rank), the peak memory and the retries. A function gone
  from the stats (deleted) loses its series.
* `await run()` samples at every multiple of `step_s` of the clock until cancelled (the daemon's TaskGroup
  runs it). Time is the injected clock's, so tests step it.
* `series(function=None)` -> `{"step_s", "span_s", "now", "fields", "functions": {name: [point, ...]}}`, a
  point being a list in the order of `fields` (FIELDS), oldest first: the closed points that saw any
  activity (a bucket with no call and no instance is left out: the reader fills the gaps with zeros), then
  the open bucket so far (always present, `t` its start), so a graph moves as soon as a call finishes.
  `current(stats=None)` is that open point alone, per function (the console's live feed sends it).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.core.clock import Clock, SystemClock
from router.core.results import InvocationResult
from router.dispatch.stats import EVENT, Call, DispatcherStats, FunctionStats

STEP_S = 10.0
SPAN_S = 3600.0
SAMPLES = 1024  # durations kept per function and bucket for the percentiles
FIELDS = (
    "t", "invocations", "errors", "throttles", "cold_starts", "retries", "p50_ms", "p99_ms",
    "max_memory_mb", "in_use", "idle", "busy", "queue_depth",
)  # fmt: skip
_COUNTED = ("invocations", "errors", "throttles", "cold_starts")
_GAUGES = ("in_use", "idle", "busy", "queue_depth")


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class _Bucket:
    """What the results of one function told during the open bucket."""

    durations: list[float] = field(default_factory=list)
    seen: int = 0  # results recorded (the reservoir's denominator)
    max_memory_mb: int = 0
    retries: int = 0


class History:
    def __init__(
        self,
        stats: Callable[[], DispatcherStats],
        *,
        clock: Clock | None = None,
        step_s: float = STEP_S,
        span_s: float = SPAN_S,
    ) -> None:
        self._stats = stats
        self.clock: Clock = clock or SystemClock()
        self.step_s = step_s
        self.span_s = span_s
        self._points: dict[str, deque[list[float]]] = {}
        self._open: dict[str, _Bucket] = {}
        self._random = random.Random(0)
        now = self.clock.time()
        self._opened = self._start_of(now)  # the open bucket's start
        self._base = self._counters(stats())  # counters at the last sample

    def _start_of(self, t: float) -> float:
        return math.floor(t / self.step_s) * self.step_s

    @staticmethod
    def _counters(stats: DispatcherStats) -> dict[str, dict[str, int]]:
        return {name: {k: getattr(s, k) for k in _COUNTED} for name, s in stats.functions.items()}

    # -- the hook (the dispatcher's hot path) -------------------------------------------------------------

    def record(self, function: str, call: Call, result: InvocationResult) -> None:
        bucket = self._open.get(function)
        if bucket is None:
            bucket = self._open[function] = _Bucket()
        bucket.seen += 1
        if len(bucket.durations) < SAMPLES:
            bucket.durations.append(result.duration_ms)
        else:
            slot = int(self._random.random() * bucket.seen)  # randrange costs 10x more; the bias is < 2^-40
            if slot < SAMPLES:
                bucket.durations[slot] = result.duration_ms
        if result.max_memory_mb > bucket.max_memory_mb:
            bucket.max_memory_mb = result.max_memory_mb
        if call.invocation_type == EVENT and call.attempt > 1:
            bucket.retries += 1

    # -- sampling -----------------------------------------------------------------------------------------

    def _point(self, t: float, s: FunctionStats, base: dict[str, int], bucket: _Bucket | None) -> list[float]:
        ordered = sorted(bucket.durations) if bucket else []
        return [
            t,
            *(max(0, getattr(s, k) - base.get(k, 0)) for k in _COUNTED),
            bucket.retries if bucket else 0,
            round(percentile(ordered, 0.5), 3),
            round(percentile(ordered, 0.99), 3),
            bucket.max_memory_mb if bucket else 0,
            *(getattr(s, k) for k in _GAUGES),
        ]

    def sample(self, at: float | None = None) -> None:
        """Close the open bucket: one point per function (kept when it saw anything); a new bucket opens,
        starting `at` (default: the start of the step the clock is in)."""
        stats = self._stats()
        keep = int(self.span_s / self.step_s)
        for name, s in stats.functions.items():
            point = self._point(self._opened, s, self._base.get(name, {}), self._open.get(name))
            if any(point[1:]):
                self._points.setdefault(name, deque(maxlen=keep)).append(point)
        for gone in set(self._points) - set(stats.functions):
            del self._points[gone]
        horizon = self.clock.time() - self.span_s
        for points in self._points.values():
            while points and points[0][0] < horizon:
                points.popleft()
        self._open = {}
        self._base = self._counters(stats)
        self._opened = self._start_of(self.clock.time()) if at is None else at

    async def run(self) -> None:
        while True:
            now = self.clock.time()
            boundary = self._start_of(now) + self.step_s
            await self.clock.sleep(boundary - now)
            if self._opened < boundary:  # not closed already by a reader that came first (_catch_up)
                self.sample(max(boundary, self._start_of(self.clock.time())))

    def _catch_up(self) -> None:
        """A read after the open bucket's end, before run() woke to close it (a busy loop): close it now,
        so that what is read is never a bucket that has ended."""
        if self.clock.time() >= self._opened + self.step_s:
            self.sample()

    # -- reading ------------------------------------------------------------------------------------------

    @property
    def opened(self) -> float:
        """The start of the open bucket."""
        return self._opened

    def current(self, stats: DispatcherStats | None = None) -> dict[str, list[float]]:
        """The open bucket's point of every function, so far (from `stats`, or a fresh snapshot)."""
        self._catch_up()
        stats = stats or self._stats()
        return {
            name: self._point(self._opened, s, self._base.get(name, {}), self._open.get(name))
            for name, s in stats.functions.items()
        }

    def series(self, function: str | None = None) -> dict[str, Any]:
        functions = {
            name: [*self._points.get(name, ()), point]
            for name, point in self.current().items()
            if function is None or name == function
        }
        return {
            "step_s": self.step_s,
            "span_s": self.span_s,
            "now": self.clock.time(),
            "fields": list(FIELDS),
            "functions": functions,
        }
