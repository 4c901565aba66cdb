"""The router's Prometheus metrics: one registry for the whole daemon, rendered at GET /metrics.

`Metrics` owns its own `CollectorRegistry` (never the process-global one, so two routers in one test process
do not collide). The dispatcher's metrics are created here by name; other parts add theirs with
`counter()`, `gauge()` and `histogram()`, which return the existing metric when the name is already known
(so a reload or a second source of the same kind does not raise "Duplicated timeseries").

The per-invocation metrics (router_invocations_total, cold and warm starts, the duration histograms, max
memory, CPU, cost) are plain attributes of one `FunctionMetrics` per function, which the dispatcher updates
on every call and `CallMetrics` (a collector, prometheus_client's custom collector API) renders at scrape
with the names, labels, types, buckets and _created series prometheus_client's own metric classes would
give: a call pays a few additions, not a lock and a child lookup per metric. Both run on the event loop.

Gauges that are a view of live state (concurrency in use, idle instances, queue depth) are not pushed on
every change: a part registers a refresh callback with `add_refresh(fn)`, and `render()` calls every
callback before it serialises, so a scrape always sees the state of that moment.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Lambda durations span 1 ms to 15 min; buckets in seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        self._refresh: list[Callable[[], None]] = []
        self._collected: set[str] = set()  # names served by a collector (not through _get_or_create)
        fn = ("function",)
        # Per invocation (sync and async attempts alike): plain attributes per function, rendered at scrape
        # by `CallMetrics` (router_invocations_total, cold and warm starts, durations, memory, CPU, cost).
        self.calls = CallMetrics(DURATION_BUCKETS)
        self.registry.register(self.calls)
        self._collected.update(CallMetrics.NAMES)
        self.errors = self.counter(
            "router_errors_total", "Invocations that ended in a function error", (*fn, "error_type")
        )
        self.throttles = self.counter(
            "router_throttles_total", "Synchronous calls refused over a limit", (*fn, "reason")
        )
        # Live state, refreshed at render time by the dispatcher.
        self.concurrency = self.gauge("router_concurrent_executions", "Calls in flight", fn)
        self.account_concurrency = self.gauge(
            "router_account_concurrent_executions", "Calls in flight, all functions"
        )
        self.unreserved_concurrency = self.gauge(
            "router_unreserved_concurrent_executions",
            "Calls in flight of functions without reserved concurrency",
        )
        self.instances = self.gauge("router_instances", "Function instances, by state", (*fn, "state"))
        self.queue_depth = self.gauge(
            "router_async_queue_depth", "Asynchronous events stored, not yet finished", fn
        )
        self.queue_oldest_age = self.gauge(
            "router_async_queue_oldest_age_seconds", "Age of the oldest stored asynchronous event", fn
        )
        # Asynchronous event outcomes.
        self.async_retries = self.counter(
            "router_async_retries_total", "Asynchronous events scheduled for another attempt", (*fn, "cause")
        )
        self.async_destinations = self.counter(
            "router_async_destination_deliveries_total",
            "Invocation records sent to a destination",
            (*fn, "condition", "destination"),
        )
        self.async_dropped = self.counter(
            "router_async_dropped_total",
            "Asynchronous events given up without a destination",
            (*fn, "condition"),
        )
        self.destination_errors = self.counter(
            "router_destination_errors_total",
            "Records a destination could not take (the event is dropped)",
            fn,
        )

    def function(self, name: str) -> FunctionMetrics:
        """A function's per-invocation figures (created at its first call)."""
        return self.calls.function(name)

    # -- registering metrics (also for other parts) -------------------------------------------------------

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return self._get_or_create(Counter, name, doc, labels)  # type: ignore[return-value]

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get_or_create(Gauge, name, doc, labels)  # type: ignore[return-value]

    def histogram(
        self, name: str, doc: str, labels: Sequence[str] = (), buckets: Sequence[float] = DURATION_BUCKETS
    ) -> Histogram:
        return self._get_or_create(Histogram, name, doc, labels, buckets=tuple(buckets))  # type: ignore[return-value]

    def _get_or_create(self, cls: type, name: str, doc: str, labels: Sequence[str], **kw: object) -> object:
        if name in self._collected:
            raise ValueError(f"metric {name!r} is the router's own per-invocation metric")
        existing = self._metrics.get(name)
        if existing is not None:
            if not isinstance(existing, cls):
                raise ValueError(f"metric {name!r} already registered as a {type(existing).__name__}")
            return existing
        metric = cls(name, doc, tuple(labels), registry=self.registry, **kw)
        self._metrics[name] = metric
        return metric

    # -- rendering -----------------------------------------------------------------------------------------

    def add_refresh(self, callback: Callable[[], None]) -> None:
        """Call `callback` before every render, to set gauges from live state."""
        self._refresh.append(callback)

    def remove_refresh(self, callback: Callable[[], None]) -> None:
        if callback in self._refresh:
            self._refresh.remove(callback)

    def render(self, names: Sequence[str] = ()) -> bytes:
        """The Prometheus text exposition (content type: `CONTENT_TYPE`) of every metric, or of the samples
        named in `names` only (`/metrics?name[]=...`, as prometheus_client's own exposition filters)."""
        for callback in list(self._refresh):
            try:
                callback()
            except Exception:  # a broken refresher must not take /metrics down
                log.exception("metrics refresh callback failed")
        if names:
            return generate_latest(self.registry.restricted_registry(names))
        return generate_latest(self.registry)


class Tally:
    """A histogram's counts: `counts[i]` observations in bucket i alone (not cumulative; last: +Inf)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # ends with +Inf
        self.counts = [0] * len(bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Like prometheus_client's Histogram: the first bucket whose bound is >= value."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, labelled as prometheus_client labels them."""
        return [
            (floatToGoString(b), float(c)) for b, c in zip(self.bounds, accumulate(self.counts), strict=True)
        ]


class FunctionMetrics:
    """One function's per-invocation figures, as plain attributes: `publish` (router/dispatch/stats.py)
    updates them on the event loop, `CallMetrics.collect` reads them at scrape (same thread), so no lock."""

    __slots__ = (
        "async_invocations",
        "billed_duration",
        "cold_starts",
        "cost",
        "cpu",
        "created",
        "duration",
        "init_duration",
        "max_memory",
        "name",
        "sync_invocations",
        "warm_starts",
    )

    def __init__(self, name: str, bounds: tuple[float, ...]) -> None:
        self.name = name
        self.created = time.time()  # the _created series of its counters and histograms
        self.sync_invocations = 0
        self.async_invocations = 0
        self.cold_starts = 0
        self.warm_starts = 0
        self.duration = Tally(bounds)  # seconds
        self.billed_duration = Tally(bounds)
        self.init_duration = Tally(bounds)
        self.max_memory = 0  # MB, highest peak of one call
        self.cost = 0.0  # USD
        self.cpu = 0.0  # seconds


class CallMetrics(Collector):
    """The per-invocation metrics, rendered from `FunctionMetrics` at scrape (prometheus_client's custom
    collector API): the names, labels, types, buckets and _created series prometheus_client's own Counter,
    Histogram and Gauge would give, without their lock and child lookup on every call."""

    NAMES = (
        "router_invocations_total",
        "router_cold_starts_total",
        "router_warm_starts_total",
        "router_duration_seconds",
        "router_billed_duration_seconds",
        "router_init_duration_seconds",
        "router_max_memory_used_mb",
        "router_cost_usd_total",
        "router_cpu_seconds_total",
    )

    def __init__(self, buckets: Sequence[float]) -> None:
        bounds = tuple(float(b) for b in buckets)
        self._bounds = bounds if bounds[-1] == math.inf else (*bounds, math.inf)
        self._functions: dict[str, FunctionMetrics] = {}

    def function(self, name: str) -> FunctionMetrics:
        found = self._functions.get(name)
        if found is None:
            found = self._functions[name] = FunctionMetrics(name, self._bounds)
        return found

    def describe(self) -> list[Metric]:
        return self._families([])

    def collect(self) -> list[Metric]:
        return self._families(list(self._functions.values()))

    def _families(self, functions: list[FunctionMetrics]) -> list[Metric]:
        created = getattr(prometheus_metrics, "_use_created", True)  # PROMETHEUS_DISABLE_CREATED_SERIES
        fn = ["function"]
        invocations = CounterMetricFamily(
            "router_invocations", "Function invocations, by invocation type", labels=[*fn, "invocation_type"]
        )
        cold = CounterMetricFamily("router_cold_starts", "Invocations that launched an instance", labels=fn)
        warm = CounterMetricFamily("router_warm_starts", "Invocations served by an idle instance", labels=fn)
        histograms = [
            (HistogramMetricFamily("router_duration_seconds", "Invocation duration", labels=fn), "duration"),
            (
                HistogramMetricFamily(
                    "router_billed_duration_seconds", "Billed invocation duration", labels=fn
                ),
                "billed_duration",
            ),
            (
                HistogramMetricFamily("router_init_duration_seconds", "Cold start init duration", labels=fn),
                "init_duration",
            ),
        ]
        memory = GaugeMetricFamily(
            "router_max_memory_used_mb", "Highest peak memory measured in one call", labels=fn
        )
        cost = CounterMetricFamily(
            "router_cost_usd", "Cost of invocations at the configured prices", labels=fn
        )
        cpu = CounterMetricFamily(
            "router_cpu_seconds", "CPU time used by instances during calls (measured by cgroups)", labels=fn
        )
        for f in functions:
            at = f.created if created else None
            invocations.add_metric([f.name, "RequestResponse"], f.sync_invocations, created=at)
            invocations.add_metric([f.name, "Event"], f.async_invocations, created=at)
            cold.add_metric([f.name], f.cold_starts, created=at)
            warm.add_metric([f.name], f.warm_starts, created=at)
            for family, attr in histograms:
                tally: Tally = getattr(f, attr)
                family.add_metric([f.name], tally.buckets(), tally.sum)
                if at is not None:
                    family.samples.append(Sample(family.name + "_created", {"function": f.name}, at))
            memory.add_metric([f.name], f.max_memory)
            cost.add_metric([f.name], f.cost, created=at)
            cpu.add_metric([f.name], f.cpu, created=at)
        return [invocations, cold, warm, *(h for h, _ in histograms), memory, cost, cpu]
