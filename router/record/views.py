"""The JSON documents the inspection API serves for recorded invocations and accepted events.

* `view(invocation, limit=None, logs=False)`: seq, function, request_id, source, invocation_type, attempt,
  time (RFC 3339), duration_ms, billed_ms, init_ms, memory_mb, max_memory_mb, outcome, error_type, cold,
  trace, depth, fault, replay_of, event, result (decoded JSON, or the text when not JSON; a
  `{"truncated": true, "size", "head"}` object past `limit` bytes or when the record kept only a head), and
  with `logs` the tail of the call's log as text.
* `accepted_view(event, limit=None)`: request_id, source, function, time, mode, trace, position, fault,
  event.

Patterns of `POST /inspect/wait` and the test helper's filters match these documents.
"""

from __future__ import annotations

from typing import Any

import msgspec

from router.core import timefmt
from router.core import trace as traces
from router.core.backends import AcceptedEvent, Invocation

SUCCESS, ERROR, LOOP_STOPPED, THROTTLED = "success", "error", "loop-stopped", "throttled"

_decode = msgspec.json.Decoder().decode


def view(invocation: Invocation, limit: int | None = None, *, logs: bool = False) -> dict[str, Any]:
    """The JSON document of one invocation, as the inspection API serves it."""
    i = invocation
    doc = {
        "seq": i.seq,
        "function": i.function,
        "request_id": i.request_id,
        "source": i.source,
        "invocation_type": i.invocation_type,
        "attempt": i.attempt,
        "time": timefmt.iso_ms(i.time),
        "duration_ms": round(i.duration_ms, 3),
        "billed_ms": i.billed_ms,
        "init_ms": round(i.init_ms, 3) if i.init_ms is not None else None,
        "memory_mb": i.memory_mb,
        "max_memory_mb": i.max_memory_mb,
        "outcome": i.outcome,
        "error_type": i.error_type,
        "cold": i.cold,
        "trace": i.trace,
        "depth": traces.depth(i.trace) if i.trace else None,
        "fault": i.fault,
        "replay_of": i.replay_of,
        "event": payload_view(i.event, i.event_size, limit),
        "result": payload_view(i.result, i.result_size, limit) if i.outcome in (SUCCESS, ERROR) else None,
    }
    if logs:
        doc["log"] = i.log.decode("utf-8", "replace")
    return doc


def accepted_view(event: AcceptedEvent, limit: int | None = None) -> dict[str, Any]:
    e = event
    return {
        "request_id": e.request_id,
        "source": e.source,
        "function": e.function,
        "time": timefmt.iso_ms(e.time),
        "mode": e.mode,
        "trace": e.trace,
        "position": e.position,
        "fault": e.fault,
        "event": payload_view(e.payload, len(e.payload), limit),
    }


def payload_view(data: bytes, size: int, limit: int | None = None) -> Any:
    """A payload as JSON: decoded, or its text, or a truncated head past `limit` (or when cut already)."""
    if limit is not None and len(data) > limit:
        data = data[:limit]
    if len(data) < size:
        return {"truncated": True, "size": size, "head": data.decode("utf-8", "replace")}
    if not data:
        return None
    try:
        return _decode(data)
    except msgspec.DecodeError:
        return data.decode("utf-8", "replace")
