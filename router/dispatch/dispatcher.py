"""The dispatcher: per-function instance pools, concurrency accounting, throttling, the durable async queue.

Contract (what sources, the control plane and the daemon rely on):

* `Dispatcher(config, state_dir=..., clock=..., metrics=..., queue=...)`; `await set_functions(defs)` gives it
  the functions (before or after start); `await start()` opens the durable queue (`queue`, an AsyncQueue of
  router/core/backends.py; by default today's SQLite file `<state_dir>/queue.db`),
  launches provisioned instances and waits until they are initialised, and starts the async scheduler and
  the idle reaper; `await drain(grace_s)` stops taking new calls, lets in-flight calls finish up to grace_s,
  then cancels the rest (sync callers get `ShuttingDown`, async events stay stored and run after the next
  start); `await aclose()` stops every instance and closes the queue. Both idempotent.
* `await invoke(function, payload, *, client_context=None, trace=None, source=None) -> InvocationResult`: a
  synchronous call. Raises `FunctionNotFound`, `Throttled(reason=...)` at once when over a limit (with
  `retry_after_s`), `ShuttingDown` when draining, `DispatchError` when no instance could be launched for a
  system reason.
  Function failures (including init failures, timeouts, OOM, crashes) come back as data in the result.
* `await enqueue(function, payload, *, trace=None, source=None) -> request_id`: an asynchronous call. Returns
  once the event is durably stored (fsync); retries, max event age and destinations follow the function's
  `async` settings (see router/dispatch/scheduler.py). Raises `FunctionNotFound`, `ShuttingDown`,
  `QueueUnavailable`.
* `trace=` (invoke and enqueue) is the trace header the event arrived with (the caller's X-Amzn-Trace-Id,
  None for an event from outside); the invocation gets one hop more (router/loops.py). Past
  `limits.max_loop_depth` invoke raises `LoopDetected`, and enqueue accepts the event but does not run it:
  its record goes to the function's on_failure destination (condition RecursiveLoopDetected).
* `qualifier=` (invoke, enqueue, check) is a published version or an alias of the function (None or
  `$LATEST`: the function itself). Each version runs in its own instance pool (its instances run that
  version's snapshot); an alias picks its version per call by its weights (a fresh draw per call and per
  async attempt), and `result.executed_version` says which ran. Concurrency is counted per function across
  its versions: a reservation covers them all, as on Lambda. An asynchronous event keeps its qualifier; its
  retries and destinations follow that version's (or alias's) asynchronous settings. A qualifier naming
  no version or alias is `FunctionNotFound`.
* `check(function, qualifier=None)`: DryRun; raises FunctionNotFound when there is no such function.
* `await set_functions(defs)`: replace the set of functions (config reload, deploy, delete). A function whose
  spec changed (new revision) gets a new pool: new calls go to new instances, in-flight calls finish on the
  old ones, which are then stopped. Other changes (reserved/provisioned concurrency, idle timeout, async
  settings) apply in place. `functions()` returns the current definitions.
* `reservable(function)`: the largest reserved concurrency the function may get (account.concurrency minus
  account.unreserved_min minus the other reservations), for PutFunctionConcurrency. `set_account(account)`
  applies a reloaded config's account limits. `set_share(share)` (router/core/shares.py): in a cluster, the
  part of every limit (account, reserved, provisioned) this node holds; alone it holds them whole.
* `stats() -> DispatcherStats`: per function and account: in use, idle, busy, cold/warm starts, throttles,
  invocations, errors, queue depth, oldest queued event age. The same numbers feed router/metrics.py.
* `on_result`: a list of callbacks `(function, call, result)` run after every invocation (sync calls and
  every async attempt); `call` is a `Call`, an InvokeRequest with the function, invocation type, source and
  attempt. A failing callback is logged, never propagated. `on_accepted`: callbacks `(AcceptedEvent)` the
  routes bound to this dispatcher call for every event they deliver (`route_hooks()`).
* `faults` (router/dispatch/faults.py): injected faults, drawn for every call in `_run` (function faults)
  and by the routes (source faults); configured from the config (`configure_faults`) and at run time.
* `enqueue(..., delay_s=)`: the event waits that long before its first attempt (reordering faults).

The instance factory (`instance_factory=`) defaults to the invoker's `Instance.start`; unit tests inject
fakes. `retry_delays_s`, `system_backoff_s` and `reap_interval_s` default to Lambda's values and exist so
tests can shrink them; with a FakeClock they are stepped instead of slept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from router.config import AccountConfig, Config
from router.core.arn import lambda_arn
from router.core.backends import AcceptedEvent, AsyncQueue, QueuedEvent
from router.core.clock import Clock, SystemClock
from router.core.errors import FunctionNotFound, LoopDetected, QueueUnavailable, ShuttingDown, Throttled
from router.core.ids import new_request_id
from router.core.results import InvocationResult
from router.core.shares import Share
from router.dispatch.concurrency import Accounting
from router.dispatch.faults import Draw, FaultRun, Faults, Injected
from router.dispatch.loops import LoopGuard
from router.dispatch.pool import InstanceFactory, InstancePool
from router.dispatch.queue import DurableQueue
from router.dispatch.registry import (
    LATEST,
    FunctionDefinition,
    async_settings,
    call_fields,
    pool_key,
    resolve,
)
from router.dispatch.routing import RouteHooks
from router.dispatch.scheduler import LAMBDA_RETRY_DELAYS_S, LAMBDA_SYSTEM_BACKOFF_S, AsyncScheduler
from router.dispatch.stats import (
    Call,
    Counters,
    DispatcherStats,
    account_stats,
    function_stats,
    publish,
    publish_state,
)
from router.dispatch.tasks import TaskSet
from router.metrics import Metrics

log = logging.getLogger(__name__)

ResultHook = Callable[[str, Call, InvocationResult], None]

__all__ = ["Call", "Dispatcher", "DispatcherStats"]


class Dispatcher:
    def __init__(
        self,
        config: Config,
        *,
        state_dir: Path | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        instance_factory: InstanceFactory | None = None,
        retry_delays_s: tuple[float, ...] = LAMBDA_RETRY_DELAYS_S,
        system_backoff_s: tuple[float, float] = LAMBDA_SYSTEM_BACKOFF_S,
        reap_interval_s: float = 1.0,
        queue: AsyncQueue | None = None,
        accounting: Accounting | None = None,
    ) -> None:
        self.config = config
        self.state_dir = Path(state_dir) if state_dir is not None else config.state_path
        self.clock: Clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self._factory = instance_factory or _invoker_factory(config, self.state_dir)
        self._reap_interval = reap_interval_s
        # Several front processes count in a shared ledger (router/dispatch/ledger.py `SharedAccounting`).
        self.accounting = accounting if accounting is not None else Accounting(config.account.concurrency)
        self.queue: AsyncQueue = queue if queue is not None else DurableQueue(self.state_dir / "queue.db")
        self.on_result: list[ResultHook] = []
        self.on_accepted: list[Callable[[AcceptedEvent], None]] = []
        self.on_throttle: list[Callable[[str, str], None]] = []  # (function, Lambda's Reason)
        self.on_change: list[Callable[[], None]] = []  # functions, limits or faults changed (`changed()`)
        self.faults = Faults(metrics=self.metrics, clock=self.clock)
        self.configure_faults(config)
        self.loops = LoopGuard(config.limits.max_loop_depth, metrics=self.metrics, clock=self.clock)
        self._defs: dict[str, FunctionDefinition] = {}
        self._pools: dict[str, InstancePool] = {}  # "name" ($LATEST) and "name:version"
        # The share of provisioned concurrency this process keeps warm; None: its accounting's share (a front
        # process keeps none: the primary serves those functions' calls).
        self.provisioned_share: Share | None = None
        # What the router's other front processes hold, by function: (calls in flight, idle, busy, launching
        # instances), added into `stats()` (router/processes.py keeps it; empty with one process).
        self.elsewhere: dict[str, tuple[int, int, int, int]] = {}
        self._draw: Callable[[], float] = random.random  # alias weights
        self._retiring: list[InstancePool] = []
        self._counters: dict[str, Counters] = {}
        self._instance_tasks = TaskSet("instances")
        self._background = TaskSet("dispatcher")
        self._sync_calls: set[asyncio.Task[InvocationResult]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the first sync call
        self._started = self._draining = self._closed = False
        self._scheduler = AsyncScheduler(
            queue=self.queue,
            accounting=self.accounting,
            clock=self.clock,
            metrics=self.metrics,
            definition=self._async_definition,
            run_attempt=self._run_attempt,
            enqueue=self._enqueue_internal,
            resolve=config.path,
            aws=self._aws_args,
            retry_delays_s=retry_delays_s,
            system_backoff_s=system_backoff_s,
        )
        self.metrics.add_refresh(self._publish)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        stored = await self.queue.open()
        for event in stored:
            self._scheduler.add(event)
        if stored:
            log.info("async queue: %d stored event(s) to run", len(stored))
        self._prepare_factory()
        await asyncio.gather(*(pool.ensure_provisioned() for pool in self._pools.values()))
        self._background.spawn(self._scheduler.run(), name="async scheduler")
        self._background.spawn(self._reap_loop(), name="idle reaper")

    async def drain(self, grace_s: float) -> None:
        """No new calls; in-flight calls get up to grace_s to finish, then are cancelled."""
        self._draining = True
        self._scheduler.stop_starting()
        if self._in_flight():
            deadline = self.clock.time() + grace_s
            settle = asyncio.ensure_future(self._settle())
            timer = asyncio.ensure_future(self._sleep_until(deadline))
            try:
                await asyncio.wait({settle, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                settle.cancel()
                timer.cancel()
        for task in list(self._sync_calls):
            task.cancel()
        await self._scheduler.cancel_running()
        if self._sync_calls:
            await asyncio.wait(list(self._sync_calls))

    async def _sleep_until(self, deadline: float) -> None:
        await self.clock.sleep(deadline - self.clock.time())

    @property
    def draining(self) -> bool:
        return self._draining

    def _in_flight(self) -> bool:
        return bool(self._sync_calls) or self._scheduler.running > 0

    async def _settle(self) -> None:
        while self._sync_calls:
            await asyncio.wait(list(self._sync_calls))
        await self._scheduler.wait_running()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.drain(0)
        await self._background.aclose()
        await asyncio.gather(*(p.aclose() for p in [*self._pools.values(), *self._retiring]))
        await self._instance_tasks.aclose()
        close_factory = getattr(self._factory, "aclose", None)
        if close_factory is not None:
            await close_factory()
        await self.queue.aclose()
        self.metrics.remove_refresh(self._publish)

    async def _reap_loop(self) -> None:
        while True:
            await self.clock.sleep(self._reap_interval)
            for pool in self._pools.values():
                pool.maintain()
            self._retiring = [p for p in self._retiring if not p.empty]

    # -- functions ------------------------------------------------------------------------------------------

    def functions(self) -> dict[str, FunctionDefinition]:
        return dict(self._defs)

    async def set_functions(self, defs: Mapping[str, FunctionDefinition]) -> None:
        wanted = {pool_key(v.name, v.version): v for d in defs.values() for v in (d, *d.versions.values())}
        removed = [key for key in self._pools if key not in wanted]
        self._defs.clear()
        self._defs.update(defs)
        self.accounting.set_reservations(
            {
                n: d.config.reserved_concurrency
                for n, d in defs.items()
                if d.config.reserved_concurrency is not None
            }
        )
        for key in removed:
            self._retire(self._pools.pop(key))
        for name, definition in wanted.items():
            pool = self._pools.get(name)
            if pool is not None and pool.definition.spec == definition.spec:
                pool.update(definition)
                continue
            if pool is not None:
                log.info("%s: new revision %s; retiring the old instances", name, definition.revision)
                self._retire(pool)
            self._pools[name] = InstancePool(definition, self._factory, self.clock, self._instance_tasks)
            self._pools[name].set_share(self._pool_share())
        if self._started and not self._closed:
            self._prepare_factory()
            await asyncio.gather(*(pool.ensure_provisioned() for pool in self._pools.values()))
        self._scheduler.wake()
        self.changed()

    def _prepare_factory(self) -> None:
        """Let the instance factory get ready for these functions (the invoker's starts its zygote)."""
        prepare = getattr(self._factory, "prepare", None)
        if prepare is not None:
            prepare([p.definition.spec for p in self._pools.values()])

    def _retire(self, pool: InstancePool) -> None:
        pool.retire()
        self._retiring.append(pool)

    def reservable(self, function: str) -> int:
        """The largest reserved concurrency `function` may be given: account.concurrency minus
        account.unreserved_min minus every other function's reservation (for PutFunctionConcurrency)."""
        account = self.config.account
        others = sum(d.config.reserved_concurrency or 0 for name, d in self._defs.items() if name != function)
        return max(0, account.concurrency - account.unreserved_min - others)

    def set_account(self, account: AccountConfig) -> None:
        """A reloaded config's account limits; calls in flight keep their slots."""
        self.config = msgspec.structs.replace(self.config, account=account)
        self.accounting.set_account_concurrency(account.concurrency)
        self._scheduler.wake()
        self.changed()

    def set_share(self, share: Share) -> None:
        """This node's part of the cluster-wide limits (calls in flight keep their slots)."""
        self.accounting.set_share(share)
        for pool in self._pools.values():
            pool.set_share(self._pool_share())
        self._scheduler.wake()
        self.changed()

    def _pool_share(self) -> Share:
        return self.provisioned_share or self.accounting.share

    def configure_faults(self, config: Config) -> None:
        """The faults of a (reloaded) config's functions and sources; run-time settings are replaced."""
        self.faults.configure(
            {n: f.faults for n, f in config.functions.items()},
            {n: s.faults for n, s in config.sources.items()},
        )
        self.changed()

    def changed(self) -> None:
        """Tell the `on_change` listeners that functions, limits or faults changed (the front processes
        catch up: router/processes.py)."""
        for listener in list(self.on_change):
            listener()

    def route_hooks(self) -> RouteHooks:
        """What routes bound to this dispatcher report to and draw from (router/dispatch/routing.py)."""
        return RouteHooks(faults=self.faults, on_accepted=self.on_accepted, clock=self.clock)

    def check(self, function: str, qualifier: str | None = None) -> FunctionDefinition:
        """The definition a call runs (for an alias: one draw of its weights); FunctionNotFound if none."""
        defn = self._defs.get(function)
        found = resolve(defn, qualifier, self._draw()) if defn is not None else None
        if found is None:
            raise FunctionNotFound(f"Function not found: {self._arn(function, qualifier)}")
        return found

    def _arn(self, function: str, qualifier: str | None = None) -> str:
        account = self.config.account
        arn = lambda_arn(function, account.region, account.account_id)
        return f"{arn}:{qualifier}" if qualifier else arn

    def _admit(self, function: str, qualifier: str | None) -> FunctionDefinition:
        if self._draining:
            raise ShuttingDown("the router is shutting down")
        return self.check(function, qualifier)

    def _aws_args(self) -> dict[str, Any]:
        return self.config.aws.client_args(self.config.account.region)

    def _async_definition(self, function: str, qualifier: str | None) -> FunctionDefinition | None:
        defn = self._defs.get(function)
        return async_settings(defn, qualifier) if defn is not None else None

    # -- synchronous calls ----------------------------------------------------------------------------------

    async def invoke(
        self,
        function: str,
        payload: bytes,
        *,
        client_context: str | None = None,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
    ) -> InvocationResult:
        target = self._admit(function, qualifier)
        trace = self.loops.admit(function, trace, source=source, payload=payload)
        try:
            slot = self.accounting.acquire(function)
        except Throttled as e:
            self.throttled(function, e.reason or "")
            raise
        call = Call(
            request_id=new_request_id(),
            payload=payload,
            client_context=client_context,
            trace_id=trace,
            function=function,
            source=source,
            started_at=self.clock.time(),
            **call_fields(target, qualifier, self._arn),
        )
        with slot:
            # The call runs in its own task so that drain can cancel it without cancelling the caller.
            loop = self._loop
            if loop is None:  # kept: asyncio.get_running_loop() is a getpid() system call each (3.11)
                loop = self._loop = asyncio.get_running_loop()
            task = loop.create_task(self._run(call))
            self._sync_calls.add(task)
            try:
                return await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if task.cancelled() and self._draining and current is not None and not current.cancelling():
                    raise ShuttingDown("the router is shutting down; the call was cancelled") from None
                raise
            finally:
                self._sync_calls.discard(task)

    async def _run(self, call: Call) -> InvocationResult:
        pool = self._pools.get(pool_key(call.function, call.version))
        if pool is None:
            raise FunctionNotFound(f"Function not found: {self._arn(call.function, call.qualifier)}")
        draw = self.faults.draw(call.function)
        result = await (pool.invoke(call) if draw is None else self._run_faulted(pool, call, draw))
        result.executed_version = call.version
        self._record(call, result)
        return result

    async def _run_faulted(self, pool: InstancePool, call: Call, draw: Draw) -> InvocationResult:
        """A call that drew an injected fault: added latency first, then the fault as the real one shows."""
        fault = Injected(
            draw.kind or "latency", call.function, call.source, self.clock.time(), call.request_id,
            call.payload, call.trace_id, call.invocation_type, call.attempt,
        )  # fmt: skip
        if draw.latency_ms:
            self.faults.injected(dataclasses.replace(fault, kind="latency"))
            await self.clock.sleep(draw.latency_ms / 1000)
        if draw.kind is None:
            result = await pool.invoke(call)
            result.fault = "latency"  # it ran; the record says it was held back first
            return result
        self.faults.injected(fault)
        if draw.kind == "throttle":
            error = self.faults.throttle(call.function)
            self.throttled(call.function, error.reason or "")
            raise error
        run = FaultRun(draw.kind, pool.definition.spec, self.config.billing, self.clock)
        return await pool.invoke(call, fault=run)

    def throttled(self, function: str, reason: str) -> None:
        """Count a throttle (here, or one a front process answered: router/processes.py)."""
        self._counter(function).throttles += 1
        self.metrics.throttles.labels(function, reason).inc()
        for hook in self.on_throttle:
            hook(function, reason)

    def record_remote(self, call: Call, result: InvocationResult) -> None:
        """A call another front process ran: counted, published and recorded here as one of ours, and
        whoever waits for capacity is told its slot is free."""
        self._record(call, result)
        for listener in self.accounting.on_release:
            listener(call.function)

    def accepted_remote(self, event: AcceptedEvent) -> None:
        """An event another front process's route accepted: announced here as one of ours (the record)."""
        for hook in list(self.on_accepted):
            hook(event)

    def _record(self, call: Call, result: InvocationResult) -> None:
        counters = self._counter(call.function)
        counters.record(result)
        publish(self.metrics, call, result, counters)
        for hook in list(self.on_result):
            try:
                hook(call.function, call, result)
            except Exception:
                log.exception("%s: on_result callback failed", call.function)

    def _counter(self, function: str) -> Counters:
        counters = self._counters.get(function)
        if counters is None:
            counters = self._counters[function] = Counters()
        return counters

    # -- asynchronous calls ---------------------------------------------------------------------------------

    async def enqueue(
        self,
        function: str,
        payload: bytes,
        *,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
        delay_s: float = 0.0,
    ) -> str:
        self._admit(function, qualifier)
        return await self._enqueue_internal(
            function, payload, trace=trace, source=source, qualifier=qualifier, delay_s=delay_s
        )

    async def _enqueue_internal(
        self,
        function: str,
        payload: bytes,
        *,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
        delay_s: float = 0.0,
    ) -> str:
        """enqueue without the drain check: destinations of calls that finish during the drain still land."""
        self.check(function, qualifier)
        if qualifier == LATEST:
            qualifier = None
        if not self.queue.is_open:
            raise QueueUnavailable("the async queue is not open")
        try:
            trace = self.loops.admit(function, trace, invocation_type="Event", source=source, payload=payload)
        except LoopDetected as stopped:
            return await self.loops.give_up(
                function,
                payload,
                stopped,
                self._async_definition(function, qualifier),
                source=source,
                resolve=self.config.path,
                enqueue=self._enqueue_internal,
                aws=self._aws_args(),
            )
        now = self.clock.time()
        event = QueuedEvent(
            id=new_request_id(),
            function=function,
            enqueued_at=now,
            not_before=now + delay_s,
            trace=trace,
            source=source,
            qualifier=qualifier,
        )
        await self.queue.put(event, payload)
        return event.id

    async def _run_attempt(self, function: str, event: QueuedEvent, payload: bytes) -> InvocationResult:
        target = self.check(function, event.qualifier)
        call = Call(
            request_id=event.id,
            payload=payload,
            trace_id=event.trace,
            function=function,
            invocation_type="Event",
            source=event.source,
            attempt=event.attempts + 1,
            started_at=self.clock.time(),
            **call_fields(target, event.qualifier, self._arn),
        )
        return await self._run(call)

    # -- stats ----------------------------------------------------------------------------------------------

    async def settled(self, request_ids: Sequence[str]) -> None:
        """Return once these asynchronous invocations have left the queue: run to their end (success, or
        retries exhausted and sent to a destination) or dropped. Unknown ids count as settled."""
        for request_id in request_ids:
            await self.queue.settled(request_id)

    def stats(self) -> DispatcherStats:
        now = self.clock.time()
        names = sorted({*self._defs, *self.queue.functions()})
        functions = {
            name: function_stats(
                name,
                self._pools.get(name),
                self._counter(name),
                self.accounting,
                self.queue,
                now,
                self._defs.get(name),
            )
            for name in names
        }
        for name, (in_use, idle, busy, launching) in self.elsewhere.items():
            found = functions.get(name)
            if found is not None:
                found.in_use += in_use
                found.idle += idle
                found.busy += busy
                found.launching += launching
        return DispatcherStats(account=account_stats(self.accounting, self.queue, now), functions=functions)

    def holdings(self) -> dict[str, tuple[int, int, int, int]]:
        """This process's own (calls in flight, idle, busy, launching instances) by function, where any is
        not zero (what a front process reports to the primary)."""
        held = {}
        for name in self._defs:
            pool = self._pools.get(name)
            counts = (
                self.accounting.in_use(name),
                pool.idle if pool else 0,
                pool.busy if pool else 0,
                pool.launching if pool else 0,
            )
            if any(counts):
                held[name] = counts
        return held

    def _publish(self) -> None:
        publish_state(self.metrics, self.stats())


def _invoker_factory(config: Config, state_dir: Path) -> InstanceFactory:
    # Imported here: the invoker (and its zygote) only when real instances are wanted, not in unit tests.
    from router.invoker.remote import RemoteFactory  # functions with a `target:` run elsewhere

    inner: InstanceFactory
    if config.invoker.workers > 0:
        from router.invoker.workers import WorkerFactory

        inner = WorkerFactory(config, config.invoker.workers)
    else:
        from router.invoker.factory import InvokerFactory

        inner = InvokerFactory(config, state_dir)
    return RemoteFactory(inner, config.billing)
