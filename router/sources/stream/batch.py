"""Delivering one batch of a partition: Lambda's error handling for stream event source mappings.

`await deliver(mapping, partition, records)` returns once every record of the batch is settled, in this way:

* The batch is rendered and invoked synchronously. A dispatch error (throttled, shutting down, no such
  function) or an unexpected exception around the call is not the function's doing: back off (doubling up to
  `throttle_delay_max_s`) and call again with the same records. Nothing is skipped, no retry is counted.
* Success settles the batch. With `report_batch_item_failures`, a `{"batchItemFailures": [...]}` response
  settles the records before the lowest reported one and fails the rest; an identifier that names no record
  of the batch (or is empty, null, or under a wrong key) fails the whole batch, as on Lambda.
* The failed records are then, in this order: split in two when `bisect` is on and there are several (each
  half is retried on its own, in order; splitting spends no retry); given up when `max_retries` retries are
  spent; else retried after a pause (doubling from `retry_delay_s`). With `max_retries` -1 they are retried
  until they expire.
* A batch carries the trace of its first record that has one (loop protection). A batch whose chain of
  events is past `limits.max_loop_depth` (LoopDetected, router/dispatch/loops.py) is given up at once with
  condition RecursiveLoopDetected: retrying cannot help.
* Before each call, records older than `max_record_age_s` are given up (condition RecordAgeExceeded). A
  batch whose rendered event is over the 6 MB payload cap is split; a single record over it is given up
  (MaximumPayloadSizeExceeded).
* With tumbling windows (router/sources/stream/windows.py) the event carries its window's fields and state,
  and a successful answer's state is kept for the window's next invocation.
* Giving up writes one failure record for the given-up records to the failure sink (which retries until the
  record is stored) and only then settles them, so a crash in between re-delivers rather than loses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from router.core.errors import CONDITION_RECURSIVE_LOOP as RECURSIVE_LOOP
from router.core.errors import DispatchError, LoopDetected, Throttled
from router.core.retry import Backoff, delay_after
from router.sources.stream.failure import (
    PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    failure_record,
)
from router.sources.stream.records import PAYLOAD_CAP, MappingSettings, StreamKind, StreamRecord

if TYPE_CHECKING:
    from router.core.clock import Clock
    from router.core.ports import RoutePort
    from router.core.results import InvocationResult
    from router.sources.stream.failure import FailureSink
    from router.sources.stream.stats import MappingStats
    from router.sources.stream.windows import Window

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode


class Partition(Protocol):
    """What delivery needs of a partition (router.sources.stream.engine.Partition)."""

    name: str

    def settle(self, records: list[StreamRecord]) -> None: ...


class StreamMapping(Protocol):
    """What delivery needs of a mapping (router.sources.stream.engine.StreamMapping)."""

    settings: MappingSettings
    stats: MappingStats
    clock: Clock
    route: RoutePort
    kind: StreamKind
    sink: FailureSink

    def render(self, partition: str, records: Sequence[StreamRecord]) -> bytes: ...


@dataclass
class Attempt:
    records: list[StreamRecord]
    retries: int = 0  # function-error retries already spent on these records
    invokes: int = 0  # calls that carried these records (approximateInvokeCount)


async def deliver(
    mapping: StreamMapping, partition: Partition, records: list[StreamRecord], window: Window | None = None
) -> None:
    s, stats = mapping.settings, mapping.stats
    stats.batch(len(records))
    work = [Attempt(records)]
    while work:
        attempt = work.pop(0)
        live = await _drop_expired(mapping, partition, attempt)
        if not live:
            continue
        payload = mapping.render(partition.name, live)
        if window is not None:
            payload = window.wrap(payload)
        if len(payload) > PAYLOAD_CAP:
            if len(live) > 1:
                work[0:0] = _halves(live, attempt)
            else:
                await give_up(mapping, partition, live, PAYLOAD_SIZE_EXCEEDED, None, attempt.invokes, payload)
            continue
        try:
            result = await invoke_until_dispatched(mapping, payload, _trace(live))
        except LoopDetected:  # router/loops.py: retrying cannot help; the batch is given up at once
            await give_up(mapping, partition, live, RECURSIVE_LOOP, None, attempt.invokes, payload)
            continue
        attempt.invokes += 1
        if window is not None:
            window.answered(result)
        failed_at = _first_failure(mapping, partition, result, live)
        if failed_at is None:
            stats.delivered += len(live)
            partition.settle(live)
            continue
        if failed_at:
            stats.delivered += failed_at
            partition.settle(live[:failed_at])
        rest = live[failed_at:]
        if s.bisect and len(rest) > 1:
            stats.bisections += 1
            work[0:0] = _halves(rest, attempt)
        elif 0 <= s.max_retries <= attempt.retries:
            await give_up(mapping, partition, rest, RETRIES_EXHAUSTED, result, attempt.invokes)
        else:
            stats.retries += 1
            await mapping.clock.sleep(delay_after(attempt.retries + 1, s.retry_delay_s, s.retry_delay_max_s))
            work.insert(0, Attempt(rest, attempt.retries + 1, attempt.invokes))


async def finish_window(mapping: StreamMapping, window: Window | None, *, early: bool = False) -> None:
    """A tumbling window's final invocation (router/sources/stream/windows.py): no records, its state,
    isFinalInvokeForWindow; retried on function errors as a batch is, then logged and dropped."""
    if window is None:
        return
    payload = window.final_payload(early=early)
    s, retries = mapping.settings, 0
    while True:
        try:
            result = await invoke_until_dispatched(mapping, payload, None)
        except LoopDetected:
            return
        if result.ok:
            return
        if 0 <= s.max_retries <= retries:
            log.warning(
                "final invocation of a tumbling window failed; retries spent, dropped",
                extra={"fields": {"function": mapping.route.function, "shard": window.shard_id}},
            )
            return
        await mapping.clock.sleep(min(s.retry_delay_s * 2**retries, s.retry_delay_max_s))
        retries += 1


def _trace(records: list[StreamRecord]) -> str | None:
    """A batch's trace (loop protection): its first record's that has one."""
    for record in records:
        trace = record.trace_header
        if trace is not None:
            return trace
    return None


def _halves(records: list[StreamRecord], parent: Attempt) -> list[Attempt]:
    mid = len(records) // 2
    return [
        Attempt(records[:mid], parent.retries, parent.invokes),
        Attempt(records[mid:], parent.retries, parent.invokes),
    ]


async def _drop_expired(mapping: StreamMapping, partition: Partition, attempt: Attempt) -> list[StreamRecord]:
    age = mapping.settings.max_record_age_s
    if age < 0:
        return attempt.records
    oldest = mapping.clock.time() - age
    expired = [r for r in attempt.records if r.arrival < oldest]
    if not expired:
        return attempt.records
    await give_up(mapping, partition, expired, RECORD_AGE_EXCEEDED, None, attempt.invokes)
    return [r for r in attempt.records if not r.done]


async def invoke_until_dispatched(
    mapping: StreamMapping, payload: bytes, trace: str | None
) -> InvocationResult:
    """Invoke, backing off and calling again for as long as the call is not dispatched."""
    s, clock = mapping.settings, mapping.clock
    backoff = Backoff(s.throttle_delay_s, s.throttle_delay_max_s)
    warned = False
    while True:
        try:
            return await mapping.route.invoke(payload, trace=trace)
        except LoopDetected:
            raise
        except DispatchError as e:
            mapping.stats.throttled += 1
            if not warned and not isinstance(
                e, Throttled
            ):  # throttling is expected back-pressure; this is not
                warned = True
                log.warning(
                    "stream batch not dispatched; retrying until it is",
                    extra={
                        "fields": {"function": mapping.route.function, "error": e.code, "reason": e.message}
                    },
                )
        except Exception:  # never skip a batch over a failure that is not the function's
            log.exception(
                "stream batch invocation failed unexpectedly; retrying",
                extra={"fields": {"function": mapping.route.function, "retry_in_s": backoff.upcoming}},
            )
        await backoff.sleep(clock)


def _first_failure(
    mapping: StreamMapping, partition: Partition, result: InvocationResult, live: list[StreamRecord]
) -> int | None:
    """Index of the first failed record in `live`, or None when the whole batch succeeded."""
    if not result.ok:
        return 0
    if not mapping.settings.report_batch_item_failures:
        return None
    identifiers = reported_failures(result.payload)
    if identifiers is None:
        return None
    index = {r.position: i for i, r in enumerate(live)}
    lowest: int | None = None
    for identifier in identifiers:
        position = None if identifier is None else mapping.kind.failed_position(identifier, partition.name)
        if position is None or position not in index:
            return 0
        lowest = position if lowest is None else min(lowest, position)
    assert lowest is not None
    return index[lowest]


def reported_failures(payload: bytes) -> list[Any] | None:
    """The `itemIdentifier`s of a partial batch response (`{"batchItemFailures": [...]}`), as Lambda reads
    them for streams and SQS alike: None when the batch succeeded whole (no response, not JSON, no or an
    empty list); else the identifiers, with None for each one that is not valid (empty, null, under a wrong
    key, or a list that is not a list): any None fails the whole batch."""
    try:
        response = _decode(payload) if payload else None
    except msgspec.DecodeError:
        return None
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return None
    if not isinstance(failures, list):
        return [None]
    identifiers = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
    return [None if i == "" else i for i in identifiers]


async def give_up(
    mapping: StreamMapping,
    partition: Partition,
    records: list[StreamRecord],
    condition: str,
    result: InvocationResult | None,
    invokes: int,
    payload: bytes | None = None,
) -> None:
    """Record the given-up records in the failure destination, then settle them."""
    if payload is None:
        payload = mapping.render(partition.name, records)
    event: Any = _event_or_text(payload)
    s = mapping.settings
    doc = failure_record(
        condition=condition,
        function=mapping.route.function,
        region=s.region,
        account_id=s.account_id,
        info_key=mapping.kind.info_key,
        info=mapping.kind.batch_info(partition.name, records),
        result=result,
        invokes=invokes,
        event=event,
        now=mapping.clock.time(),
    )
    await mapping.sink.put(
        doc, partition=partition.name, first=records[0].position, last=records[-1].position
    )
    mapping.stats.failed += len(records)
    log.warning(
        "stream records given up",
        extra={
            "fields": {
                "function": mapping.route.function,
                "partition": partition.name,
                "condition": condition,
                "first": records[0].position,
                "last": records[-1].position,
                "count": len(records),
                "destination": mapping.sink.name,
            }
        },
    )
    partition.settle(records)


def _event_or_text(payload: bytes) -> Any:
    try:
        return _decode(payload)
    except msgspec.DecodeError:
        return payload.decode("utf-8", "replace")
