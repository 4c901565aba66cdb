"""Redrive: the entries of failure destinations sent back through their functions (`router redrive`).

`await redrive(targets, calls, dry_run=False, rate=50, function=None)` takes, for each target (a failure
destination's `FailureStore` with the functions it serves), the entries present now (`take`), and for each:

* finds the event and the function in the record: an asynchronous invocation record has the event as
  `requestPayload`, a stream failure record as `payload`; the function is the one its `functionArn` names
  (when that is one of the destination's functions; else the destination's only function);
* invokes the function synchronously with it (source `redrive`, a new request id, a fresh trace);
* success (no function error, and no `batchItemFailures` listed): the entry is removed (`remove`); a function
  error or a dispatch error (after retries of throttles): the entry is kept (`keep`) for the next redrive.

Each entry is sent at most once per redrive; entries that arrive meanwhile wait for the next one. Entries that
cannot be sent (unreadable, no event, a RecursiveLoopDetected record: it would loop again, or another
function than `function`) are skipped and kept. `dry_run` takes nothing out and reports what would be sent
(`would_send`).
At most `rate` entries are sent per second. The answer lists per destination what was tried, succeeded,
failed and skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from router.core.errors import CONDITION_RECURSIVE_LOOP, DispatchError
from router.record.failstores import FailureEntry, FailureStore
from router.record.replay import Calls, retrying_throttles

REDRIVE_SOURCE = "redrive"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Target:
    owner: str  # the config path naming the destination
    functions: list[str]
    store: FailureStore


def event_of(record: Any) -> tuple[bytes | None, str | None, str | None]:
    """(the event as the function received it, the function its ARN names, why it cannot be sent)."""
    if not isinstance(record, dict):
        return None, None, "not an invocation record"
    context = record.get("requestContext") or {}
    if context.get("condition") == CONDITION_RECURSIVE_LOOP:
        return None, None, "a recursive loop was stopped: sending it again would loop again"
    arn = str(context.get("functionArn", ""))
    name = arn.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in arn else None
    if "requestPayload" in record:
        event = record["requestPayload"]
    elif "payload" in record:
        event = record["payload"]
    else:
        return None, name, "the record holds no event"
    data = event.encode() if isinstance(event, str) else _encode(event)
    return data, name, None


def _succeeded(ok: bool, payload: bytes) -> bool:
    if not ok:
        return False
    try:
        answer = _decode(payload) if payload else None
    except msgspec.DecodeError:
        return True
    return not (isinstance(answer, dict) and answer.get("batchItemFailures"))


async def redrive(
    targets: Sequence[Target],
    calls: Calls,
    *,
    dry_run: bool = False,
    rate: float = 50.0,
    function: str | None = None,
) -> dict[str, Any]:
    pace = _Pace(rate)
    done = [await _one_target(t, calls, dry_run, pace, function) for t in targets]
    totals = {k: sum(d[k] for d in done) for k in ("entries", "succeeded", "failed", "skipped", "would_send")}
    return {"dry_run": dry_run, **totals, "destinations": done}


class _Pace:
    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self.next > now:
            await asyncio.sleep(self.next - now)
        self.next = max(now, self.next) + self.interval


async def _one_target(
    target: Target, calls: Calls, dry_run: bool, pace: _Pace, only: str | None
) -> dict[str, Any]:
    store = target.store
    doc: dict[str, Any] = {
        "owner": target.owner, "kind": store.kind, "target": store.target, "entries": 0, "succeeded": 0,
        "failed": 0, "skipped": 0, "would_send": 0, "items": [],
    }  # fmt: skip
    entries = await (store.newest(100_000) if dry_run else store.take())
    try:
        doc["entries"] = len(entries)
        for entry in entries:
            item = await _one_entry(target, entry, calls, dry_run, pace, only)
            doc["items"].append(item)
            doc[item["result"]] += 1
    finally:
        if not dry_run:
            await store.aclose()
    return doc


async def _one_entry(
    target: Target, entry: FailureEntry, calls: Calls, dry_run: bool, pace: _Pace, only: str | None
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry.id}
    event, named, why = event_of(entry.record) if entry.error is None else (None, None, entry.error)
    function = _function_for(named, target.functions)
    item["function"] = function
    if why is None and function is None:
        why = "no function to send it to"
    if why is None and only is not None and function != only:
        why = f"for {function}, not {only}"
    if why is not None or event is None or function is None:
        if not dry_run:
            await target.store.keep(entry)
        return {**item, "result": "skipped", "reason": why}
    if dry_run:
        return {**item, "result": "would_send"}
    await pace.wait()
    try:
        result = await retrying_throttles(lambda: calls.invoke(function, event, source=REDRIVE_SOURCE))
    except DispatchError as e:
        await target.store.keep(entry)
        return {**item, "result": "failed", "error": e.code, "message": e.message}
    item["request_id"] = result.request_id
    if _succeeded(result.ok, result.payload):
        await target.store.remove(entry)
        return {**item, "result": "succeeded"}
    await target.store.keep(entry)
    return {**item, "result": "failed", "error_type": result.error_type}


def _function_for(named: str | None, functions: list[str]) -> str | None:
    """The function an entry goes back to: the one its ARN names when the destination serves it."""
    if named is not None and named in functions:
        return named
    return functions[0] if len(functions) == 1 else None
