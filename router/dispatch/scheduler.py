"""Runs stored asynchronous events as capacity allows: retries, maximum event age, destinations.

Contract (the semantics of Lambda's asynchronous invocation, section 1.4 of lambda-semantics.md):

* An event runs when its function has a free concurrency slot. Functions with waiting events take turns,
  so one function's backlog does not starve another's. An event that cannot get a slot waits in the queue
  and starts the moment a slot frees (the scheduler wakes on every release); Lambda polls with a 1 s .. 5 min
  backoff instead, because it cannot know when capacity frees; the observable result is the same.
* A function error (the function ran and failed, timed out, crashed, or failed init) is retried
  `async.max_retries` times (0-2), after `retry_delays_s` (Lambda: 1 min, then 2 min); then the record goes
  to `on_failure` with condition RetriesExhausted.
* A system error (an instance could not be launched) is retried with exponential backoff from
  `system_backoff_s[0]` to `system_backoff_s[1]` (Lambda: 1 s .. 5 min), without counting as an attempt.
* An event older than `async.max_event_age_s` is not run again: its record goes to `on_failure` with
  condition EventAgeExceeded. With `reserved_concurrency: 0` an event goes to `on_failure` at once.
* Giving up also sends the original event to the function's `dead_letter` queue or topic (Lambda's
  DeadLetterConfig), with the RequestID, ErrorCode and ErrorMessage attributes, besides `on_failure`.
* An event invoked with a qualifier (a version or an alias) follows that qualifier's settings:
  `definition(function, qualifier)` gives the definition whose `config.async_` applies.
* Success sends the record to `on_success`, if any. The event is deleted from the store only after its
  outcome is settled, so an event in flight when the router dies runs again after the restart.
* Events of a function that is not defined (yet: API-deployed functions are registered after start) wait;
  they are dropped only once older than the default maximum event age.
* `stop_starting()` then `cancel_running()` is the drain: nothing new starts, and what is cancelled stays
  stored and runs again on the next start.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from router.config import AsyncConfig
from router.core.backends import AsyncQueue, QueuedEvent
from router.core.clock import Clock
from router.core.errors import REASON_RESERVED, SERVICE_EXCEPTION, TOO_MANY_REQUESTS, DispatchError
from router.core.results import InvocationResult
from router.core.retry import delay_after
from router.dispatch import destinations
from router.dispatch.concurrency import Accounting, Slot
from router.dispatch.registry import FunctionDefinition
from router.dispatch.tasks import TaskSet
from router.metrics import Metrics

log = logging.getLogger(__name__)

LAMBDA_RETRY_DELAYS_S = (60.0, 120.0)
LAMBDA_SYSTEM_BACKOFF_S = (1.0, 300.0)
DEFAULT_MAX_EVENT_AGE_S = AsyncConfig().max_event_age_s

# (function, event, payload) -> the result of one attempt; raises DispatchError when it could not run.
RunAttempt = Callable[[str, QueuedEvent, bytes], Awaitable[InvocationResult]]
# (function, qualifier) -> the definition whose settings an event of that qualifier follows.
Definition = Callable[[str, str | None], FunctionDefinition | None]


class AsyncScheduler:
    def __init__(
        self,
        *,
        queue: AsyncQueue,
        accounting: Accounting,
        clock: Clock,
        metrics: Metrics,
        definition: Definition,
        run_attempt: RunAttempt,
        enqueue: destinations.Enqueue,
        resolve: Callable[[str], Path],
        aws: Callable[[], dict[str, Any]] = dict,
        retry_delays_s: tuple[float, ...] = LAMBDA_RETRY_DELAYS_S,
        system_backoff_s: tuple[float, float] = LAMBDA_SYSTEM_BACKOFF_S,
    ) -> None:
        self._queue = queue
        self._accounting = accounting
        self._clock = clock
        self._metrics = metrics
        self._definition = definition
        self._run_attempt = run_attempt
        self._enqueue = enqueue
        self._resolve = resolve
        self._aws = aws  # aiobotocore client arguments for SQS/SNS/EventBridge destinations
        self._retry_delays = retry_delays_s
        self._backoff = system_backoff_s
        self._ready: dict[str, deque[QueuedEvent]] = {}
        self._delayed: list[tuple[float, int, QueuedEvent]] = []
        self._served: dict[str, int] = {}  # function -> when it last started an event (for taking turns)
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._tasks = TaskSet("async events")
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._stopping = False
        queue.on_stored = self.add
        accounting.on_release.append(self._released)

    # -- feeding --------------------------------------------------------------------------------------------

    def add(self, event: QueuedEvent) -> None:
        """A stored event to run at event.not_before."""
        if event.not_before <= self._clock.time():
            self._ready.setdefault(event.function, deque()).append(event)
        else:
            heapq.heappush(self._delayed, (event.not_before, next(self._seq), event))
        self._wake.set()

    def _released(self, _function: str) -> None:
        if self._ready:  # only events waiting for capacity care; sync calls release slots all the time
            self._wake.set()

    def wake(self) -> None:
        """Reconsider every waiting event (functions or limits changed)."""
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

    # -- the loop -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self._clock.time()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, event = heapq.heappop(self._delayed)
                self._ready.setdefault(event.function, deque()).append(event)
            self._start_ready(now)
            await self._wait(self._delayed[0][0] if self._delayed else None)

    async def _wait(self, until: float | None) -> None:
        """Until woken, or until the wall-clock time `until`."""
        if self._wake.is_set():
            return
        if until is None:
            await self._wake.wait()
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self._sleep_until(until))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def _sleep_until(self, until: float) -> None:
        # The delay is taken when the sleep starts, not when it was planned: time may have moved in between.
        await self._clock.sleep(until - self._clock.time())

    def _start_ready(self, now: float) -> None:
        """Start events one at a time, always from the waiting function served longest ago."""
        while self._ready and not self._stopping:
            for function in sorted(self._ready, key=lambda f: self._served.get(f, -1)):
                events = self._ready[function]
                started = self._start_one(function, events, now)
                if not events:
                    del self._ready[function]
                if started:
                    self._served[function] = next(self._seq)
                    break
            else:
                return  # no waiting function can start one now

    def _start_one(self, function: str, events: deque[QueuedEvent], now: float) -> bool:
        """Settle or start the event at the head of `events`; False when the function must wait."""
        event = events[0]
        definition = self._settings(event)
        max_age = definition.config.async_.max_event_age_s if definition else DEFAULT_MAX_EVENT_AGE_S
        if now - event.enqueued_at >= max_age:
            events.popleft()
            self._spawn(event, self._give_up(event, destinations.CONDITION_EVENT_AGE_EXCEEDED))
            return True
        if definition is None:
            return False
        if definition.config.reserved_concurrency == 0:
            events.popleft()
            self._spawn(event, self._give_up(event, destinations.CONDITION_RETRIES_EXHAUSTED, throttled=True))
            return True
        slot = self._accounting.try_acquire(function)
        if slot is None:
            return False
        events.popleft()
        self._spawn(event, self._attempt(event, slot))
        return True

    def _settings(self, event: QueuedEvent) -> FunctionDefinition | None:
        return self._definition(event.function, event.qualifier)

    def _spawn(self, event: QueuedEvent, coro: Any) -> None:
        task = self._tasks.spawn(coro, name=f"async {event.function} {event.id}")
        self._running[event.id] = task
        task.add_done_callback(lambda t: self._finished(event.id, t))

    def _finished(self, event_id: str, task: asyncio.Task[Any]) -> None:
        # A retry of the same event may already run under the same id: forget only this attempt.
        if self._running.get(event_id) is task:
            del self._running[event_id]

    # -- one attempt ----------------------------------------------------------------------------------------

    async def _attempt(self, event: QueuedEvent, slot: Slot) -> None:
        with slot:
            payload = await self._queue.payload(event.id)
            if payload is None:
                return  # deleted meanwhile
            try:
                result: InvocationResult | DispatchError = await self._run_attempt(
                    event.function, event, payload
                )
            except DispatchError as e:
                result = e
        match result:
            case DispatchError() as error:
                await self._retry_system_error(event, error)
            case InvocationResult() if result.ok:
                event.attempts += 1
                await self._succeed(event, payload, result)
            case InvocationResult():
                event.attempts += 1
                await self._function_failed(event, payload, result)

    async def _succeed(self, event: QueuedEvent, payload: bytes, result: InvocationResult) -> None:
        definition = self._settings(event)
        target = definition.config.async_.on_success if definition else None
        if target is not None:
            await self._send(event, target, destinations.CONDITION_SUCCESS, payload, result=result)
        await self._queue.delete(event)

    async def _function_failed(self, event: QueuedEvent, payload: bytes, result: InvocationResult) -> None:
        definition = self._settings(event)
        max_retries = definition.config.async_.max_retries if definition else 0
        if event.attempts > max_retries:
            await self._give_up(
                event, destinations.CONDITION_RETRIES_EXHAUSTED, payload=payload, result=result
            )
            return
        delay = self._retry_delays[min(event.attempts, len(self._retry_delays)) - 1]
        self._metrics.async_retries.labels(event.function, "function_error").inc()
        log.info(
            "%s: async event %s failed (%s); retry in %g s",
            event.function,
            event.id,
            result.error_type,
            delay,
        )
        await self._reschedule(event, delay, definition)

    async def _retry_system_error(self, event: QueuedEvent, error: DispatchError) -> None:
        if self._stopping:
            return  # stays stored; runs again after the restart
        event.system_errors += 1
        delay = delay_after(event.system_errors, *self._backoff)
        self._metrics.async_retries.labels(event.function, "system_error").inc()
        log.warning(
            "%s: async event %s could not run (%s); retry in %g s", event.function, event.id, error, delay
        )
        await self._reschedule(event, delay, self._settings(event))

    async def _reschedule(
        self, event: QueuedEvent, delay: float, definition: FunctionDefinition | None
    ) -> None:
        max_age = definition.config.async_.max_event_age_s if definition else DEFAULT_MAX_EVENT_AGE_S
        # Never wait past the event's expiry: it is then given up at its maximum age, not later.
        event.not_before = min(self._clock.time() + delay, event.enqueued_at + max_age)
        await self._queue.update(event)
        if not self._queue.redelivers_updates:  # a shared queue hands it back where it is consumed
            self.add(event)

    # -- giving up ------------------------------------------------------------------------------------------

    async def _give_up(
        self,
        event: QueuedEvent,
        condition: str,
        *,
        payload: bytes | None = None,
        result: InvocationResult | None = None,
        throttled: bool = False,
    ) -> None:
        if payload is None:
            payload = await self._queue.payload(event.id)
            if payload is None:
                return
        definition = self._settings(event)
        target = definition.config.async_.on_failure if definition else None
        dead_letter = definition.config.async_.dead_letter if definition else None
        if dead_letter is not None:
            await self._dead_letter(event, dead_letter, payload, result=result, throttled=throttled)
        if target is not None:
            await self._send(event, target, condition, payload, result=result, throttled=throttled)
        elif dead_letter is None:
            self._metrics.async_dropped.labels(event.function, condition).inc()
            log.warning(
                "%s: async event %s dropped: %s, no on_failure destination",
                event.function,
                event.id,
                condition,
            )
        await self._queue.delete(event)

    async def _send(
        self,
        event: QueuedEvent,
        target: Any,
        condition: str,
        payload: bytes,
        *,
        result: InvocationResult | None,
        throttled: bool = False,
    ) -> None:
        definition = self._settings(event)
        arn = definition.spec.arn if definition else f"function:{event.function}"
        if throttled:
            status, error = (
                429,
                {"errorType": TOO_MANY_REQUESTS, "errorMessage": f"Reason: {REASON_RESERVED}"},
            )
        else:
            status, error = (
                500,
                {"errorType": SERVICE_EXCEPTION, "errorMessage": f"{condition} before a run"},
            )
        record = destinations.invocation_record(
            request_id=event.id,
            function_arn=arn,
            condition=condition,
            invoke_count=event.attempts,
            request_payload=payload,
            timestamp=self._clock.time(),
            result=result,
            error_status=status,
            error_payload=error,
            executed_version=result.executed_version if result is not None else _version(definition),
        )
        try:
            where = await destinations.deliver(
                target,
                record,
                resolve=self._resolve,
                enqueue=self._enqueue,
                trace=event.trace,
                aws=self._aws(),
            )
        except destinations.DestinationError as e:
            self._metrics.destination_errors.labels(event.function).inc()
            log.error(
                "%s: async event %s: destination failed, event dropped: %s", event.function, event.id, e
            )
            return
        self._metrics.async_destinations.labels(event.function, condition, destinations.kind(target)).inc()
        log.info("%s: async event %s: %s record sent to %s", event.function, event.id, condition, where)

    async def _dead_letter(
        self,
        event: QueuedEvent,
        target: Any,
        payload: bytes,
        *,
        result: InvocationResult | None,
        throttled: bool,
    ) -> None:
        """The original event to the dead-letter queue or topic, with Lambda's three attributes."""
        if result is not None:
            code, message = 200, destinations.error_message(result.payload)
        else:
            code, message = (429, f"Reason: {REASON_RESERVED}") if throttled else (500, "Event expired")
        try:
            where = await destinations.deliver_dead_letter(
                target, payload, request_id=event.id, error_code=code, error_message=message, aws=self._aws()
            )
        except destinations.DestinationError as e:
            self._metrics.destination_errors.labels(event.function).inc()
            log.error("%s: async event %s: dead-letter delivery failed: %s", event.function, event.id, e)
            return
        self._metrics.async_destinations.labels(event.function, "DeadLetter", destinations.kind(target)).inc()
        log.info("%s: async event %s sent to the dead-letter target %s", event.function, event.id, where)

    # -- drain ----------------------------------------------------------------------------------------------

    def stop_starting(self) -> None:
        self._stopping = True
        self._wake.set()

    async def wait_running(self) -> None:
        await self._tasks.wait()

    async def cancel_running(self) -> None:
        await self._tasks.aclose()


def _version(definition: FunctionDefinition | None) -> str:
    return definition.version if definition is not None else "$LATEST"
