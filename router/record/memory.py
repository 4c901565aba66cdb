"""The inspection store: each function's recent invocations in a bounded ring, for users' integration tests.

Today's implementation of the `router.core.backends.InvocationRecord` seam (docs/backends.md).

Contract:

* `InspectStore(ring_size=..., max_payload_bytes=...)`; `attach(dispatcher)` subscribes it to
  `Dispatcher.on_result` (every synchronous call and every asynchronous attempt) and to the loop guard's
  `on_stop` (invocations stopped as recursive loops, outcome "loop-stopped"). Recording is O(1) and keeps
  references to the payload bytes the dispatcher already holds; nothing is decoded until someone reads.
* Memory is bounded: at most `ring_size` invocations per function (the oldest fall out), and an event or a
  result longer than `max_payload_bytes` is kept truncated (its view says so, with the full size).
* Every recorded invocation gets a sequence number `seq`, increasing across all functions. A client keeps
  the highest `seq` it has seen (the *cursor*) and asks for what came `after` it, so nothing that finished
  between two requests is missed.
* `view(invocation)` is the JSON document the API serves: seq, function, request_id, source,
  invocation_type, attempt, time (RFC 3339), duration_ms, billed_ms, outcome ("success" | "error" |
  "loop-stopped"), error_type, cold, trace, depth, event, result (decoded JSON, or the text when not JSON).
* `await wait(function, predicate, after, timeout_s)` returns the first invocation after the cursor that
  the predicate (over the view) accepts, waiting up to timeout_s for one to happen; None on timeout.
  `await since(function, after, wait_s)` returns every invocation after the cursor, waiting up to wait_s
  for at least one (long poll, for `router tail`). `close()` ends every wait at once (shutdown).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from router.core import timefmt
from router.core import trace as traces
from router.core.backends import Invocation, Predicate
from router.core.errors import RECURSIVE_INVOCATION

if TYPE_CHECKING:
    from router.core.results import InvocationResult
    from router.dispatch.dispatcher import Dispatcher
    from router.dispatch.loops import StoppedCall
    from router.dispatch.stats import Call

SUCCESS, ERROR, LOOP_STOPPED = "success", "error", "loop-stopped"

_decode = msgspec.json.Decoder().decode

__all__ = ["ERROR", "LOOP_STOPPED", "SUCCESS", "InspectStore", "Invocation", "Predicate", "view"]


class InspectStore:
    """The InvocationRecord in memory: a ring per function."""

    def __init__(self, *, ring_size: int = 100, max_payload_bytes: int = 256 * 1024) -> None:
        self.ring_size = ring_size
        self.max_payload_bytes = max_payload_bytes
        self._rings: dict[str, deque[Invocation]] = {}
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
        if self._changed is not None:
            self._changed.set()

    def attach(self, dispatcher: Dispatcher) -> None:
        dispatcher.on_result.append(self.record_result)
        dispatcher.loops.on_stop.append(self.record_stopped)

    # -- recording (on the dispatcher's hot path: no decoding, no copies unless truncating) ---------------

    def record_result(self, function: str, call: Call, result: InvocationResult) -> None:
        outcome = SUCCESS if result.function_error is None else ERROR
        self._add(
            function,
            request_id=result.request_id,
            source=call.source,
            invocation_type=call.invocation_type,
            attempt=call.attempt,
            time=call.started_at,
            duration_ms=result.duration_ms,
            billed_ms=result.billed_ms,
            outcome=outcome,
            error_type=result.error_type or result.function_error,
            cold=result.cold,
            trace=call.trace_id,
            event=call.payload,
            result=result.payload,
        )

    def record_stopped(self, stopped: StoppedCall) -> None:
        self._add(
            stopped.function,
            request_id="",
            source=stopped.source,
            invocation_type=stopped.invocation_type,
            attempt=0,
            time=stopped.time,
            duration_ms=0.0,
            billed_ms=0,
            outcome=LOOP_STOPPED,
            error_type=RECURSIVE_INVOCATION,
            cold=False,
            trace=stopped.trace,
            event=stopped.payload,
            result=b"",
        )

    def _add(self, function: str, *, event: bytes, result: bytes, **fields: Any) -> None:
        self._seq += 1
        limit = self.max_payload_bytes
        invocation = Invocation(
            seq=self._seq,
            function=function,
            event=event if len(event) <= limit else event[:limit],
            event_size=len(event),
            result=result if len(result) <= limit else result[:limit],
            result_size=len(result),
            **fields,
        )
        ring = self._rings.get(function)
        if ring is None:
            ring = self._rings[function] = deque(maxlen=self.ring_size)
        ring.append(invocation)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # -- reading ------------------------------------------------------------------------------------------

    def functions(self) -> dict[str, int]:
        """Function -> how many invocations its ring holds."""
        return {name: len(ring) for name, ring in sorted(self._rings.items())}

    def recent(
        self,
        function: str | None = None,
        *,
        after: int = 0,
        limit: int | None = None,
        source: str | None = None,
    ) -> list[Invocation]:
        """Invocations after the cursor (only from `source` when given), oldest first; the newest `limit`
        of them when given."""
        found = [i for i in self._iter(function) if i.seq > after and (source is None or i.source == source)]
        if function is None:
            found.sort(key=lambda i: i.seq)
        return found[-limit:] if limit is not None and limit >= 0 else found

    def _iter(self, function: str | None) -> Iterator[Invocation]:
        if function is not None:
            yield from self._rings.get(function, ())
            return
        for ring in self._rings.values():
            yield from ring

    async def since(
        self, function: str | None, after: int, wait_s: float, source: str | None = None
    ) -> list[Invocation]:
        deadline = time.monotonic() + wait_s
        while True:
            found = self.recent(function, after=after, source=source)
            if found or not await self._changes(deadline):
                return found

    async def wait(
        self, function: str | None, predicate: Predicate | None, after: int, timeout_s: float
    ) -> Invocation | None:
        deadline = time.monotonic() + timeout_s
        while True:
            for invocation in self.recent(function, after=after):
                if predicate is None or predicate(view(invocation)):
                    return invocation
                after = invocation.seq  # seen: do not decode it again on the next wake
            if not await self._changes(deadline):
                return None

    async def _changes(self, deadline: float) -> bool:
        """Wait for the next recorded invocation; False once the deadline has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self._closed:
            return False
        if self._changed is None:
            self._changed = asyncio.Event()
        try:
            async with asyncio.timeout(remaining):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True


def view(invocation: Invocation) -> dict[str, Any]:
    """The JSON document of one invocation, as the inspection API serves it."""
    i = invocation
    return {
        "seq": i.seq,
        "function": i.function,
        "request_id": i.request_id,
        "source": i.source,
        "invocation_type": i.invocation_type,
        "attempt": i.attempt,
        "time": timefmt.iso_ms(i.time),
        "duration_ms": round(i.duration_ms, 3),
        "billed_ms": i.billed_ms,
        "outcome": i.outcome,
        "error_type": i.error_type,
        "cold": i.cold,
        "trace": i.trace,
        "depth": traces.depth(i.trace) if i.trace else None,
        "event": payload_view(i.event, i.event_size),
        "result": payload_view(i.result, i.result_size) if i.outcome != LOOP_STOPPED else None,
    }


def payload_view(data: bytes, size: int) -> Any:
    if len(data) < size:
        return {"truncated": True, "size": size, "head": data.decode("utf-8", "replace")}
    if not data:
        return None
    try:
        return _decode(data)
    except msgspec.DecodeError:
        return data.decode("utf-8", "replace")
