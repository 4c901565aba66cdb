"""Retry with backoff: one helper for every loop that waits longer after each failure.

`Backoff(first_s, max_s, factor=2, healthy_s=None)`: `next()` gives the delay to wait now and doubles
(by `factor`) the following one, up to `max_s`; `reset()` starts again from `first_s`. With `healthy_s`, a
failure that comes at least `healthy_s` after the previous one (by the clock given) starts again from
`first_s`: a source that ran for an hour and then failed is restarted promptly, not after the cap reached
by failures long ago. `await backoff.sleep(clock)` sleeps `next()` on the injected clock.
"""

from __future__ import annotations

from router.core.clock import Clock


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
        self._next = first_s
        self._last_failure: float | None = None

    def next(self, now: float | None = None) -> float:
        """The delay to wait after a failure at `now` (monotonic seconds; needed only with healthy_s)."""
        if self.healthy_s is not None and now is not None:
            if self._last_failure is not None and now - self._last_failure >= self.healthy_s:
                self.reset()
            self._last_failure = now
        delay = self._next
        self._next = min(self._next * self.factor, self.max_s) if self._next > 0 else self.max_s
        return delay

    def reset(self) -> None:
        self._next = self.first_s

    @property
    def upcoming(self) -> float:
        """The delay the next failure would get (without healthy_s taken into account)."""
        return self._next

    async def sleep(self, clock: Clock) -> float:
        delay = self.next(clock.monotonic())
        await clock.sleep(delay)
        return delay
