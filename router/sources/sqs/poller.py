"""One SQS event source mapping: a route's poller, with Lambda's batching, deletion and scaling rules.

`RoutePoller(ctx, route, queue, settings).run(started)` reads the queue until cancelled:

* **Batches.** A batch is gathered by long polls (10 messages each at most) until it holds `batch_size`
  messages, the batching window (started by the first message) ends, or the payload would pass 6 MB
  (the message that would pass it starts the next batch). With a window of 0 the first poll that returns
  anything makes the batch. Messages the route's filter does not take are deleted at once, as Lambda
  deletes them, and do not count towards the batch.
* **Concurrency.** Batches are delivered in parallel, up to a limit that starts at 5 (Lambda's starting
  point), grows by one whenever a full batch is gathered while every slot is busy, and shrinks by one when
  the function is throttled; never above `max_concurrency` (ScalingConfig.MaximumConcurrency; default
  1000) nor below 1. A batch is gathered only when a slot is free, so messages are never held invisible
  waiting for a slot.
* **Outcome.** The batch is invoked synchronously. Success deletes every message. A function error
  deletes none: the messages stay invisible until the queue's visibility timeout ends, and then SQS
  delivers them again (and moves them to the queue's dead-letter queue after its maxReceiveCount: SQS's
  redrive policy, not the router, decides). With `report_batch_item_failures`, a partial batch response
  deletes all but the reported messages (router/sources/stream/batch.py reads it, as for streams: an
  identifier that names no message of the batch fails the whole batch). On a FIFO queue, a message that
  failed keeps the later messages of its group in the batch too, so a group is never delivered out of order.
* **Not the function's doing.** A dispatch error (throttled, shutting down) or an unexpected exception
  around the call: back off and call again with the same batch, as long as the batch's visibility timeout
  has not ended; after that the messages are visible again and another poll delivers them. A recursive loop
  (router/dispatch/loops.py) is not retried: the messages go to the queue's dead-letter queue when it has
  one, and are deleted.
* **Stop.** Cancelled, the poller makes the messages it holds but has not delivered visible again, gives
  batches in flight `stop_grace_s` to finish (and delete what succeeded), then cancels them; a cancelled
  batch's messages return after their visibility timeout (at-least-once: a duplicate, never a loss).

The router does not extend a batch's visibility timeout while the function runs, as Lambda does not: set
the queue's visibility timeout above the function's timeout (AWS recommends six times).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from router.core.errors import DispatchError, LoopDetected, Throttled
from router.core.retry import Backoff
from router.shapes import sqs as shape
from router.sources.sqs.queue import MAX_PER_CALL, client_errors
from router.sources.stream.batch import reported_failures
from router.sources.stream.records import MappingSettings

if TYPE_CHECKING:
    from router.core.envelope import Envelope
    from router.core.ports import RoutePort, SourceContext
    from router.core.results import InvocationResult
    from router.sources.sqs.queue import Queue

log = logging.getLogger("router.sources.sqs")

START_CONCURRENCY = 5
MAX_CONCURRENCY = 1000
IN_FLIGHT_WAIT_S = 1
RECORD_OVERHEAD = 700  # bytes of JSON around one message's body in the event


@dataclass(eq=False)
class Held:
    """A received message the poller holds: the SQS entry, its envelope, when it was received."""

    message: dict[str, Any]
    envelope: Envelope
    received: float  # monotonic
    size: int

    @property
    def id(self) -> str:
        return str(self.message["MessageId"])

    @property
    def group(self) -> str | None:
        return self.message.get("Attributes", {}).get("MessageGroupId")


@dataclass
class PollerStats:
    delivered: int = 0
    failed: int = 0
    filtered: int = 0
    throttled: int = 0
    in_flight: int = 0
    limit: int = START_CONCURRENCY
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class RoutePoller:
    def __init__(
        self,
        ctx: SourceContext,
        route: RoutePort,
        queue: Queue,
        *,
        max_concurrency: int | None,
        wait_time_s: int,
        stop_grace_s: float,
    ) -> None:
        self.ctx = ctx
        self.route = route
        self.queue = queue
        self.settings = MappingSettings.for_route(route)
        self.cap = max_concurrency or MAX_CONCURRENCY
        self.wait_time_s = wait_time_s
        self.stop_grace_s = stop_grace_s
        self.stats = PollerStats(limit=min(START_CONCURRENCY, self.cap))
        self.freed = asyncio.Event()
        self.carry: list[Held] = []  # received, held over for the next batch
        self.gathering: list[Held] = []  # the batch being gathered
        self.filtering = route.settings.filter is not None

    def status(self) -> dict[str, object]:
        """Counters for the console (published in the source's SourceStatus while the poller runs)."""
        s = self.stats
        return {
            "function": self.route.function, "delivered": s.delivered, "failed": s.failed,
            "filtered": s.filtered, "throttled": s.throttled, "in_flight": s.in_flight, "limit": s.limit,
        }  # fmt: skip

    async def run(self, started: Callable[[], None]) -> None:
        key = self.ctx.status.publish(self.route.function, self.status)
        started()
        try:
            while True:
                await self._free_slot()
                batch = await self._gather()
                if batch:
                    self._start(batch)
        finally:
            self.ctx.status.withdraw(key)
            await asyncio.shield(self._stop())

    # -- gathering --------------------------------------------------------------------------------------

    async def _free_slot(self) -> None:
        while self.stats.in_flight >= self.stats.limit:
            self.freed.clear()
            await self.freed.wait()

    async def _gather(self) -> list[Held]:
        s, clock = self.settings, self.ctx.clock
        batch, self.carry = self.carry, []
        self.gathering = batch
        size = sum(h.size for h in batch)
        backoff = Backoff(0.5, 30.0)
        deadline = clock.monotonic() + s.window_s if batch else None
        while len(batch) < s.batch_size and size < s.max_bytes:
            remaining = None if deadline is None else deadline - clock.monotonic()
            if remaining is not None and (remaining <= 0 or s.window_s == 0):
                break
            wait = self._wait_s() if remaining is None else min(self._wait_s(), int(remaining))
            try:
                messages = await self.queue.receive(min(MAX_PER_CALL, s.batch_size - len(batch)), wait)
            except client_errors() as e:
                log.warning("sqs receive failed: %s", e, extra={"fields": self._fields()})
                await backoff.sleep(clock)
                continue
            backoff.reset()
            if not messages:
                if remaining is not None and remaining < 1:
                    await clock.sleep(min(remaining, 0.05))  # a window under a second: short polls
                continue
            taken = await self._take(messages)
            for h in taken:
                if size + h.size > s.max_bytes and batch:
                    self.carry.append(h)
                else:
                    batch.append(h)
                    size += h.size
            if batch and deadline is None:
                deadline = clock.monotonic() + s.window_s
            if self.carry:
                break
        if len(batch) >= s.batch_size and self.stats.in_flight + 1 >= self.stats.limit:
            self.stats.limit = min(self.cap, self.stats.limit + 1)  # busy and full: one more batch at once
        self.gathering = []
        return batch

    def _wait_s(self) -> int:
        """The long-poll wait: shorter while batches are in flight, since some SQS services (moto) do not end
        a long poll when a FIFO group's in-flight message is deleted and the group's next one is free."""
        return self.wait_time_s if self.stats.in_flight == 0 else min(self.wait_time_s, IN_FLIGHT_WAIT_S)

    async def _take(self, messages: list[dict[str, Any]]) -> list[Held]:
        """Held messages the route takes; the others (filtered out) are deleted now, as Lambda does."""
        now = self.ctx.clock.monotonic()
        held, dropped = [], []
        for m in messages:
            envelope = shape.envelope(
                shape.from_message(m, queue_arn=self.queue.arn), source_name=self.ctx.name
            )
            if self.filtering and not self.route.matches(envelope):
                dropped.append(m)
                continue
            size = RECORD_OVERHEAD + len(m.get("Body", "")) + len(m.get("ReceiptHandle", ""))
            held.append(Held(m, envelope, now, size))
        if dropped:
            self.stats.filtered += len(dropped)
            await self._delete(dropped)
        return held

    # -- delivering -------------------------------------------------------------------------------------

    def _start(self, batch: list[Held]) -> None:
        self.stats.in_flight += 1
        task = asyncio.ensure_future(self._deliver(batch))
        self.stats.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.stats.tasks.discard(task)
        self.stats.in_flight -= 1
        self.freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "sqs batch failed unexpectedly", exc_info=task.exception(), extra={"fields": self._fields()}
            )

    async def _deliver(self, batch: list[Held]) -> None:
        payload = self.route.render([h.envelope for h in batch])
        deadline = min(h.received for h in batch) + self.queue.visibility_timeout_s
        try:
            result = await self._invoke(payload, batch, deadline)
        except LoopDetected:
            await self._loop_detected(batch)
            return
        if result is None:
            return  # the visibility timeout ended first: SQS delivers the messages again
        failed = self._failed(result, batch)
        done = [h.message for h in batch if h.id not in failed]
        self.stats.delivered += len(done)
        self.stats.failed += len(failed)
        if done:
            await self._delete(done)

    async def _invoke(self, payload: bytes, batch: list[Held], deadline: float) -> InvocationResult | None:
        """The function's result, calling again after a dispatch error; None once the visibility timeout of
        the batch has ended (its messages are visible again, so no one else is kept from them)."""
        clock = self.ctx.clock
        backoff = Backoff(self.settings.throttle_delay_s, self.settings.throttle_delay_max_s)
        while True:
            try:
                return await self.route.invoke(payload, trace=batch[0].envelope.trace)
            except LoopDetected:
                raise
            except DispatchError as e:
                self.stats.throttled += 1
                if isinstance(e, Throttled):
                    self.stats.limit = max(1, self.stats.limit - 1)
            except Exception:  # never drop a batch over a failure that is not the function's
                log.exception(
                    "sqs batch invocation failed unexpectedly; retrying", extra={"fields": self._fields()}
                )
            delay = backoff.next()
            if clock.monotonic() + delay >= deadline:
                log.warning(
                    "sqs batch not dispatched within the visibility timeout; SQS delivers it again",
                    extra={"fields": {**self._fields(), "messages": len(batch)}},
                )
                return None
            await clock.sleep(delay)

    def _failed(self, result: InvocationResult, batch: list[Held]) -> set[str]:
        """The ids of the messages to keep (not delete)."""
        ids = [h.id for h in batch]
        if not result.ok:
            return set(ids)
        if not self.settings.report_batch_item_failures:
            return set()
        reported = reported_failures(result.payload)
        if reported is None:
            return set()
        if any(i not in ids for i in reported):
            return set(ids)  # an identifier that names no message of the batch fails it whole
        failed = set(reported)
        if self.queue.fifo:
            blocked: set[str | None] = set()
            for h in batch:
                if h.id in failed:
                    blocked.add(h.group)
                elif h.group in blocked:
                    failed.add(h.id)  # keeps its group in order behind the failed message
        return failed

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        backoff = Backoff(0.1, 2.0)
        for _ in range(4):
            try:
                await self.queue.delete(messages)
                return
            except client_errors() as e:
                log.warning("sqs delete failed: %s", e, extra={"fields": self._fields()})
                await backoff.sleep(self.ctx.clock)
        log.error(
            "sqs messages not deleted; they are delivered again after their visibility timeout",
            extra={"fields": {**self._fields(), "messages": len(messages)}},
        )

    async def _loop_detected(self, batch: list[Held]) -> None:
        messages = [h.message for h in batch]
        moved = False
        with contextlib.suppress(*client_errors()):
            moved = await self.queue.dead_letter(messages)
        log.warning(
            "recursive loop detected: sqs messages not delivered",
            extra={"fields": {**self._fields(), "messages": len(batch), "dead_lettered": moved}},
        )
        await self._delete(messages)

    # -- stopping ---------------------------------------------------------------------------------------

    async def _stop(self) -> None:
        held, self.carry, self.gathering = [*self.gathering, *self.carry], [], []
        if held:
            await self.queue.release([h.message for h in held])
        tasks = set(self.stats.tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.stop_grace_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _fields(self) -> dict[str, Any]:
        return {"source": self.ctx.name, "function": self.route.function, "queue": self.queue.arn}
