"""Backoff (router/core/retry.py): doubling, the cap, reset, and the reset after a healthy period."""

from __future__ import annotations

import asyncio

import pytest

from router.core.clock import FakeClock
from router.core.retry import Backoff, delay_after


def test_doubles_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.next() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_factor_and_upcoming() -> None:
    backoff = Backoff(1.0, 100.0, factor=3)
    assert backoff.upcoming == 1.0
    assert [backoff.next() for _ in range(3)] == [1, 3, 9]
    assert backoff.upcoming == 27


def test_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(0.1, 5.0)
    for _ in range(10):
        backoff.next()
    assert backoff.upcoming == 5.0
    backoff.reset()
    assert [backoff.next() for _ in range(2)] == [0.1, 0.2]


def test_zero_first_delay_retries_at_once_then_waits_the_cap() -> None:
    backoff = Backoff(0.0, 2.0)
    assert [backoff.next() for _ in range(3)] == [0, 2, 2]


def test_delay_after_matches_the_counted_sequence() -> None:
    backoff = Backoff(1.0, 300.0)
    assert [delay_after(n, 1.0, 300.0) for n in range(1, 12)] == [backoff.next() for _ in range(11)]
    assert delay_after(5000, 0.1, 5.0) == 5.0  # a retry-forever loop does not overflow
    assert delay_after(1, 10.0, 5.0) == 5.0  # never above the cap, even the first
    with pytest.raises(ValueError):
        delay_after(0, 1.0, 2.0)


@pytest.mark.parametrize(("first", "cap", "factor"), [(-1, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_bad_parameters_are_refused(first: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError, match="bad backoff"):
        Backoff(first, cap, factor=factor)


async def test_a_healthy_period_resets_the_backoff() -> None:
    clock = FakeClock()
    backoff = Backoff(0.5, 30.0, healthy_s=60.0)
    # Failing at once after every restart: the delays grow to the cap.
    delays = []
    for _ in range(8):
        delays.append(await _sleep(backoff, clock))
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30]
    # Ran 59 s after the last restart: not healthy long enough, still at the cap.
    await clock.advance(59)
    assert await _sleep(backoff, clock) == 30
    # Ran a full minute after the restart: the next failure is retried promptly again.
    await clock.advance(60)
    assert await _sleep(backoff, clock) == 0.5
    assert await _sleep(backoff, clock) == 1


async def test_the_healthy_period_counts_from_the_restart_not_the_failure() -> None:
    backoff = Backoff(1.0, 100.0, healthy_s=60.0)
    for now in (0.0, 1.0, 3.0, 7.0):  # each failure comes right as the previous delay ends
        backoff.next(now)
    assert backoff.upcoming == 16
    # 64 s after the last failure but only 56 s after the restart it allowed (7 + 8): not healthy yet.
    assert backoff.next(7.0 + 64) == 16


async def _sleep(backoff: Backoff, clock: FakeClock) -> float:
    """backoff.sleep on the fake clock, stepping the clock exactly through the delay (every delay here is a
    multiple of first_s); returns the delay."""
    start = clock.monotonic()
    task = asyncio.ensure_future(backoff.sleep(clock))
    for _ in range(100):  # the task starts and sleeps on the clock
        if clock.sleepers or task.done():
            break
        await asyncio.sleep(0)
    while not task.done():
        await clock.advance(backoff.first_s)
    assert clock.monotonic() - start == task.result()
    return task.result()
