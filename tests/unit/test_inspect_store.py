"""router/record/memory.py: the bounded rings, the cursor, the views, waiting and long polls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from router.core.results import InvocationResult
from router.dispatch.filters import compile_patterns
from router.dispatch.loops import StoppedCall
from router.dispatch.stats import Call
from router.record.memory import InspectStore, view


def record(store: InspectStore, function: str, event: Any, *, fail: bool = False, **call: Any) -> None:
    payload = json.dumps(event).encode()
    c = Call(request_id=f"r{store.cursor + 1}", payload=payload, function=function,
             started_at=1_700_000_000.5, trace_id="Root=1-a-b;Lineage=0:2", **call)  # fmt: skip
    result = InvocationResult(
        request_id=c.request_id,
        payload=b'{"errorType": "E", "errorMessage": "boom"}' if fail else b'{"ok": true}',
        function_error="Unhandled" if fail else None,
        error_type="E" if fail else None,
        duration_ms=1.25,
        billed_ms=2,
        cold=True,
    )
    store.record_result(function, c, result)


async def test_views_rings_and_cursor() -> None:
    store = InspectStore(ring_size=3)
    assert store.cursor == 0 and await store.recent() == []
    for n in range(5):
        record(store, "f", {"n": n}, source="uploads", invocation_type="Event", attempt=2)
    record(store, "g", {"n": 9}, fail=True)
    assert store.cursor == 6 and await store.functions() == {"f": 3, "g": 1}
    assert [i.seq for i in await store.recent("f")] == [3, 4, 5]  # the two oldest fell out
    assert [i.seq for i in await store.recent()] == [3, 4, 5, 6]  # every function, in order
    assert [i.seq for i in await store.recent(after=4)] == [5, 6]
    assert [i.seq for i in await store.recent(limit=1)] == [6]
    assert [i.seq for i in await store.recent(source="uploads")] == [3, 4, 5]
    assert view((await store.recent("f"))[0]) == {
        "seq": 3, "function": "f", "request_id": "r3", "source": "uploads", "invocation_type": "Event",
        "attempt": 2, "time": "2023-11-14T22:13:20.500Z", "duration_ms": 1.25, "billed_ms": 2,
        "init_ms": None, "memory_mb": 128, "max_memory_mb": 0, "outcome": "success", "error_type": None,
        "cold": True, "trace": "Root=1-a-b;Lineage=0:2", "depth": 3, "fault": None, "replay_of": None,
        "event": {"n": 2}, "result": {"ok": True},
    }  # fmt: skip
    failed = view((await store.recent("g"))[0])
    assert (failed["outcome"], failed["error_type"], failed["result"]["errorMessage"]) == (
        "error",
        "E",
        "boom",
    )


async def test_long_payloads_are_kept_truncated_and_text_stays_text() -> None:
    store = InspectStore(max_payload_bytes=16)
    record(store, "f", {"long": "x" * 100})
    v = view((await store.recent())[0])
    assert v["event"] == {"truncated": True, "size": 112, "head": '{"long": "xxxxxx'} and v["result"] == {
        "ok": True
    }
    store.record_stopped(StoppedCall("f", "Event", "invoke", "Root=1-a;Lineage=0:16", 17, b"not json", 5.0))
    stopped = view((await store.recent())[-1])
    assert (stopped["outcome"], stopped["depth"], stopped["event"], stopped["result"]) == (
        "loop-stopped", 17, "not json", None,
    )  # fmt: skip


async def test_wait_finds_what_is_there_or_what_comes_and_times_out() -> None:
    store = InspectStore()
    record(store, "f", {"n": 1})
    wants_two = compile_patterns({"event": {"n": [2]}})
    assert (await store.wait("f", compile_patterns({"event": {"n": [1]}}), 0, 0.0)).seq == 1  # type: ignore[union-attr]
    assert await store.wait("f", wants_two, 0, 0.01) is None
    waiting = asyncio.ensure_future(store.wait("f", wants_two, store.cursor, 5))
    await asyncio.sleep(0)
    record(store, "g", {"n": 2})  # another function's: not it
    record(store, "f", {"n": 3})
    record(store, "f", {"n": 2})
    found = await waiting
    assert found is not None and found.seq == 4
    any_function = asyncio.ensure_future(store.wait(None, wants_two, 4, 5))
    await asyncio.sleep(0)
    record(store, "h", {"n": 2})
    assert (await any_function).function == "h"  # type: ignore[union-attr]


async def test_since_long_polls_and_close_releases_it() -> None:
    store = InspectStore()
    assert await store.since(None, 0, 0.01) == []
    polling = asyncio.ensure_future(store.since("f", 0, 5))
    await asyncio.sleep(0)
    record(store, "f", {"n": 1})
    assert [i.seq for i in await polling] == [1]
    other_source = asyncio.ensure_future(store.since("f", 1, 0.05, source="clicks"))
    await asyncio.sleep(0)
    record(store, "f", {"n": 2})  # not from clicks: the poll goes on, and times out empty
    assert await other_source == []
    blocked = asyncio.ensure_future(store.since("f", 2, 60))
    await asyncio.sleep(0)
    store.close()
    assert await asyncio.wait_for(blocked, 1) == []
