"""The console's in-process parts: the dispatcher's history (router/dispatch/history.py), the REPORT lines
kept for the live list (router/control/console/reports.py), what sources publish (SourceStatus) and how the
Sources endpoint hides secrets."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from router.control.console.reports import ReportLines, report_in
from router.control.console.sources import HIDDEN, redact
from router.core.clock import FakeClock
from router.core.ports import SourceStatus
from router.core.results import InvocationResult
from router.dispatch.history import FIELDS, SAMPLES, History, percentile
from router.dispatch.stats import EVENT, AccountStats, Call, DispatcherStats, FunctionStats

ACCOUNT = AccountStats(
    concurrency=10, in_use=0, unreserved_limit=10, unreserved_in_use=0, queue_depth=0, oldest_age_s=0
)


def fstats(**counts: int) -> FunctionStats:
    base = dict(
        in_use=0, idle=0, busy=0, launching=0, provisioned=0, provisioned_target=0, reserved=None,
        revision=None, invocations=0, errors=0, throttles=0, cold_starts=0, warm_starts=0, max_memory_mb=0,
        cost_usd=0.0, duration_ms_total=0.0, billed_ms_total=0, queue_depth=0, oldest_age_s=0.0,
    )  # fmt: skip
    return FunctionStats(**{**base, **counts})  # type: ignore[arg-type]


class Stats:
    """The dispatcher's stats, set by the test."""

    def __init__(self) -> None:
        self.functions: dict[str, FunctionStats] = {"f": fstats()}

    def __call__(self) -> DispatcherStats:
        return DispatcherStats(account=ACCOUNT, functions=dict(self.functions))


def call(attempt: int = 1, kind: str = "RequestResponse") -> Call:
    return Call(request_id="r", payload=b"{}", function="f", invocation_type=kind, attempt=attempt)


def result(duration_ms: float, memory: int = 30, log: bytes = b"") -> InvocationResult:
    return InvocationResult(
        request_id="r", payload=b"", duration_ms=duration_ms, max_memory_mb=memory, log=log
    )


def field(point: list[float], name: str) -> float:
    return point[FIELDS.index(name)]


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert percentile(ordered, 0.5) == 50.0
    assert percentile(ordered, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0


async def test_a_bucket_holds_the_increase_of_the_counters_and_the_results_figures() -> None:
    clock, stats = FakeClock(start=1000.0), Stats()
    stats.functions["f"] = fstats(invocations=5, errors=1)
    history = History(stats, clock=clock, step_s=10, span_s=60)
    stats.functions["f"] = fstats(invocations=9, errors=2, throttles=1, cold_starts=1, idle=2, busy=1)
    for ms in (10.0, 20.0, 30.0, 400.0):
        history.record("f", call(), result(ms, memory=40))
    history.record("f", call(attempt=2, kind=EVENT), result(5.0, memory=60))
    open_point = history.current()["f"]
    assert field(open_point, "t") == 1000.0
    assert field(open_point, "invocations") == 4  # 9 - 5: the increase since the history began
    assert field(open_point, "errors") == 1 and field(open_point, "throttles") == 1
    assert field(open_point, "p50_ms") == 20.0 and field(open_point, "p99_ms") == 400.0
    assert field(open_point, "max_memory_mb") == 60 and field(open_point, "retries") == 1
    assert (field(open_point, "idle"), field(open_point, "busy")) == (2, 1)

    await clock.advance(10.0)
    history.sample()
    series = history.series()
    closed, still_open = series["functions"]["f"]
    assert closed == open_point
    assert field(still_open, "t") == 1010.0
    assert field(still_open, "invocations") == 0 and field(still_open, "p50_ms") == 0  # a fresh bucket
    assert field(still_open, "idle") == 2  # gauges are levels, not increases


def test_past_the_reservoir_durations_are_kept_uniformly() -> None:
    """Past SAMPLES calls in a bucket, each call's duration replaces a kept one with chance SAMPLES / seen:
    of 8 * SAMPLES calls timed 0, 1, 2, ... about as many of each eighth are kept (the seed is fixed)."""
    history = History(Stats(), clock=FakeClock(start=0.0), step_s=10)
    calls = 8 * SAMPLES
    for n in range(calls):
        history.record("f", call(), result(float(n)))
    kept = history._open["f"].durations
    assert len(kept) == SAMPLES
    per_eighth = [sum(1 for d in kept if i * SAMPLES <= d < (i + 1) * SAMPLES) for i in range(8)]
    assert all(SAMPLES / 8 * 0.7 < k < SAMPLES / 8 * 1.3 for k in per_eighth), per_eighth
    assert field(history.current()["f"], "p50_ms") == pytest.approx(calls / 2, rel=0.1)


async def test_quiet_buckets_are_left_out_and_old_ones_age_away() -> None:
    clock, stats = FakeClock(start=0.0), Stats()
    history = History(stats, clock=clock, step_s=10, span_s=30)
    for n in range(1, 8):
        if n in (1, 2, 5, 6):
            stats.functions["f"] = fstats(invocations=stats.functions["f"].invocations + 1)
        await clock.advance(10.0)
        history.sample()
    points = history.series("f")["functions"]["f"]
    # buckets started at 0..60; the ones at 0 and 10 are past the 30 s span, 20 and 30 saw nothing
    assert [p[0] for p in points] == [40.0, 50.0, 70.0]
    assert [field(p, "invocations") for p in points] == [1, 1, 0]


async def test_a_deleted_function_loses_its_series() -> None:
    clock, stats = FakeClock(start=0.0), Stats()
    history = History(stats, clock=clock, step_s=10)
    stats.functions["f"] = fstats(invocations=1)
    await clock.advance(10.0)
    history.sample()
    assert len(history.series()["functions"]["f"]) == 2
    stats.functions = {}
    history.sample()
    assert history.series()["functions"] == {}


async def test_run_samples_at_every_step_of_the_clock() -> None:
    clock, stats = FakeClock(start=1005.0), Stats()
    history = History(stats, clock=clock, step_s=10)
    task = asyncio.create_task(history.run())
    await asyncio.sleep(0)
    stats.functions["f"] = fstats(invocations=3)
    await clock.advance(5.0)  # the bucket that began at 1000 closes at 1010
    await asyncio.sleep(0)
    assert history.opened == 1010.0
    points = history.series()["functions"]["f"]
    assert [(p[0], field(p, "invocations")) for p in points] == [(1000.0, 3), (1010.0, 0)]
    task.cancel()


def test_report_lines_keep_the_newest_calls_last_report_line() -> None:
    log = b"START RequestId: r Version: $LATEST\nhello\nEND RequestId: r\n"
    log += b"REPORT RequestId: r\tDuration: 1.00 ms\n"
    reports = ReportLines(keep=2)
    for n in range(3):
        reports.record("f", msgspec.structs.replace(call(), started_at=float(n)), result(1.0, log=log))
    assert reports.line("r", 0.0) is None  # dropped: only the newest two are kept
    assert reports.line("r", 2.0) == "REPORT RequestId: r\tDuration: 1.00 ms"
    assert report_in(b"no report here") is None


def test_source_status_publishes_withdraws_and_survives_a_failing_reader() -> None:
    status = SourceStatus()
    first = status.publish("f", lambda: {"delivered": 1})
    second = status.publish("f", lambda: {"delivered": 2})
    assert (first, second) == ("f", "f#2")

    def broken() -> dict[str, int]:
        raise KeyError("gone")

    status.publish("g", broken)
    snap = status.snapshot()
    assert snap["f"] == {"delivered": 1} and snap["f#2"] == {"delivered": 2}
    assert snap["g"] == {"error": "KeyError: 'gone'"}
    status.withdraw(first)
    assert "f" not in status.snapshot()


def test_source_settings_hide_secrets() -> None:
    settings = {"brokers": ["b:9092"], "sasl_plain_password": "pw", "auth": {"token": "t", "user": "u"},
                "secret": ""}  # fmt: skip
    shown = redact(settings)
    assert shown["sasl_plain_password"] == HIDDEN and shown["auth"] == {"token": HIDDEN, "user": "u"}
    assert shown["brokers"] == ["b:9092"] and shown["secret"] == ""  # nothing to hide


async def test_a_read_after_the_bucket_ended_closes_it_before_run_wakes() -> None:
    """On a busy loop run() may wake late: a read meanwhile must not show the ended bucket as the open one
    (nor must run() close the new one early when it wakes)."""
    clock, stats = FakeClock(start=1000.0), Stats()
    history = History(stats, clock=clock, step_s=10)
    task = asyncio.create_task(history.run())
    await asyncio.sleep(0)
    stats.functions["f"] = fstats(invocations=2)
    clock._now = 1010.4  # past the boundary, and run() has not run yet (a busy loop)
    closed, still_open = history.series("f")["functions"]["f"]
    assert field(closed, "t") == 1000.0 and field(closed, "invocations") == 2
    assert field(still_open, "t") == 1010.0 and field(still_open, "invocations") == 0
    stats.functions["f"] = fstats(invocations=3)
    await clock.advance(0.0)  # run() wakes now: the bucket of 1010 is not closed a second time
    await asyncio.sleep(0)
    points = history.series("f")["functions"]["f"]
    assert [field(p, "t") for p in points] == [1000.0, 1010.0] and field(points[-1], "invocations") == 1
    task.cancel()
