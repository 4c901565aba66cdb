"""Counters of one stream event source mapping, and their Prometheus export.

The engine bumps plain integers on its hot path; `bind(metrics, status)` registers a refresh callback with
the daemon's `router.metrics.Metrics` that adds the increments since the last scrape to Prometheus counters
and sets the lag gauges, so a scrape always sees current values and delivery pays no client-library cost;
and publishes `snapshot()` (counters, lag and checkpoint per partition) in the source's `SourceStatus` for
the console. The engine sets `positions` (its checkpoints by partition) when it starts.

Exported (labels source, function; lag also partition):
  router_stream_batches_total, router_stream_batch_size (histogram, records per batch),
  router_stream_records_total{outcome=delivered|filtered|failed}, router_stream_retries_total,
  router_stream_bisections_total, router_stream_dispatch_backoffs_total (throttled / shutting down),
  router_stream_partition_pauses_total (fetching paused on a full buffer),
  router_stream_failure_destination_records_total{destination}, router_stream_lag (records behind the head).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

_COUNTERS = ("batches", "delivered", "filtered", "failed", "retries", "bisections", "throttled", "pauses")


@dataclass
class MappingStats:
    source: str
    function: str
    destination: str = "none"
    batches: int = 0
    delivered: int = 0
    filtered: int = 0
    failed: int = 0
    retries: int = 0
    bisections: int = 0
    throttled: int = 0
    pauses: int = 0
    lag: dict[str, int] = field(default_factory=dict)  # partition -> records between checkpoint and head
    # partition -> the position of its last checkpointed record (set by the engine: StreamMapping.checkpoints)
    positions: Callable[[], dict[str, Any]] | None = None
    _status: Any = None
    _status_key: str = ""
    _exported: dict[str, int] = field(default_factory=dict)
    _histogram: Any = None
    _metrics: Any = None
    _lag_labels: set[str] = field(default_factory=set)

    def batch(self, size: int) -> None:
        self.batches += 1
        if self._histogram is not None:
            self._histogram.observe(size)

    def forget(self, partition: str) -> None:
        self.lag.pop(partition, None)

    def snapshot(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _COUNTERS} | {"lag": dict(self.lag)}
        out["function"], out["destination"] = self.function, self.destination
        if self.positions is not None:
            out["checkpoints"] = {p: str(r.position) for p, r in self.positions().items()}
        return out

    # -- Prometheus -------------------------------------------------------------------------------------

    def bind(self, metrics: Any, status: Any = None) -> None:
        """Export through a `router.metrics.Metrics` (None: keep counting locally only), and publish the
        snapshot in a `router.core.ports.SourceStatus` (None: not published)."""
        if status is not None:
            self._status = status
            self._status_key = status.publish(self.function, self.snapshot)
        if metrics is None:
            return
        self._metrics = metrics
        labels = ("source", "function")
        self._histogram = metrics.histogram(
            "router_stream_batch_size", "Records per stream batch", labels, BATCH_SIZE_BUCKETS
        ).labels(self.source, self.function)
        metrics.add_refresh(self.refresh)

    def unbind(self) -> None:
        if self._status is not None:
            self._status.withdraw(self._status_key)
            self._status = None
        if self._metrics is not None:
            self.refresh()
            self._metrics.remove_refresh(self.refresh)
            gauge = self._lag_gauge()
            for partition in self._lag_labels:
                gauge.remove(self.source, self.function, partition)
            self._lag_labels.clear()

    def refresh(self) -> None:
        m, src, fn = self._metrics, self.source, self.function
        labels = ("source", "function")
        simple = {
            "batches": ("router_stream_batches_total", "Stream batches delivered or attempted"),
            "retries": ("router_stream_retries_total", "Stream batch retries after a function error"),
            "bisections": ("router_stream_bisections_total", "Failed stream batches split in two"),
            "throttled": (
                "router_stream_dispatch_backoffs_total",
                "Stream calls backed off on a dispatch error",
            ),
            "pauses": ("router_stream_partition_pauses_total", "Partitions paused on a full buffer"),
        }
        for attr, (name, doc) in simple.items():
            self._add(m.counter(name, doc, labels).labels(src, fn), attr)
        records = m.counter("router_stream_records_total", "Stream records by outcome", (*labels, "outcome"))
        for outcome in ("delivered", "filtered", "failed"):
            self._add(records.labels(src, fn, outcome), outcome)
        dest = m.counter(
            "router_stream_failure_destination_records_total",
            "Stream records given up and sent to the failure destination",
            (*labels, "destination"),
        )
        self._add(dest.labels(src, fn, self.destination), "failed", key="failed_dest")
        gauge = self._lag_gauge()
        for partition in self._lag_labels - set(self.lag):
            gauge.remove(src, fn, partition)
        for partition, lag in self.lag.items():
            gauge.labels(src, fn, partition).set(lag)
        self._lag_labels = set(self.lag)

    def _lag_gauge(self) -> Any:
        return self._metrics.gauge(
            "router_stream_lag",
            "Records between the checkpoint and the head of a partition",
            ("source", "function", "partition"),
        )

    def _add(self, child: Any, attr: str, key: str | None = None) -> None:
        key = key or attr
        value = getattr(self, attr)
        delta = value - self._exported.get(key, 0)
        if delta > 0:
            child.inc(delta)
        self._exported[key] = value
