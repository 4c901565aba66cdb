"""Time formats, each spelled once. Times are epoch seconds (float), rendered in UTC.

* `iso_ms(t)`: `2019-09-03T19:37:27.192Z`, RFC 3339 with milliseconds as AWS prints event times (S3, SES,
  Kinesis, Kafka, the HTTP API's `time`, destination records) and the router its records and log lines.
* `iso_s(t)`: `2019-03-01T01:23:45Z` (EventBridge, DynamoDB Streams).
* `lambda_timestamp(t)`: `2019-03-01T01:23:45.192+0000`, the Lambda API's `LastModified`.
* `clf(t)`: `10/Mar/2020:05:16:23 +0000`, API Gateway's `requestTime` (Common Log Format). Month names are
  English whatever the locale.
* `email_date(t)`: `Tue, 10 Mar 2020 05:16:23 +0000`, an RFC 5322 `Date` header.
* `day_path(t)`: `2020/03/10`, the day that begins Lambda's log stream names.
* `duration_s(text)`: the seconds of a span written `90s`, `30m`, `24h`, `7d`, `500ms` (config durations).

Milliseconds are truncated after `t` is rounded to microseconds (as `datetime` does), so a millisecond-precise
time such as 1700000000.123, which no float holds exactly, renders `.123`, never `.122`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _split(t: float) -> tuple[int, int]:
    """(whole second, microsecond) of `t` as `datetime.fromtimestamp` splits it: the fraction rounded
    half-even to microseconds, which may carry into the next second. The formats below cache the text of a
    second (events in a row share it) and add the fraction themselves."""
    fraction, whole = math.modf(t)
    us = round(fraction * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    return int(whole), us


def _seconds_ms(t: float) -> tuple[str, int]:
    second, us = _split(t)
    return _second_text(second), us // 1000


@functools.lru_cache(maxsize=8)
def _second_text(second: int) -> str:
    return utc(second).strftime("%Y-%m-%dT%H:%M:%S")


def iso_ms(t: float) -> str:
    second, ms = _seconds_ms(t)
    return f"{second}.{ms:03d}Z"


def iso_s(t: float) -> str:
    return utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def lambda_timestamp(t: float) -> str:
    second, ms = _seconds_ms(t)
    return f"{second}.{ms:03d}+0000"


def clf(t: float) -> str:
    """`10/Mar/2020:05:16:23 +0000`; one per gateway request, so the text of a second is made once."""
    return _clf_second(_split(t)[0])


@functools.lru_cache(maxsize=1)
def _clf_second(second: int) -> str:
    d = utc(second)
    return f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year}:{d.strftime('%H:%M:%S')} +0000"


def email_date(t: float) -> str:
    import email.utils  # only the email source needs it

    return email.utils.format_datetime(utc(t))


def day_path(t: float) -> str:
    return utc(t).strftime("%Y/%m/%d")


_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Digits, an optional fraction, a unit: what the config's Duration pattern takes. Not float()'s own syntax,
# which also reads "nan", "inf", "1e400" (infinite) and "-5" (a span into the future).
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")


def duration_s(text: str) -> float:
    """Seconds in a span written `90s`, `30m`, `24h`, `7d` or `500ms` (the config's Duration); ValueError
    on anything else."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"not a duration (like 90s, 30m, 24h, 7d): {text!r}")
    return float(found[1]) * _UNITS_S[found[2]]
