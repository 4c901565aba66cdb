"""Schedule expressions: parsing, error messages, and ticks on the time line (DST, month ends, L W #)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from router.sources.schedule.expr import ExpressionError, parse_expression, parse_timezone

UTC = dt.UTC


def ticks(expression: str, start: dt.datetime, n: int, tz: str = "UTC") -> list[str]:
    """The next n ticks after start, as local ISO strings with offsets."""
    zone = ZoneInfo(tz)
    expr = parse_expression(expression)
    t = start.timestamp()
    out = []
    for _ in range(n):
        nxt = expr.next_after(t, zone) if hasattr(expr, "line") else expr.next_after(t, start.timestamp())
        assert nxt is not None
        out.append(dt.datetime.fromtimestamp(nxt, zone).isoformat())
        t = nxt
    return out


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(61 * * * ? *)", "invalid cron 'cron(61 * * * ? *)': minute 61 out of range"),
        ("cron(0 24 * * ? *)", "hour 24 out of range"),
        ("cron(0 3 32 * ? *)", "day-of-month 32 out of range"),
        ("cron(0 3 ? 13 MON *)", "month 13 out of range"),
        ("cron(0 3 ? * 8 *)", "day-of-week 8 out of range"),
        ("cron(0 3 ? * FOO *)", "day-of-week value 'FOO' is not a number or name"),
        ("cron(0 3 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 3 * * ?)", "expected 6 fields"),
        ("cron(0 3 ? * 2#6 *)", "the number after '#' must be 1-5"),
        ("cron(0 3 ? * 2#1,3#2 *)", "only one '#' item"),
        ("cron(0 3 1,15W * ? *)", "'W' must stand alone"),
        ("cron(0 3 ? * 2W *)", "'W' is not allowed in day-of-week"),
        ("cron(0 3 * * 2#1 *)", "exactly one of day-of-month and day-of-week"),
        ("cron(L 3 * * ? *)", "'L' is not allowed in minute"),
        ("cron(0/0 3 * * ? *)", "minute step '0' is not a positive number"),
        ("cron(0 3 * * ? 1969)", "year 1969 out of range"),
        ("cron(0 3 * * ? 2150)", "year 2150 is beyond 2099"),
        ("cron(0 5-2 * * ? *)", "hour range '5-2' runs backwards"),
        ("cron(0 3 * * ? *", "missing the closing ')'"),
        ("rate(5 minute)", "use the plural unit for 5 (rate(5 minutes))"),
        ("rate(1 hours)", "use the singular unit for 1 (rate(1 hour))"),
        ("rate(0 minutes)", "value '0' is not a positive whole number"),
        ("rate(5 weeks)", "unit 'weeks' is not one of minute(s), hour(s), day(s)"),
        ("rate(5)", "expected rate(value unit)"),
        ("61 * * * *", "invalid cron '61 * * * *': minute 61 out of range"),
        ("* * * *", "expected 5 fields"),
        ("at(2024-01-01T00:00:00)", "one-time at() schedules are not supported"),
    ],
)
def test_bad_expressions_name_the_value_and_the_problem(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError) as e:
        parse_expression(expression)
    assert message in str(e.value)
    assert repr(expression) in str(e.value) or expression.startswith("at(")


def test_unknown_time_zone() -> None:
    with pytest.raises(ExpressionError, match="unknown time zone 'Mars/Olympus'"):
        parse_timezone("Mars/Olympus")


@pytest.mark.parametrize(
    "expression",
    [
        "cron(15 10 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 3 LW * ? *)",
        "cron(0 3 L * ? 2025-2030)",
        "cron(0 3 ? * 6L *)",
        "cron(0 3 ? JAN,JUL * *)",
        "rate(1 minute)",
        "rate(2 hours)",
        "rate(1 day)",
        "*/5 * * * *",
        "0 3 * * 0,7",
        "@hourly",
    ],
)
def test_good_expressions_parse(expression: str) -> None:
    parse_expression(expression)


def test_rate_ticks_from_the_anchor() -> None:
    expr = parse_expression("rate(5 minutes)")
    assert expr.next_after(1000.0, 1000.0) == 1300.0
    assert expr.next_after(1299.0, 1000.0) == 1300.0
    assert expr.next_after(1300.0, 1000.0) == 1600.0
    assert expr.next_after(500.0, 1000.0) == 1300.0


def test_aws_day_of_week_counts_from_sunday() -> None:
    # 2024-01-01 is a Monday; AWS 2 = MON, 1 = SUN, 7 = SAT.
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert ticks("cron(0 3 ? * 2 *)", start, 2) == ["2024-01-01T03:00:00+00:00", "2024-01-08T03:00:00+00:00"]
    assert ticks("cron(0 3 ? * 1 *)", start, 1) == ["2024-01-07T03:00:00+00:00"]
    assert ticks("cron(0 3 ? * 7 *)", start, 1) == ["2024-01-06T03:00:00+00:00"]
    assert ticks("cron(0 3 ? * 1/2 *)", start, 4) == [  # SUN, TUE, THU, SAT
        "2024-01-02T03:00:00+00:00",
        "2024-01-04T03:00:00+00:00",
        "2024-01-06T03:00:00+00:00",
        "2024-01-07T03:00:00+00:00",
    ]
    # plain cron: 0 and 7 are Sunday
    assert ticks("0 3 * * 7", start, 1) == ["2024-01-07T03:00:00+00:00"]


def test_nth_weekday_last_weekday_and_last_day_of_week() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert ticks("cron(0 9 ? * 2#1 *)", start, 3) == [  # first Monday
        "2024-01-01T09:00:00+00:00",
        "2024-02-05T09:00:00+00:00",
        "2024-03-04T09:00:00+00:00",
    ]
    assert ticks("cron(0 9 ? * 5#5 *)", start, 2) == [  # fifth Thursday, only in some months
        "2024-02-29T09:00:00+00:00",
        "2024-05-30T09:00:00+00:00",
    ]
    assert ticks("cron(0 9 ? * 6L *)", start, 3) == [  # last Friday
        "2024-01-26T09:00:00+00:00",
        "2024-02-23T09:00:00+00:00",
        "2024-03-29T09:00:00+00:00",
    ]


def test_nearest_weekday_stays_in_the_month() -> None:
    start = dt.datetime(2024, 6, 1, tzinfo=UTC)
    # 2024-06-15 is a Saturday -> Friday 14th; 2024-09-15 a Sunday -> Monday 16th.
    got = ticks("cron(0 9 15W * ? *)", start, 4)
    assert got[0] == "2024-06-14T09:00:00+00:00"
    assert got[3] == "2024-09-16T09:00:00+00:00"
    # 2024-06-01 is a Saturday: 1W is Monday the 3rd, never the previous month's 31st.
    assert ticks("cron(0 9 1W * ? *)", dt.datetime(2024, 5, 2, tzinfo=UTC), 1) == [
        "2024-06-03T09:00:00+00:00"
    ]


def test_last_day_and_last_weekday_across_month_ends_and_leap_years() -> None:
    start = dt.datetime(2023, 12, 31, 12, tzinfo=UTC)
    assert [t[:10] for t in ticks("cron(0 0 L * ? *)", start, 4)] == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
    ]
    # LW: 2024-03-31 is a Sunday -> Friday 29th; 2024-08-31 a Saturday -> Friday 30th.
    got = [t[:10] for t in ticks("cron(0 0 LW * ? *)", start, 8)]
    assert got[1:3] == ["2024-02-29", "2024-03-29"] and got[7] == "2024-08-30"
    assert [t[:10] for t in ticks("cron(0 12 29 2 ? *)", start, 3)] == [
        "2024-02-29",
        "2028-02-29",
        "2032-02-29",
    ]
    assert [t[:10] for t in ticks("cron(0 0 L 2 ? *)", dt.datetime(2025, 1, 1, tzinfo=UTC), 4)] == [
        "2025-02-28",
        "2026-02-28",
        "2027-02-28",
        "2028-02-29",
    ]


def test_year_field_ends_the_schedule() -> None:
    expr = parse_expression("cron(0 0 1 1 ? 2025-2026)")
    zone = ZoneInfo("UTC")
    t = dt.datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    first = expr.next_after(t, zone)
    second = expr.next_after(first, zone)
    assert [dt.datetime.fromtimestamp(x, UTC).year for x in (first, second)] == [2025, 2026]
    assert expr.next_after(second, zone) is None


def test_spring_forward_skips_the_wall_time_that_does_not_exist() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2024, 3, 29, tzinfo=berlin)
    assert ticks("cron(30 2 * * ? *)", start, 3, "Europe/Berlin") == [
        "2024-03-29T02:30:00+01:00",
        "2024-03-30T02:30:00+01:00",
        "2024-04-01T02:30:00+02:00",
    ]
    # times after the gap keep their wall-clock hour, with the new offset
    assert ticks("cron(0 9 * * ? *)", start, 4, "Europe/Berlin")[2:] == [
        "2024-03-31T09:00:00+02:00",
        "2024-04-01T09:00:00+02:00",
    ]


def test_fall_back_fires_a_repeated_wall_time_once() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2024, 10, 27, 1, 0, tzinfo=berlin)
    assert ticks("cron(0/30 * * * ? *)", start, 5, "Europe/Berlin") == [
        "2024-10-27T01:30:00+02:00",
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T03:00:00+01:00",
        "2024-10-27T03:30:00+01:00",
    ]
    # from inside the second occurrence of 02:xx, the next tick is 03:00, not a tick in the past
    second = dt.datetime(2024, 10, 27, 2, 10, tzinfo=berlin, fold=1)
    assert ticks("cron(0/30 * * * ? *)", second, 1, "Europe/Berlin") == ["2024-10-27T03:00:00+01:00"]


def test_new_york_weekday_mornings_keep_local_time_across_dst() -> None:
    ny = ZoneInfo("America/New_York")
    start = dt.datetime(2024, 3, 8, 12, tzinfo=ny)  # Friday before the change (Sunday 10 March)
    got = ticks("cron(0 9 ? * MON-FRI *)", start, 2, "America/New_York")
    assert got == ["2024-03-11T09:00:00-04:00", "2024-03-12T09:00:00-04:00"]
    expr = parse_expression("cron(0 9 ? * MON-FRI *)")
    before = expr.next_after(dt.datetime(2024, 3, 7, 12, tzinfo=ny).timestamp(), ny)
    assert dt.datetime.fromtimestamp(before, UTC).hour == 14  # 09:00 EST
    assert dt.datetime.fromtimestamp(expr.next_after(start.timestamp(), ny), UTC).hour == 13  # 09:00 EDT
