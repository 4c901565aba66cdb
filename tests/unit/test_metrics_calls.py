"""The per-invocation metrics kept as plain attributes (router/metrics.py `CallMetrics`) render exactly what
prometheus_client's own Counter, Histogram and Gauge render for the same observations."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from router.core.results import InvocationResult
from router.dispatch.stats import EVENT, Call, Counters, publish
from router.metrics import DURATION_BUCKETS, Metrics, Tally

CALLS = [  # (function, invocation type, result fields)
    ("f", "RequestResponse", dict(duration_ms=0.5, billed_ms=1, init_ms=120.0, cold=True, max_memory_mb=40)),
    ("f", "RequestResponse", dict(duration_ms=1.0, billed_ms=1, max_memory_mb=30, cpu_ms=0.3, cost_usd=2e-6)),
    ("f", EVENT, dict(duration_ms=2.5, billed_ms=3, function_error="Unhandled", error_type="ValueError")),
    ("g", EVENT, dict(duration_ms=1000.0, billed_ms=1000, init_ms=5.0, cold=True, max_memory_mb=7)),
    ("g", EVENT, dict(duration_ms=1e7, billed_ms=10**7, cpu_ms=12.5)),  # past the last bound: +Inf
]


def reference(calls: list[tuple[str, str, dict[str, object]]]) -> str:
    """The same figures through prometheus_client's own metric classes (what the router used before)."""
    r, fn = CollectorRegistry(), ("function",)
    kinds = (*fn, "invocation_type")
    invocations = Counter(
        "router_invocations_total", "Function invocations, by invocation type", kinds, registry=r
    )
    cold = Counter("router_cold_starts_total", "Invocations that launched an instance", fn, registry=r)
    warm = Counter("router_warm_starts_total", "Invocations served by an idle instance", fn, registry=r)
    hists = [
        Histogram(name, doc, fn, buckets=DURATION_BUCKETS, registry=r)
        for name, doc in (
            ("router_duration_seconds", "Invocation duration"),
            ("router_billed_duration_seconds", "Billed invocation duration"),
            ("router_init_duration_seconds", "Cold start init duration"),
        )
    ]
    memory = Gauge("router_max_memory_used_mb", "Highest peak memory measured in one call", fn, registry=r)
    cost = Counter("router_cost_usd_total", "Cost of invocations at the configured prices", fn, registry=r)
    cpu_doc = "CPU time used by instances during calls (measured by cgroups)"
    cpu = Counter("router_cpu_seconds_total", cpu_doc, fn, registry=r)
    peaks: dict[str, int] = {}
    for name, kind, fields in calls:
        res = InvocationResult(request_id="r", payload=b"", **fields)  # type: ignore[arg-type]
        for t in ("RequestResponse", "Event"):
            invocations.labels(name, t)
        invocations.labels(name, kind).inc()
        (cold if res.cold else warm).labels(name).inc()
        warm.labels(name), cold.labels(name), cost.labels(name), cpu.labels(name)
        hists[0].labels(name).observe(res.duration_ms / 1000)
        hists[1].labels(name).observe(res.billed_ms / 1000)
        init = hists[2].labels(name)
        if res.init_ms is not None:
            init.observe(res.init_ms / 1000)
        peaks[name] = max(peaks.get(name, 0), res.max_memory_mb)
        memory.labels(name).set(peaks[name])
        if res.cpu_ms is not None:
            cpu.labels(name).inc(res.cpu_ms / 1000)
        if res.cost_usd:
            cost.labels(name).inc(res.cost_usd)
    return generate_latest(r).decode()


def families(text: str) -> dict[str, list[str]]:
    """Each metric family's lines, _created values masked (they are clock readings)."""
    found: dict[str, list[str]] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
        found.setdefault(name, []).append(re.sub(r"(_created\{[^}]*\}) \S+$", r"\1 T", line))
    return found


def test_published_calls_render_as_prometheus_client_renders_them() -> None:
    metrics, counters = Metrics(), {"f": Counters(), "g": Counters()}
    for name, kind, fields in CALLS:
        call = Call(request_id="r", payload=b"{}", function=name, invocation_type=kind)
        result = InvocationResult(request_id="r", payload=b"", **fields)  # type: ignore[arg-type]
        counters[name].record(result)
        publish(metrics, call, result, counters[name])
    ours, theirs = families(metrics.render().decode()), families(reference(CALLS))
    for name, lines in theirs.items():
        assert ours[name] == lines, name
    assert 'router_errors_total{error_type="ValueError",function="f"} 1.0' in metrics.render().decode()


def test_tally_picks_the_first_bucket_whose_bound_is_not_below() -> None:
    tally = Tally((0.1, 1.0, float("inf")))
    for v in (0.0, 0.1, 0.10001, 1.0, 5.0):
        tally.observe(v)
    assert tally.counts == [2, 2, 1]
    assert tally.buckets() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]


def test_the_collected_names_cannot_be_registered_again() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="router_invocations_total"):
        metrics.counter("router_invocations_total", "again", ("function",))
