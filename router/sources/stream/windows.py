"""Tumbling windows (Lambda's `TumblingWindowInSeconds`) for Kinesis and DynamoDB Streams mappings.

With `batch: {tumbling_window_s: W}` (1-900) on a route, each lane (a shard, or one of its
parallelization lanes) groups records into windows of W seconds aligned to the epoch, by the time each record
entered the stream (Kinesis `approximateArrivalTimestamp`, DynamoDB `ApproximateCreationDateTime`), as Lambda
does. The contract:

* A batch never spans two windows. Every invocation of a window carries, beside `Records`: `window`
  (`{"start", "end"}`, ISO 8601 UTC), `state` (what the previous successful invocation of this window
  returned under `state`; `{}` first), `shardId`, `eventSourceARN`, `isFinalInvokeForWindow` and
  `isWindowTerminatedEarly`. A function error does not change the state: the retry sees the same one.
* When the window is over (the clock passed its end, or a record of a later window is next) and its records
  are settled, the lane makes one more invocation with no records and `isFinalInvokeForWindow: true`: the
  state is final and ready to be used (saved, sent). Its response's state is dropped.
* A state over 1 MB (Lambda's limit) ends the window early: the final invocation comes at once, with
  `isWindowTerminatedEarly: true` as well; later records of that window start it again with `{}`.
* The final invocation is retried on function errors as a batch is (`on_error.max_retries`, its delays);
  when they are spent it is logged and dropped: it has no records to send to the failure destination.

The state lives in the router's memory, per lane: a restart, or the shard moving to another router, starts
the window again from `{}`. Records fetched after their window's final invocation (a slow poll) open that
window again with `{}`. A route whose function takes CloudEvents gets its events unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from router.core.results import InvocationResult
    from router.sources.stream.records import StreamRecord

MAX_STATE_BYTES = 1024 * 1024  # Lambda's limit on a tumbling window's state, per shard
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass
class Window:
    """One open window of a lane: its bounds and the state the function carries through it."""

    start: int
    end: int
    shard_id: str
    state: Any = field(default_factory=dict)
    arn: str | None = None
    too_big: bool = False  # the last state returned was over MAX_STATE_BYTES

    def fields(self, *, final: bool, early: bool = False) -> dict[str, Any]:
        return {
            "window": {"start": iso(self.start), "end": iso(self.end)},
            "state": self.state,
            "shardId": self.shard_id,
            "eventSourceARN": self.arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": early,
        }

    def final_payload(self, *, early: bool) -> bytes:
        return _encode({"Records": [], **self.fields(final=True, early=early)})

    def wrap(self, payload: bytes) -> bytes:
        """A batch's rendered event with this window's fields added (unchanged if it has no `Records`)."""
        event = _decode(payload)
        if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
            return payload
        records = event["Records"]
        if records and isinstance(records[0], dict) and self.arn is None:
            self.arn = records[0].get("eventSourceARN")
        event.update(self.fields(final=False))
        return _encode(event)

    def answered(self, result: InvocationResult) -> None:
        """Keep the state a successful invocation returned."""
        if not result.ok:
            return
        try:
            response = _decode(result.payload) if result.payload else None
        except msgspec.DecodeError:
            response = None
        state = response.get("state") if isinstance(response, dict) else None
        self.state = state if state is not None else {}
        self.too_big = len(_encode(self.state)) > MAX_STATE_BYTES


class LaneWindows:
    """The tumbling windows of one lane: which window a record is in, and the one open now."""

    def __init__(self, seconds: int, shard_id: str) -> None:
        self.seconds = seconds
        self.shard_id = shard_id
        self.current: Window | None = None

    def start_of(self, record: StreamRecord) -> int:
        return int(record.arrival // self.seconds) * self.seconds

    def due_in(self, now: float) -> float | None:
        """Seconds until the open window is over (<= 0: it is), None when none is open."""
        return None if self.current is None else self.current.end - now

    def take(self, head: StreamRecord) -> tuple[Window | None, Window]:
        """(the window that ends before this record's, if one was open; the record's window, now open)."""
        start = self.start_of(head)
        ended = None
        if self.current is not None and self.current.start != start:
            ended, self.current = self.current, None
        if self.current is None:
            self.current = Window(start, start + self.seconds, self.shard_id)
        return ended, self.current

    def close(self) -> Window | None:
        """The open window, now over."""
        window, self.current = self.current, None
        return window
