"""The router's Prometheus metrics: one registry for the whole daemon, rendered at GET /metrics.

`Metrics` owns its own `CollectorRegistry` (never the process-global one, so two routers in one test process
do not collide). The dispatcher's metrics are created here by name; other parts add theirs with
`counter()`, `gauge()` and `histogram()`, which return the existing metric when the name is already known
(so a reload or a second source of the same kind does not raise "Duplicated timeseries").

Gauges that are a view of live state (concurrency in use, idle instances, queue depth) are not pushed on
every change: a part registers a refresh callback with `add_refresh(fn)`, and `render()` calls every
callback before it serialises, so a scrape always sees the state of that moment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Lambda durations span 1 ms to 15 min; buckets in seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        self._refresh: list[Callable[[], None]] = []
        self._functions: dict[str, FunctionMetrics] = {}
        fn = ("function",)
        # Per invocation (sync and async attempts alike).
        self.invocations = self.counter(
            "router_invocations_total", "Function invocations, by invocation type", (*fn, "invocation_type")
        )
        self.errors = self.counter(
            "router_errors_total", "Invocations that ended in a function error", (*fn, "error_type")
        )
        self.throttles = self.counter(
            "router_throttles_total", "Synchronous calls refused over a limit", (*fn, "reason")
        )
        self.cold_starts = self.counter(
            "router_cold_starts_total", "Invocations that launched an instance", fn
        )
        self.warm_starts = self.counter(
            "router_warm_starts_total", "Invocations served by an idle instance", fn
        )
        self.duration = self.histogram("router_duration_seconds", "Invocation duration", fn, DURATION_BUCKETS)
        self.billed_duration = self.histogram(
            "router_billed_duration_seconds", "Billed invocation duration", fn, DURATION_BUCKETS
        )
        self.init_duration = self.histogram(
            "router_init_duration_seconds", "Cold start init duration", fn, DURATION_BUCKETS
        )
        self.max_memory = self.gauge(
            "router_max_memory_used_mb", "Highest peak memory measured in one call", fn
        )
        self.cost = self.counter("router_cost_usd_total", "Cost of invocations at the configured prices", fn)
        self.cpu = self.counter(
            "router_cpu_seconds_total", "CPU time used by instances during calls (measured by cgroups)", fn
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
        """The per-function children, bound once (labels() is a lock and a lookup: too slow per call)."""
        bound = self._functions.get(name)
        if bound is None:
            bound = self._functions[name] = FunctionMetrics(self, name)
        return bound

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

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (content type: `CONTENT_TYPE`)."""
        for callback in list(self._refresh):
            try:
                callback()
            except Exception:  # a broken refresher must not take /metrics down
                log.exception("metrics refresh callback failed")
        return generate_latest(self.registry)


class FunctionMetrics:
    """One function's labelled children of the per-invocation metrics."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self.sync_invocations = metrics.invocations.labels(name, "RequestResponse")
        self.async_invocations = metrics.invocations.labels(name, "Event")
        self.cold_starts = metrics.cold_starts.labels(name)
        self.warm_starts = metrics.warm_starts.labels(name)
        self.duration = metrics.duration.labels(name)
        self.billed_duration = metrics.billed_duration.labels(name)
        self.init_duration = metrics.init_duration.labels(name)
        self.max_memory = metrics.max_memory.labels(name)
        self.cost = metrics.cost.labels(name)
        self.cpu = metrics.cpu.labels(name)
