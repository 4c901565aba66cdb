"""Retry with backoff: one helper for every loop that waits longer after each failure.

* `delay_after(failures, first_s, max_s, factor=2)`: the wait after the `failures`-th failure in a row
  (counted from 1): `first_s`, then multiplied by `factor` per failure, never more than `max_s`. A `first_s`
  of 0 retries at once, then waits `max_s` (doubling zero would never grow). For retries whose count is
  stored elsewhere (a queued event's system errors, a stream batch's retries).
* `Backoff(first_s, max_s, factor=2, healthy_s=None)`: the same sequence, counted for you. `next(now)`
  gives the delay to wait now and counts a failure; `reset()` starts again from `first_s` (call it after a
  success); `upcoming` is the delay the next failure would get. With `healthy_s`, a failure that comes at
  least `healthy_s` after the retried work restarted (`now` + the delay handed out last) starts again from
  `first_s`: a source that ran for an hour and then failed is restarted promptly, not after the cap reached
  by failures long ago. `await backoff.sleep(clock)` sleeps `next()` on the injected clock.

No jitter: every loop here retries one local thing (a source, a partition, a queue), not a crowd of clients
against one server.
"""

from __future__ import annotations

from router.core.clock import Clock


def delay_after(failures: int, first_s: float, max_s: float, factor: float = 2.0) -> float:
    if failures < 1:
        raise ValueError(f"a delay is for a failure: got failure number {failures}")
    if failures == 1:
        return min(first_s, max_s)
    if first_s == 0:
        return max_s
    try:
        return min(first_s * factor ** (failures - 1), max_s)
    except OverflowError:  # a retry-forever loop that failed a thousand times is long past the cap
        return max_s


class Backoff:
    def __init__(
        self, first_s: float, max_s: float, *, factor: float = 2.0, healthy_s: float | None = None
    ) -> None:
        if first_s < 0 or max_s < first_s or factor < 1:
            raise ValueError(f"bad backoff: first {first_s}, max {max_s}, factor {factor}")
        self.first_s = first_s
        self.max_s = max_s
        self.factor = factor
        self.healthy_s = healthy_s
        self._failures = 0
        self._restarted: float | None = None  # when the retried work started again after the last delay

    def next(self, now: float | None = None) -> float:
        """The delay to wait after a failure at `now` (monotonic seconds; needed only with healthy_s)."""
        if self.healthy_s is not None and now is not None:
            if self._restarted is not None and now - self._restarted >= self.healthy_s:
                self.reset()
        self._failures += 1
        delay = delay_after(self._failures, self.first_s, self.max_s, self.factor)
        if now is not None:
            self._restarted = now + delay
        return delay

    def reset(self) -> None:
        self._failures = 0

    @property
    def upcoming(self) -> float:
        """The delay the next failure would get (without healthy_s taken into account)."""
        return delay_after(self._failures + 1, self.first_s, self.max_s, self.factor)

    async def sleep(self, clock: Clock) -> float:
        delay = self.next(clock.monotonic())
        await clock.sleep(delay)
        return delay
