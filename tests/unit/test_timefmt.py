"""Time formats (router/core/timefmt.py): each form AWS prints, from one epoch time."""

from __future__ import annotations

import pytest

from router.core import timefmt

T = 1583817383.192  # 2020-03-10 05:16:23.192 UTC, a Tuesday


@pytest.mark.parametrize(
    ("render", "expected"),
    [
        (timefmt.iso_ms, "2020-03-10T05:16:23.192Z"),
        (timefmt.iso_s, "2020-03-10T05:16:23Z"),
        (timefmt.lambda_timestamp, "2020-03-10T05:16:23.192+0000"),
        (timefmt.clf, "10/Mar/2020:05:16:23 +0000"),
        (timefmt.email_date, "Tue, 10 Mar 2020 05:16:23 +0000"),
        (timefmt.day_path, "2020/03/10"),
    ],
)
def test_each_form(render: object, expected: str) -> None:
    assert callable(render) and render(T) == expected


def test_milliseconds_are_truncated_not_rounded_up() -> None:
    assert timefmt.iso_ms(T + 0.0008) == "2020-03-10T05:16:23.192Z"
    assert timefmt.iso_ms(1583817383.9999) == "2020-03-10T05:16:23.999Z"


@pytest.mark.parametrize("ms", [1, 123, 290, 580, 999])
def test_a_millisecond_precise_time_keeps_its_milliseconds(ms: int) -> None:
    # Kafka and API Gateway give epoch milliseconds; ms / 1000 is not exact in a float (0.123 is 0.12299...).
    t = (1_700_000_000_000 + ms) / 1000
    assert timefmt.iso_ms(t).endswith(f".{ms:03d}Z")
    assert timefmt.lambda_timestamp(t).endswith(f".{ms:03d}+0000")


def test_clf_is_the_same_whatever_came_before_in_its_second() -> None:
    """clf keeps the text of the last second: a time just under the next second (rounded up to it, as
    datetime rounds to microseconds) must not give its text to the rest of the second, nor take it."""
    second = 1583817383
    assert timefmt.clf(second + 0.9999997) == "10/Mar/2020:05:16:24 +0000"
    assert timefmt.clf(second + 0.5) == "10/Mar/2020:05:16:23 +0000"
    assert timefmt.clf(second + 0.9999997) == "10/Mar/2020:05:16:24 +0000"
    assert timefmt.clf(second + 1.0) == "10/Mar/2020:05:16:24 +0000"


def _by_datetime(t: float) -> str:
    import datetime as dt

    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return f"{d.strftime('%Y-%m-%dT%H:%M:%S')}.{d.microsecond // 1000:03d}Z"


@pytest.mark.parametrize(
    "t",
    [
        0.0,
        1583817383.9999995,  # rounds up into the next second, as datetime does (half-even to microseconds)
        1583817383.9999994,
        1583817383.0000005,
        -0.0000004,
        -1.5,
        -0.9999996,
        1e9 + 2.5e-6,
    ],
)
def test_iso_ms_splits_a_time_as_datetime_does(t: float) -> None:
    """iso_ms keeps the text of a second and splits the fraction itself: the same text as datetime gives
    for times at the edges of a second, and for the same second after a time in another."""
    assert timefmt.iso_ms(t) == _by_datetime(t)
    assert timefmt.iso_ms(t + 7) == _by_datetime(t + 7)
    assert timefmt.iso_ms(t) == _by_datetime(t)


def test_iso_ms_matches_datetime_on_random_times() -> None:
    import random

    r = random.Random(7)
    for _ in range(20_000):
        t = r.choice([r.uniform(-2e9, 2.5e11), r.randint(0, 2**33) / 1000, r.randint(0, 2**33) + 0.9999995])
        assert timefmt.iso_ms(t) == _by_datetime(t), t


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0), (" 7d ", 604800.0)]
)
def test_a_duration(text: str, seconds: float) -> None:
    assert timefmt.duration_s(text) == seconds


@pytest.mark.parametrize("text", ["nans", "infm", "1e400s", "-5m", "5", "m", "5 m", "1.s", "²s"])
def test_not_a_duration(text: str) -> None:
    """Only digits and a unit: float() alone would read "nans" as NaN and "1e400s" as infinite, and a replay
    plan's `since` would then match nothing instead of being refused."""
    with pytest.raises(ValueError, match="not a duration"):
        timefmt.duration_s(text)
