"""What the dispatcher reports: per-call records, per-function counters, the stats snapshot, metrics.

* `Call` is the InvokeRequest the dispatcher hands to an instance, plus what observers want to know: the
  function, the invocation type (RequestResponse or Event), the source that sent it and the attempt number.
  `on_result` callbacks get it with the result.
* `Counters` are a function's running totals, kept across revisions (a new revision is the same function).
* `DispatcherStats` is the snapshot `Dispatcher.stats()` returns. `publish` feeds one result into the
  Prometheus metrics of router/metrics.py; `publish_state` sets the live gauges from a snapshot (at scrape).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from router.core.results import InvocationResult
from router.invoker.types import InvokeRequest

if TYPE_CHECKING:
    from router.core.backends import AsyncQueue
    from router.dispatch.concurrency import Accounting
    from router.dispatch.pool import InstancePool
    from router.dispatch.registry import FunctionDefinition
    from router.metrics import Metrics

REQUEST_RESPONSE = "RequestResponse"
EVENT = "Event"


class Call(InvokeRequest, frozen=True, kw_only=True):
    function: str
    invocation_type: str = REQUEST_RESPONSE  # RequestResponse | Event
    source: str | None = None  # the source's name for events from sources; "invoke" for the Invoke API
    attempt: int = 1  # async events: 1, then 2 and 3 on retries
    started_at: float = 0.0  # wall clock
    qualifier: str | None = None  # the version or alias it was invoked with (None: $LATEST)
    version: str = "$LATEST"  # the version that runs it (an alias's pick)


@dataclass
class Counters:
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    warm_starts: int = 0
    max_memory_mb: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0  # total
    billed_ms: int = 0  # total

    def record(self, result: InvocationResult) -> None:
        self.invocations += 1
        if result.function_error is not None:
            self.errors += 1
        if result.cold:
            self.cold_starts += 1
        else:
            self.warm_starts += 1
        self.max_memory_mb = max(self.max_memory_mb, result.max_memory_mb)
        self.cost_usd += result.cost_usd
        self.duration_ms += result.duration_ms
        self.billed_ms += result.billed_ms


class FunctionStats(msgspec.Struct, kw_only=True):
    in_use: int  # calls in flight (concurrent executions)
    idle: int  # initialised instances waiting for a call
    busy: int  # instances running a call
    launching: int  # instances being initialised
    provisioned: int  # provisioned instances that exist
    provisioned_target: int
    reserved: int | None
    revision: str | None
    invocations: int
    errors: int
    throttles: int
    cold_starts: int
    warm_starts: int
    max_memory_mb: int
    cost_usd: float
    duration_ms_total: float
    billed_ms_total: int
    queue_depth: int  # stored async events, including those running
    oldest_age_s: float  # age of the oldest stored async event (0 when none)


class AccountStats(msgspec.Struct, kw_only=True):
    concurrency: int  # account.concurrency
    in_use: int
    unreserved_limit: int  # account concurrency minus every reservation
    unreserved_in_use: int
    queue_depth: int
    oldest_age_s: float


class DispatcherStats(msgspec.Struct, kw_only=True):
    account: AccountStats
    functions: dict[str, FunctionStats]


def _age(now: float, oldest: float | None) -> float:
    return 0.0 if oldest is None else max(0.0, now - oldest)


def function_stats(
    name: str,
    pool: InstancePool | None,
    counters: Counters,
    accounting: Accounting,
    queue: AsyncQueue,
    now: float,
    definition: FunctionDefinition | None,
) -> FunctionStats:
    return FunctionStats(
        in_use=accounting.in_use(name),
        idle=pool.idle if pool else 0,
        busy=pool.busy if pool else 0,
        launching=pool.launching if pool else 0,
        provisioned=pool.provisioned if pool else 0,
        provisioned_target=definition.config.provisioned_concurrency if definition else 0,
        reserved=accounting.reservation(name),
        revision=definition.revision if definition else None,
        invocations=counters.invocations,
        errors=counters.errors,
        throttles=counters.throttles,
        cold_starts=counters.cold_starts,
        warm_starts=counters.warm_starts,
        max_memory_mb=counters.max_memory_mb,
        cost_usd=counters.cost_usd,
        duration_ms_total=counters.duration_ms,
        billed_ms_total=counters.billed_ms,
        queue_depth=queue.depth(name),
        oldest_age_s=_age(now, queue.oldest(name)),
    )


def account_stats(accounting: Accounting, queue: AsyncQueue, now: float) -> AccountStats:
    return AccountStats(
        concurrency=accounting.account_concurrency,
        in_use=accounting.in_use(),
        unreserved_limit=accounting.unreserved_limit,
        unreserved_in_use=accounting.unreserved_in_use,
        queue_depth=queue.depth(),
        oldest_age_s=_age(now, queue.oldest()),
    )


def publish(metrics: Metrics, call: Call, result: InvocationResult, counters: Counters) -> None:
    """One invocation (already recorded in the function's `counters`) into the Prometheus metrics: plain
    attributes of the function's `FunctionMetrics`, rendered at scrape (router/metrics.py)."""
    m = metrics.function(call.function)
    if call.invocation_type == EVENT:
        m.async_invocations += 1
    else:
        m.sync_invocations += 1
    if result.function_error is not None:
        metrics.errors.labels(call.function, result.error_type or result.function_error).inc()
    if result.cold:
        m.cold_starts += 1
    else:
        m.warm_starts += 1
    m.duration.observe(result.duration_ms / 1000)
    m.billed_duration.observe(result.billed_ms / 1000)
    if result.init_ms is not None:
        m.init_duration.observe(result.init_ms / 1000)
    m.max_memory = counters.max_memory_mb
    if result.cpu_ms is not None:
        m.cpu += result.cpu_ms / 1000
    if result.cost_usd:
        m.cost += result.cost_usd


def publish_state(metrics: Metrics, stats: DispatcherStats) -> None:
    """The live gauges (concurrency, instances, queue) from a stats snapshot; called before each scrape."""
    m = metrics
    m.account_concurrency.set(stats.account.in_use)
    m.unreserved_concurrency.set(stats.account.unreserved_in_use)
    for gauge in (m.concurrency, m.instances, m.queue_depth, m.queue_oldest_age):
        gauge.clear()  # functions deleted since the last scrape disappear
    for name, s in stats.functions.items():
        m.concurrency.labels(name).set(s.in_use)
        m.instances.labels(name, "idle").set(s.idle)
        m.instances.labels(name, "busy").set(s.busy)
        m.queue_depth.labels(name).set(s.queue_depth)
        m.queue_oldest_age.labels(name).set(s.oldest_age_s)
