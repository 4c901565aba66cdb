"""Schedule expressions: `rate(...)`, AWS `cron(...)`, plain 5-field cron, parsed once into a tick generator.

`parse_expression(text)` returns an `Expression` or raises `ExpressionError` whose message names the value
and the part that is wrong (`invalid cron 'cron(61 * * * ? *)': minute 61 out of range`).

* `rate(N unit)`: a fixed duration (unit minute|minutes|hour|hours|day|days, singular only for 1, as
  EventBridge requires). A day is 24 hours whatever the time zone does, as in EventBridge Scheduler. Ticks
  are `anchor + k * period` for k >= 1, the anchor being chosen by the caller (the schedule's first start).
* `cron(min hour day-of-month month day-of-week year)`: EventBridge's six fields, with `? L W #` and the
  year; day-of-week 1-7 is SUN-SAT. Exactly one of day-of-month and day-of-week must be `?`.
* a plain cron line (`*/5 * * * *`, or `@daily` and friends): Vixie cron semantics, day-of-week 0-7 with
  0 and 7 both Sunday.

Cron times are wall-clock times in the schedule's time zone, evaluated by croniter on naive local times and
then placed on the time line the way EventBridge Scheduler does across daylight saving changes: a wall time
that does not exist (spring forward) is skipped; a wall time that happens twice (fall back) fires once, at
its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_UTC = dt.UTC
MAX_YEAR = 2099  # croniter's limit; EventBridge accepts up to 2199

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class ExpressionError(ValueError):
    """A schedule expression that cannot be used; the message names the value and what is wrong."""


# ---------------------------------------------------------------------------------------------------------
# rate()

_RATE = re.compile(r"^rate\(\s*(\S+)\s+(\S+)\s*\)\Z")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class RateExpression:
    text: str
    period_s: int

    def next_after(self, t: float, anchor: float) -> float | None:
        """The first tick strictly after t; ticks are anchor + k*period, k >= 1."""
        if t < anchor:
            return anchor + self.period_s
        k = int((t - anchor) // self.period_s) + 1
        return anchor + k * self.period_s


def _parse_rate(text: str) -> RateExpression:
    m = _RATE.match(text)
    if not m:
        raise ExpressionError(f"invalid rate {text!r}: expected rate(value unit), e.g. rate(5 minutes)")
    value, unit = m.group(1), m.group(2)
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ExpressionError(f"invalid rate {text!r}: value {value!r} is not a positive whole number")
    n = int(value)
    base = unit[:-1] if unit.endswith("s") else unit
    if base not in _UNITS:
        units = "minute(s), hour(s), day(s)"
        raise ExpressionError(f"invalid rate {text!r}: unit {unit!r} is not one of {units}")
    if n == 1 and unit != base:
        raise ExpressionError(f"invalid rate {text!r}: use the singular unit for 1 (rate(1 {base}))")
    if n != 1 and unit == base:
        raise ExpressionError(f"invalid rate {text!r}: use the plural unit for {n} (rate({n} {base}s))")
    return RateExpression(text=text, period_s=n * _UNITS[base])


# ---------------------------------------------------------------------------------------------------------
# cron fields


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()  # JAN..DEC or SUN..SAT, mapped to lo, lo+1, ...
    special: str = ""  # which of ? L W # the field allows


_AWS_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31, special="?LW"),
    _Field("month", 1, 12, MONTHS),
    _Field("day-of-week", 1, 7, DAYS, special="?L#"),
    _Field("year", 1970, 2199),
)
_UNIX_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31, special="L"),
    _Field("month", 1, 12, MONTHS),
    _Field("day-of-week", 0, 7, DAYS, special="L#"),
)


class _Bad(Exception):
    """A field problem; the caller adds the expression text."""


def _number(f: _Field, token: str) -> int:
    up = token.upper()
    if up in f.names:
        return f.names.index(up) + f.lo
    if not (token.isascii() and token.isdigit()):
        raise _Bad(f"{f.name} value {token!r} is not a number" + (" or name" if f.names else ""))
    n = int(token)
    if not f.lo <= n <= f.hi:
        raise _Bad(f"{f.name} {n} out of range")
    return n


_NTH_W = re.compile(r"^[0-9]+W\Z")
_LAST_DAY = re.compile(r"^([0-9]+|[A-Z]{3})L\Z")


def _is_special(f: _Field, up: str) -> bool:
    return (
        up in ("?", "L", "LW")
        or "#" in up
        or bool(_NTH_W.match(up))
        or (f.name == "day-of-week" and bool(_LAST_DAY.match(up)))
    )


def _check_item(f: _Field, item: str) -> None:
    """One comma-separated item: * a a-b a/s a-b/s */s, or a special form the field allows."""
    up = item.upper()
    if _is_special(f, up):
        _check_special(f, up)
        return
    base, slash, step = item.partition("/")
    if slash and (not (step.isascii() and step.isdigit()) or int(step) < 1):
        raise _Bad(f"{f.name} step {step!r} is not a positive number")
    if base == "*":
        return
    lo_s, dash, hi_s = base.partition("-")
    lo = _number(f, lo_s)
    if dash:
        hi = _number(f, hi_s)
        if hi < lo and f.name != "day-of-week":
            raise _Bad(f"{f.name} range {base!r} runs backwards")


def _check_special(f: _Field, up: str) -> None:
    wildcard = "W" if up.endswith("W") else "L" if up.endswith("L") or up == "LW" else up[0]
    if "#" in up:
        wildcard = "#"
    if wildcard not in f.special:
        raise _Bad(f"{wildcard!r} is not allowed in {f.name}")
    if up in ("?", "L", "LW"):
        return
    if wildcard == "#":
        day, _, nth = up.partition("#")
        _number(f, day)
        if not (nth.isascii() and nth.isdigit()) or not 1 <= int(nth) <= 5:
            raise _Bad(f"{f.name} {up!r}: the number after '#' must be 1-5")
        return
    _number(f, up[:-1])  # nW (day-of-month) or nL (day-of-week)


def _check_field(f: _Field, text: str) -> None:
    items = text.split(",")
    for item in items:
        if not item:
            raise _Bad(f"{f.name} {text!r} has an empty list item")
        _check_item(f, item)
    if len(items) > 1:
        ups = [i.upper() for i in items]
        if "?" in ups:
            raise _Bad(f"'?' must stand alone in {f.name} (got {text!r})")
        if any(u.endswith("W") for u in ups):
            raise _Bad(f"'W' must stand alone in {f.name} (got {text!r})")
        if sum("#" in u for u in ups) > 1:
            raise _Bad(f"only one '#' item is allowed in {f.name} (got {text!r})")


# ---------------------------------------------------------------------------------------------------------
# AWS cron -> croniter


def _dow_number(token: str) -> int:
    """An AWS day-of-week value (1-7 or SUN-SAT) as croniter's 0-6."""
    up = token.upper()
    return DAYS.index(up) if up in DAYS else int(token) - 1


def _aws_dow_item(item: str) -> str:
    up = item.upper()
    if up in ("?", "*"):
        return "*"
    if up == "L":
        return "6"  # the last day of the week: Saturday
    if up.endswith("L"):
        return f"L{_dow_number(up[:-1])}"
    if "#" in up:
        day, _, nth = up.partition("#")
        return f"{_dow_number(day)}#{nth}"
    base, slash, step = up.partition("/")
    if base == "*":
        out = "*"
    else:
        lo, dash, hi = base.partition("-")
        out = f"{_dow_number(lo)}-{_dow_number(hi)}" if dash else str(_dow_number(lo))
        if slash and not dash:
            out = f"{out}-6"
    return f"{out}/{step}" if slash else out


def _slash_from(item: str, hi: int) -> str:
    """'5/15' (EventBridge: from 5, every 15) as croniter's '5-59/15'."""
    base, slash, step = item.partition("/")
    if slash and base != "*" and "-" not in base:
        return f"{base}-{hi}/{step}"
    return item


def _is_last_weekday(d: dt.datetime) -> bool:
    last = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    while last.weekday() >= 5:
        last -= dt.timedelta(days=1)
    return d.day == last.day


def _aws_to_croniter(fields: list[str]) -> tuple[str, Callable[[dt.datetime], bool] | None]:
    minute, hour, dom, month, dow, year = fields
    keep: Callable[[dt.datetime], bool] | None = None
    if dom.upper() == "LW":
        dom, keep = "26-31", _is_last_weekday  # the last weekday is always within the month's last 3 days
    dom = "*" if dom == "?" else ",".join(_slash_from(i, 31) for i in dom.split(","))
    dow = ",".join(_aws_dow_item(i) for i in dow.split(","))
    parts = [
        ",".join(_slash_from(i, 59) for i in minute.split(",")),
        ",".join(_slash_from(i, 23) for i in hour.split(",")),
        dom,
        ",".join(_slash_from(i, 12) for i in month.split(",")),
        dow,
        "0",  # croniter's seconds field comes before the year
        ",".join(_slash_from(i, MAX_YEAR) for i in year.split(",")),
    ]
    return " ".join(parts), keep


def _parse_aws_cron(text: str, body: str) -> CronExpression:
    fields = body.split()
    if len(fields) != 6:
        raise ExpressionError(
            f"invalid cron {text!r}: expected 6 fields (minute hour day-of-month month day-of-week year), "
            f"got {len(fields)}"
        )
    try:
        for f, value in zip(_AWS_FIELDS, fields, strict=True):
            _check_field(f, value)
        dom, dow = fields[2], fields[4]
        if (dom == "?") == (dow == "?"):
            raise _Bad("exactly one of day-of-month and day-of-week must be '?'")
        for y in re.findall(r"[0-9]+", fields[5]):
            if int(y) > MAX_YEAR and "/" not in fields[5]:
                raise _Bad(f"year {y} is beyond {MAX_YEAR}, the last year supported here")
    except _Bad as e:
        raise ExpressionError(f"invalid cron {text!r}: {e}") from None
    line, keep = _aws_to_croniter(fields)
    return _croniter_expression(text, line, keep)


def _parse_unix_cron(text: str) -> CronExpression:
    fields = text.split()
    if text.startswith("@"):
        return _croniter_expression(text, text, None)
    if len(fields) != 5:
        raise ExpressionError(
            f"invalid cron {text!r}: expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}; EventBridge's 6-field form is written cron(...)"
        )
    try:
        for f, value in zip(_UNIX_FIELDS, fields, strict=True):
            _check_field(f, value)
    except _Bad as e:
        raise ExpressionError(f"invalid cron {text!r}: {e}") from None
    return _croniter_expression(text, text, None)


def _croniter_expression(text: str, line: str, keep: Callable[[dt.datetime], bool] | None) -> CronExpression:
    from croniter import croniter

    try:
        croniter(line, dt.datetime(2000, 1, 1))
    except (ValueError, KeyError) as e:
        raise ExpressionError(f"invalid cron {text!r}: {e}") from None
    return CronExpression(text=text, line=line, keep=keep)


# ---------------------------------------------------------------------------------------------------------
# Cron on the time line


@dataclass(frozen=True)
class CronExpression:
    text: str
    line: str  # the croniter expression
    keep: Callable[[dt.datetime], bool] | None = None  # extra filter croniter cannot express (LW)

    def next_after(self, t: float, tz: dt.tzinfo) -> float | None:
        """The first tick strictly after t (epoch seconds), or None when the schedule has no more ticks."""
        from croniter import CroniterBadDateError, croniter

        local = dt.datetime.fromtimestamp(t, tz).replace(tzinfo=None, fold=0)
        it = croniter(self.line, local)
        for _ in range(100_000):
            try:
                wall: dt.datetime = it.get_next(dt.datetime)
            except CroniterBadDateError:
                return None
            if self.keep is not None and not self.keep(wall):
                continue
            when = _place(wall, tz)
            if when is not None and when > t:
                return when
        return None  # pragma: no cover - every field combination croniter accepts repeats well before this


def _place(wall: dt.datetime, tz: dt.tzinfo) -> float | None:
    """Epoch seconds of a naive wall time in tz: None if it does not exist; its first occurrence if twice."""
    aware = wall.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(_UTC).astimezone(tz).replace(tzinfo=None)
    if back != wall:
        return None
    return aware.timestamp()


Expression = RateExpression | CronExpression


def parse_expression(text: str) -> Expression:
    s = text.strip()
    if s.startswith("rate("):
        return _parse_rate(s)
    if s.startswith("cron("):
        if not s.endswith(")"):
            raise ExpressionError(f"invalid cron {text!r}: missing the closing ')'")
        return _parse_aws_cron(text, s[5:-1])
    if s.startswith("at("):
        raise ExpressionError(f"invalid expression {text!r}: one-time at() schedules are not supported")
    return _parse_unix_cron(s)


def parse_timezone(name: str) -> dt.tzinfo:
    """A ZoneInfo for an IANA name; ExpressionError naming the value when unknown."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        hint = "use an IANA name such as UTC or Europe/Berlin"
        raise ExpressionError(f"unknown time zone {name!r} ({hint})") from None
