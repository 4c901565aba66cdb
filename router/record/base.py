"""What every InvocationRecord implementation shares: the hooks it attaches, the cursor, waiting.

`RecordBase` turns what the dispatcher reports into `Invocation`s and `AcceptedEvent`s
(router/core/backends.py) and hands them to the implementation's `_add` / `_accept`, which must not wait
(they run on the dispatcher's hot path). It keeps the cursor (`seq`), wakes readers blocked in `since` or
`wait` when something is recorded, and builds both on the implementation's `recent`.

Hooks, subscribed by `attach(dispatcher)`:

* `record_result(function, call, result)` (`Dispatcher.on_result`): every finished invocation; an injected
  fault is marked by `result.fault`.
* `record_stopped(stopped)` (the loop guard's `on_stop`): outcome "loop-stopped", not run.
* `record_injected(injected)` (the fault injector's `on_inject`): an injected throttle is recorded as an
  invocation with outcome "throttled" (it did not run); other faults are marked where they show.
* `record_accepted(event)` (`Dispatcher.on_accepted`, fed by the routes): an event a route accepted.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from router.core.backends import AcceptedEvent, Invocation, Predicate
from router.core.errors import RECURSIVE_INVOCATION, ROUTER_THROTTLED
from router.record.views import ERROR, LOOP_STOPPED, SUCCESS, THROTTLED, view

PAGE = 1000  # invocations `recent` returns at most when asked without a limit (the oldest after the cursor)

if TYPE_CHECKING:
    from router.core.results import InvocationResult
    from router.dispatch.dispatcher import Dispatcher
    from router.dispatch.faults import Injected
    from router.dispatch.loops import StoppedCall
    from router.dispatch.stats import Call


class RecordBase:
    def __init__(self, *, log_bytes: int = 4096) -> None:
        self.log_bytes = log_bytes
        self._seq = 0
        self._changed: asyncio.Event | None = None  # made only while someone waits
        self._closed = False

    @property
    def cursor(self) -> int:
        """The seq of the latest recorded invocation (0 before the first)."""
        return self._seq

    def close(self) -> None:
        """Shutdown: every long poll returns what it has now, so the control plane can stop at once."""
        self._closed = True
        self._wake()

    def attach(self, dispatcher: Dispatcher) -> None:
        dispatcher.on_result.append(self.record_result)
        dispatcher.loops.on_stop.append(self.record_stopped)
        dispatcher.on_accepted.append(self.record_accepted)
        dispatcher.faults.on_inject.append(self.record_injected)

    # -- hooks (on the dispatcher's hot path: no decoding, no copies) -------------------------------------

    def record_result(self, function: str, call: Call, result: InvocationResult) -> None:
        log = result.log
        self._record(
            function=function,
            request_id=result.request_id,
            source=call.source,
            invocation_type=call.invocation_type,
            attempt=call.attempt,
            time=call.started_at,
            duration_ms=result.duration_ms,
            billed_ms=result.billed_ms,
            init_ms=result.init_ms,
            memory_mb=result.memory_mb,
            max_memory_mb=result.max_memory_mb,
            outcome=SUCCESS if result.function_error is None else ERROR,
            error_type=result.error_type or result.function_error,
            cold=result.cold,
            trace=call.trace_id,
            event=call.payload,
            result=result.payload,
            log=log[-self.log_bytes :] if self.log_bytes else b"",
            fault=result.fault,
        )

    def record_stopped(self, stopped: StoppedCall) -> None:
        self._record(
            function=stopped.function,
            request_id="",
            source=stopped.source,
            invocation_type=stopped.invocation_type,
            attempt=0,
            time=stopped.time,
            outcome=LOOP_STOPPED,
            error_type=RECURSIVE_INVOCATION,
            trace=stopped.trace,
            event=stopped.payload,
        )

    def record_injected(self, injected: Injected) -> None:
        if injected.kind != "throttle" or injected.function is None:
            return
        self._record(
            function=injected.function,
            request_id=injected.request_id or "",
            source=injected.source,
            invocation_type=injected.invocation_type,
            attempt=injected.attempt,
            time=injected.time,
            outcome=THROTTLED,
            error_type=ROUTER_THROTTLED,
            trace=injected.trace,
            event=injected.payload,
            fault="throttle",
        )

    def record_accepted(self, event: AcceptedEvent) -> None:
        self._accept(event)

    def _record(self, *, event: bytes, result: bytes = b"", **fields: Any) -> None:
        self._seq += 1
        fields.setdefault("duration_ms", 0.0)
        fields.setdefault("billed_ms", 0)
        fields.setdefault("cold", False)
        invocation = Invocation(
            seq=self._seq,
            event=event,
            event_size=len(event),
            result=result,
            result_size=len(result),
            **fields,
        )
        self._add(invocation)
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _add(self, invocation: Invocation) -> None:
        raise NotImplementedError

    def _accept(self, event: AcceptedEvent) -> None:
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------------------------

    async def recent(
        self,
        function: str | None = None,
        *,
        after: int = 0,
        limit: int | None = None,
        source: str | None = None,
    ) -> list[Invocation]:
        raise NotImplementedError

    async def since(
        self, function: str | None, after: int, wait_s: float, source: str | None = None
    ) -> list[Invocation]:
        deadline = time.monotonic() + wait_s
        while True:
            changed = self._subscribe()
            found = await self.recent(function, after=after, source=source)
            if found or not await self._changes(changed, deadline):
                return found

    async def wait(
        self, function: str | None, predicate: Predicate | None, after: int, timeout_s: float
    ) -> Invocation | None:
        deadline = time.monotonic() + timeout_s
        while True:
            changed = self._subscribe()
            page = await self.recent(function, after=after)
            for invocation in page:
                if predicate is None or predicate(view(invocation)):
                    return invocation
                after = invocation.seq  # seen: do not decode it again on the next wake
            if len(page) >= PAGE:
                continue  # more were recorded than one page holds: read on before waiting
            if not await self._changes(changed, deadline):
                return None

    def _subscribe(self) -> asyncio.Event:
        """The event set by the next record; taken before reading, so nothing recorded meanwhile is missed."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def _changes(self, changed: asyncio.Event, deadline: float) -> bool:
        """Wait for the next recorded invocation; False once the deadline has passed or on close."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self._closed:
            return False
        try:
            async with asyncio.timeout(remaining):
                await changed.wait()
        except TimeoutError:
            return False
        return not self._closed
