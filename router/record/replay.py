"""Replay: recorded events delivered again, to the same function or another, at a bounded rate.

`await replay(record, calls, plan, progress=None)`:

* picks the recorded requests (`InvocationRecord.select`): from one source or to one function, in a time
  window, optionally only those whose latest attempt ended with a given outcome; each request once, oldest
  first; earlier replays (source `replay`) only when asked for by `source: replay`;
* delivers each event whole, as recorded, to `plan.to` (default: the function it went to), at most
  `plan.rate` per second: synchronously (`mode: sync`, the default: the result is compared with the
  recorded one) or queued (`mode: async`: retries and destinations apply, the outcome is not waited for);
* each delivery is a new request (a new request id, source `replay`) linked to the original in the record
  (`replay_of` in its view);
* loop protection: the replayed invocation continues the original's chain, one hop deeper (the original
  caused it), so `limits.max_loop_depth` bounds replays of a loop as it bounded the loop (an event recorded
  at the maximum depth is stopped when replayed, outcome `loop-stopped`);
* `dry_run`: nothing is delivered; the answer lists what would be.

`progress(item, done, total)` is called after each event. The answer (`Summary`) counts what was replayed,
how many results were the same as recorded, different, or could not be delivered (a dispatch error after
retries of throttles), and lists every item.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

import msgspec

from router.core.backends import InvocationRecord, Recorded, RecordQuery
from router.core.errors import DispatchError, LoopDetected, Throttled
from router.core.results import InvocationResult
from router.core.timefmt import duration_s

REPLAY_SOURCE = "replay"
THROTTLE_RETRIES = 5
MAX_RATE = 1000.0

_decode = msgspec.json.Decoder().decode


class ReplayPlan(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What to replay (the body of `POST /inspect/replay`; `router replay` sends it)."""

    source: str | None = None
    function: str | None = None
    since: float | str | None = None  # epoch seconds, RFC 3339, or a span back from now ("1h")
    until: float | str | None = None
    outcome: str | None = None  # "success", "error", ... of the latest attempt
    to: str | None = None  # deliver to this function instead
    rate: float = 10.0  # events per second
    mode: Literal["sync", "async"] = "sync"
    dry_run: bool = False
    limit: int = 10_000


class Calls(Protocol):
    """The dispatcher's two calls (router.dispatch.Dispatcher)."""

    async def invoke(
        self, function: str, payload: bytes, *, trace: str | None = None, source: str | None = None
    ) -> InvocationResult: ...

    async def enqueue(
        self, function: str, payload: bytes, *, trace: str | None = None, source: str | None = None
    ) -> str: ...


Progress = Callable[[dict[str, Any], int, int], Any]


class PlanError(ValueError):
    pass


def query_of(plan: ReplayPlan, now: float) -> RecordQuery:
    """The record query of a plan; PlanError names what is wrong with it."""
    if (plan.source is None) == (plan.function is None):
        raise PlanError("give exactly one of source, function")
    if not 0 < plan.rate <= MAX_RATE:
        raise PlanError(f"rate: expected more than 0 and at most {MAX_RATE:g} per second, got {plan.rate:g}")
    if not 1 <= plan.limit <= 100_000:
        raise PlanError(f"limit: expected 1 to 100000, got {plan.limit}")
    return RecordQuery(
        source=plan.source,
        function=plan.function,
        since=parse_time(plan.since, now, "since"),
        until=parse_time(plan.until, now, "until"),
        outcome=plan.outcome,
        limit=plan.limit,
    )


def parse_time(value: float | str | None, now: float, what: str) -> float | None:
    """Epoch seconds from a number, an RFC 3339 time, or a span back from `now` such as `90m`, `1d`."""
    if value is None or isinstance(value, int | float):
        return value
    try:
        return now - duration_s(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PlanError(
            f"{what}: expected epoch seconds, an RFC 3339 time or a span (1h), got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


async def replay(
    record: InvocationRecord, calls: Calls, plan: ReplayPlan, progress: Progress | None = None
) -> dict[str, Any]:
    items = await record.select(query_of(plan, time.time()))
    summary: dict[str, Any] = {
        "dry_run": plan.dry_run, "total": len(items), "replayed": 0, "same": 0, "different": 0,
        "errors": 0, "skipped": 0, "items": [],
    }  # fmt: skip
    start = time.monotonic()
    for n, item in enumerate(items):
        if not plan.dry_run:
            await asyncio.sleep(max(0.0, start + n / plan.rate - time.monotonic()))
        done = await _one(record, calls, plan, item)
        summary["items"].append(done)
        _count(summary, done)
        if progress is not None:
            await _maybe_await(progress(done, n + 1, len(items)))
    return summary


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


def _count(summary: dict[str, Any], done: dict[str, Any]) -> None:
    if "error" in done:
        summary["errors"] += 1
    elif "skipped" in done:
        summary["skipped"] += 1
    elif done.get("request_id"):
        summary["replayed"] += 1
        if done.get("same_result") is True:
            summary["same"] += 1
        elif done.get("same_result") is False:
            summary["different"] += 1


async def _one(record: InvocationRecord, calls: Calls, plan: ReplayPlan, item: Recorded) -> dict[str, Any]:
    original = item.invocation
    target = plan.to or original.function
    doc: dict[str, Any] = {
        "original": original.request_id, "function": target, "original_function": original.function,
        "source": original.source, "time": original.time, "original_outcome": original.outcome,
        "position": item.accepted.position if item.accepted is not None else None,
    }  # fmt: skip
    if len(original.event) < original.event_size:
        return {**doc, "skipped": "the record kept only the head of this event"}
    if plan.dry_run:
        return doc
    try:
        if plan.mode == "async":
            request_id = await retrying_throttles(
                lambda: calls.enqueue(target, original.event, trace=original.trace, source=REPLAY_SOURCE)
            )
            record.link(request_id, original.request_id)
            return {**doc, "request_id": request_id, "outcome": "queued"}
        result = await retrying_throttles(
            lambda: calls.invoke(target, original.event, trace=original.trace, source=REPLAY_SOURCE)
        )
    except LoopDetected as e:
        return {**doc, "outcome": "loop-stopped", "error": e.code, "message": e.message}
    except DispatchError as e:
        return {**doc, "error": e.code, "message": e.message}
    record.link(result.request_id, original.request_id)
    return {
        **doc,
        "request_id": result.request_id,
        "outcome": "success" if result.ok else "error",
        "error_type": result.error_type,
        "same_result": _same(original.result, original.result_size, original.outcome, result),
    }


async def retrying_throttles(call: Callable[[], Any]) -> Any:
    """The call, again after a throttle (its retry-after), up to THROTTLE_RETRIES times."""
    for attempt in range(THROTTLE_RETRIES + 1):
        try:
            return await call()
        except Throttled as e:
            if attempt == THROTTLE_RETRIES:
                raise
            await asyncio.sleep(e.retry_after_s or 1.0)
    raise AssertionError("unreachable")


def _same(recorded: bytes, size: int, outcome: str, result: InvocationResult) -> bool | None:
    """Whether the new result is what was recorded (as JSON when both are); None when unknown."""
    if len(recorded) < size or outcome not in ("success", "error"):
        return None
    if (outcome == "success") != result.ok:
        return False
    try:
        return bool(_decode(recorded) == _decode(result.payload))
    except msgspec.DecodeError:
        return recorded == result.payload
