"""Loop protection: an invocation past `limits.max_loop_depth` in one chain of events is not run.

Every call the dispatcher takes (synchronous invoke, asynchronous enqueue, destination deliveries) passes the
trace the event arrived with, or None for an event from outside. `LoopGuard.admit(function, incoming)` makes
the invocation's own trace (router/trace.py: one hop deeper than `incoming`) and returns its header; when
that invocation would be deeper than `max_depth` it instead logs one line, counts it in
`router_loops_stopped_total{function, invocation_type}` and raises `LoopDetected` (Lambda's
RecursiveInvocationException). So with the default 16, a function that triggers itself runs 16 times in a
chain and the 17th event is stopped, as Lambda stops a recursive loop after about 16 invocations.

What happens to the stopped event depends on how it came:

* synchronous (Invoke API RequestResponse, the HTTP gateway, stream batches): the caller gets the error;
* asynchronous (`give_up`): the event was accepted (the source acknowledges it, Invoke answers 202), and
  Lambda's invocation record, condition `RecursiveLoopDetected`, goes to the function's `async.on_failure`
  destination, or is dropped (logged) when it has none. A record for a *function* destination would be the
  next hop of the same chain, so that function is stopped as well; a stopped destination delivery is logged
  and dropped, never forwarded again, so nothing can loop through destinations.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.core import trace as traces
from router.core.errors import CONDITION_RECURSIVE_LOOP, RECURSIVE_INVOCATION, LoopDetected

if TYPE_CHECKING:
    from router.core.clock import Clock
    from router.dispatch.destinations import Enqueue
    from router.dispatch.registry import FunctionDefinition
    from router.metrics import Metrics

log = logging.getLogger("router.dispatch.loops")

DESTINATION_SOURCE = "destination"  # the `source` of destination deliveries (router/dispatch/destinations.py)


@dataclass(frozen=True)
class StoppedCall:
    """An invocation that was not run because of its depth (for observers such as the inspection store)."""

    function: str
    invocation_type: str  # RequestResponse | Event
    source: str | None
    trace: str
    depth: int
    payload: bytes
    time: float


StopHook = Callable[[StoppedCall], None]


class LoopGuard:
    def __init__(self, max_depth: int, *, metrics: Metrics | None = None, clock: Clock | None = None) -> None:
        self.max_depth = max_depth
        self.clock = clock
        self.on_stop: list[StopHook] = []
        self._counter = (
            metrics.counter(
                "router_loops_stopped_total",
                "Invocations not run because their chain of events passed limits.max_loop_depth",
                ("function", "invocation_type"),
            )
            if metrics is not None
            else None
        )

    def admit(
        self,
        function: str,
        incoming: str | None,
        *,
        invocation_type: str = "RequestResponse",
        source: str | None = None,
        payload: bytes = b"",
    ) -> str:
        """The trace header of the invocation `incoming` causes; raises LoopDetected past the depth."""
        trace = traces.next_hop(incoming)
        if trace.depth <= self.max_depth:
            return trace.header()
        header = trace.header()
        log.warning(
            f"recursive loop stopped: {function} not invoked at depth {trace.depth} "
            f"(limits.max_loop_depth is {self.max_depth})",
            extra={
                "fields": {
                    "function": function,
                    "depth": trace.depth,
                    "max_loop_depth": self.max_depth,
                    "invocation_type": invocation_type,
                    "source": source,
                    "trace": header,
                }
            },
        )
        if self._counter is not None:
            self._counter.labels(function, invocation_type).inc()
        self._notify(
            StoppedCall(function, invocation_type, source, header, trace.depth, payload, self._now())
        )
        error = LoopDetected(
            f"{function} was invoked at depth {trace.depth} of one chain of events, past "
            f"limits.max_loop_depth {self.max_depth}: recursive loop stopped"
        )
        error.trace, error.depth = header, trace.depth
        raise error

    def _now(self) -> float:
        return self.clock.time() if self.clock is not None else time.time()

    def _notify(self, stopped: StoppedCall) -> None:
        for hook in list(self.on_stop):
            try:
                hook(stopped)
            except Exception:
                log.exception("%s: loop on_stop callback failed", stopped.function)

    async def give_up(
        self,
        function: str,
        payload: bytes,
        error: LoopDetected,
        definition: FunctionDefinition | None,
        *,
        source: str | None,
        resolve: Callable[[str], Path],
        enqueue: Enqueue,
        aws: dict[str, Any] | None = None,
    ) -> str:
        """An asynchronous event stopped by `admit`: its record to on_failure; returns a request id."""
        from router.dispatch import destinations

        request_id = str(uuid.uuid4())
        target = definition.config.async_.on_failure if definition is not None else None
        if source == DESTINATION_SOURCE or target is None:
            why = "it was a destination delivery" if source == DESTINATION_SOURCE else "no async.on_failure"
            log.warning(f"{function}: loop-stopped event {request_id} dropped: {why}")
            return request_id
        record = loop_record(request_id, function, payload, error, definition, self._now())
        try:
            where = await destinations.deliver(
                target, record, resolve=resolve, enqueue=enqueue, trace=error.trace, aws=aws
            )
        except destinations.DestinationError as e:
            log.error(f"{function}: loop-stopped event {request_id}: destination failed, event dropped: {e}")
            return request_id
        log.info(
            f"{function}: loop-stopped event {request_id}: {CONDITION_RECURSIVE_LOOP} record sent to {where}"
        )
        return request_id


def loop_record(
    request_id: str,
    function: str,
    payload: bytes,
    error: LoopDetected,
    definition: FunctionDefinition | None,
    now: float,
) -> dict[str, Any]:
    from router.dispatch.destinations import invocation_record

    arn = definition.spec.arn if definition is not None else f"function:{function}"
    return invocation_record(
        request_id=request_id,
        function_arn=arn,
        condition=CONDITION_RECURSIVE_LOOP,
        invoke_count=0,
        request_payload=payload,
        timestamp=now,
        error_status=LoopDetected.status,
        error_payload={
            "errorType": RECURSIVE_INVOCATION,
            "errorMessage": error.message,
            "trace": error.trace,
        },
    )
