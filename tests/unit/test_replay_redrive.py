"""router/record/replay.py and redrive.py: plans, times, which records can be sent back, and a replay over the
memory record with a fake dispatcher."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.core.errors import LoopDetected, Throttled
from router.core.results import InvocationResult
from router.dispatch.stats import Call
from router.record.memory import InspectStore
from router.record.redrive import _succeeded, event_of
from router.record.replay import PlanError, ReplayPlan, parse_time, query_of, replay
from router.shapes.positions import position


def test_plans_and_times() -> None:
    now = 1_700_000_000.0
    assert parse_time("1h", now, "since") == now - 3600 and parse_time(5.0, now, "since") == 5.0
    assert parse_time("2023-11-14T22:13:20Z", now, "until") == now
    with pytest.raises(PlanError, match="since: expected epoch seconds"):
        parse_time("yesterday", now, "since")
    with pytest.raises(PlanError, match="exactly one of source, function"):
        query_of(ReplayPlan(), now)
    with pytest.raises(PlanError, match="rate"):
        query_of(ReplayPlan(function="f", rate=0), now)
    query = query_of(ReplayPlan(source="s", since="1d", outcome="error"), now)
    assert (query.source, query.since, query.outcome) == ("s", now - 86400, "error")


def test_which_failure_records_can_be_sent_back() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:resize:$LATEST"
    async_record = {"requestContext": {"functionArn": arn, "condition": "RetriesExhausted"},
                    "requestPayload": {"n": 1}}  # fmt: skip
    assert event_of(async_record) == (b'{"n":1}', "resize", None)
    stream_record = {"requestContext": {"functionArn": arn[:-8], "condition": "RetryAttemptsExhausted"},
                     "KafkaBatchInfo": {}, "payload": {"records": {}}}  # fmt: skip
    assert event_of(stream_record) == (b'{"records":{}}', "resize", None)
    looped = {
        "requestContext": {"functionArn": arn, "condition": "RecursiveLoopDetected"},
        "requestPayload": 1,
    }
    assert "would loop again" in str(event_of(looped)[2])
    assert event_of({"requestContext": {}})[2] == "the record holds no event"
    assert event_of([1])[2] == "not an invocation record"
    assert _succeeded(True, b'{"batchItemFailures": []}') and _succeeded(True, b"not json")
    assert not _succeeded(True, b'{"batchItemFailures": [{"itemIdentifier": "1"}]}')
    assert not _succeeded(False, b"{}")
    assert position({"requestContext": {"requestId": "r1", "condition": "Success"}}) == "request:r1"


class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, str | None, str | None]] = []
        self.throttle_first = True

    async def invoke(self, function: str, payload: bytes, *, trace: str | None = None,
                     source: str | None = None) -> InvocationResult:  # fmt: skip
        if self.throttle_first:
            self.throttle_first = False
            error = Throttled("Rate Exceeded.")
            error.retry_after_s = 0.01
            raise error
        if json.loads(payload).get("deep"):
            raise LoopDetected("too deep")
        self.calls.append((function, payload, trace, source))
        return InvocationResult(request_id=f"new{len(self.calls)}", payload=b'{"ok": 2}')

    async def enqueue(self, function: str, payload: bytes, **kw: Any) -> str:
        raise AssertionError("sync replays only here")


def recorded(
    store: InspectStore, rid: str, event: Any, result: bytes, *, at: float, fail: bool = False
) -> None:
    call = Call(request_id=rid, payload=json.dumps(event).encode(), function="f", source="s", started_at=at,
                trace_id="Root=1-a-b;Lineage=00000000:0")  # fmt: skip
    error = "Unhandled" if fail else None
    store.record_result("f", call, InvocationResult(request_id=rid, payload=result, function_error=error))


async def test_replay_over_the_memory_record() -> None:
    store = InspectStore(max_payload_bytes=64)
    recorded(store, "a", {"n": 1}, b'{"ok": 1}', at=10)
    recorded(store, "b", {"n": 2}, b'{"ok": 2}', at=20)
    recorded(store, "c", {"deep": True}, b"{}", at=30)
    recorded(store, "d", {"pad": "x" * 100}, b"{}", at=40)  # kept truncated: cannot be replayed
    calls = Calls()
    progress: list[tuple[int, int]] = []
    summary = await replay(store, calls, ReplayPlan(function="f", to="g", rate=1000),
                           lambda item, done, total: progress.append((done, total)))  # fmt: skip
    assert (summary["total"], summary["replayed"], summary["same"], summary["different"]) == (4, 2, 1, 1)
    assert (summary["errors"], summary["skipped"]) == (1, 1) and progress[-1] == (4, 4)
    assert [c[0] for c in calls.calls] == ["g", "g"] and {c[3] for c in calls.calls} == {"replay"}
    assert calls.calls[0][2] == "Root=1-a-b;Lineage=00000000:0"  # the original's trace comes in
    deep = summary["items"][2]
    assert (deep["outcome"], deep["error"]) == ("loop-stopped", "Router.RecursiveLoopDetected")
    recorded(store, "new1", {"n": 1}, b'{"ok": 2}', at=50)
    (replayed,) = [i for i in await store.recent("f") if i.request_id == "new1"]
    assert replayed.replay_of == "a"  # linked when replayed, found when recorded
