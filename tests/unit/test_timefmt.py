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
