"""The SQS poller's rules (router/sources/sqs/poller.py) on an in-memory queue: what is deleted after each
outcome, FIFO groups kept in order behind a failure, filtered messages, batching, dispatch errors until the
visibility timeout, recursive loops. The route is a real bound route from config text; the function a fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from router.core.clock import SystemClock
from router.core.errors import LoopDetected, Throttled
from router.core.ports import SourceContext
from router.core.results import InvocationResult
from router.dispatch.routing import bind_routes
from router.sources.sqs.poller import RoutePoller
from router.validate import parse_config
from tests.support import wait_until

Handler = Callable[[list[dict[str, Any]]], Any]
_ids = itertools.count(1)


def message(body: str, group: str | None = None) -> dict[str, Any]:
    n = next(_ids)
    attributes = {"SentTimestamp": "1700000000000", "ApproximateReceiveCount": "1"}
    if group is not None:
        attributes["MessageGroupId"] = group
    return {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body, "Attributes": attributes}


class MemoryQueue:
    """The poller's view of a queue (router.sources.sqs.queue.Queue), in memory."""

    arn = "arn:aws:sqs:us-east-1:123456789012:q"
    url = "memory://q"
    dead_letter_arn = None

    def __init__(
        self, messages: list[dict[str, Any]], *, fifo: bool = False, visibility_s: float = 30
    ) -> None:
        self.pending = list(messages)
        self.fifo = fifo
        self.visibility_timeout_s = visibility_s
        self.deleted: list[str] = []
        self.dead: list[str] = []

    async def receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        if not self.pending:
            await asyncio.sleep(0.01)
            return []
        out, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        return out

    async def delete(self, messages: list[dict[str, Any]]) -> None:
        self.deleted += [m["Body"] for m in messages]

    async def release(self, messages: list[dict[str, Any]]) -> None:
        self.pending[:0] = messages

    async def dead_letter(self, messages: list[dict[str, Any]]) -> bool:
        self.dead += [m["Body"] for m in messages]
        return True


class FakeFunction:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[list[str]] = []

    async def invoke(self, function: str, payload: bytes, **_: Any) -> InvocationResult:
        records = msgspec.json.decode(payload)["Records"]
        self.calls.append([r["body"] for r in records])
        answer = self.handler(records)
        if isinstance(answer, InvocationResult):
            return answer
        return InvocationResult(request_id="req", payload=msgspec.json.encode(answer))

    async def enqueue(self, function: str, payload: bytes, **_: Any) -> str:
        raise AssertionError("sqs routes invoke synchronously")


def failures(*ids: str) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}


@contextlib.asynccontextmanager
async def polling(
    tmp_path: Path, queue: MemoryQueue, handler: Handler, route: str = ""
) -> AsyncIterator[FakeFunction]:
    config = parse_config(
        f"""
functions:
  fn: {{runtime: python3.11, handler: app.handler, code: "{tmp_path}"}}
sources:
  q: {{kind: sqs, queue: q}}
routes:
  - {{source: q, function: fn{route}}}
""",
        base_dir=tmp_path,
    )
    fn = FakeFunction(handler)
    [bound] = bind_routes(config, "q", fn)
    ctx = SourceContext(
        name="q", config=config.sources["q"], routes=[bound], state_dir=tmp_path, clock=SystemClock()
    )
    poller = RoutePoller(ctx, bound, queue, max_concurrency=None, wait_time_s=1, stop_grace_s=1)  # type: ignore[arg-type]
    task = asyncio.ensure_future(poller.run(lambda: None))
    try:
        yield fn
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("def handler(e, c): return e\n")
    return tmp_path


REPORT = ", batch: {size: 10, window_s: 0.2}, on_error: {report_batch_item_failures: true}"


async def test_a_partial_batch_response_keeps_only_the_reported_messages(code: Path) -> None:
    msgs = [message("one"), message("two"), message("three")]
    queue = MemoryQueue(msgs)
    async with polling(code, queue, lambda records: failures(msgs[1]["MessageId"]), REPORT) as fn:
        await wait_until(lambda: len(queue.deleted) == 2, lambda: f"deleted {queue.deleted}")
    assert fn.calls == [["one", "two", "three"]]
    assert queue.deleted == ["one", "three"]


async def test_a_fifo_failure_keeps_the_later_messages_of_its_group(code: Path) -> None:
    msgs = [message("a1", "a"), message("b1", "b"), message("a2", "a"), message("b2", "b")]
    queue = MemoryQueue(msgs, fifo=True)
    async with polling(code, queue, lambda records: failures(msgs[0]["MessageId"]), REPORT) as fn:
        await wait_until(lambda: len(queue.deleted) == 2, lambda: f"deleted {queue.deleted}")
    assert fn.calls == [["a1", "b1", "a2", "b2"]]
    assert queue.deleted == ["b1", "b2"]  # a2 stays behind a1, in order


async def test_an_identifier_that_names_no_message_fails_the_whole_batch(code: Path) -> None:
    queue = MemoryQueue([message("one"), message("two")])
    async with polling(code, queue, lambda records: failures("not-a-message-id"), REPORT) as fn:
        await wait_until(lambda: fn.calls, "a call")
        await asyncio.sleep(0.2)  # let a wrong delete show (nothing can be awaited for an absence)
    assert queue.deleted == []


async def test_a_function_error_deletes_nothing(code: Path) -> None:
    error = InvocationResult(
        request_id="req", payload=b'{"errorMessage": "boom"}', function_error="Unhandled"
    )
    queue = MemoryQueue([message("one")])
    async with polling(code, queue, lambda records: error, REPORT) as fn:
        await wait_until(lambda: fn.calls, "a call")
        await asyncio.sleep(0.2)
    assert queue.deleted == []


async def test_messages_the_filter_does_not_take_are_deleted_without_a_call(code: Path) -> None:
    queue = MemoryQueue([message('{"t": "refund"}'), message('{"t": "order"}')])
    async with polling(code, queue, lambda records: None, ", filter: {body: {t: [order]}}") as fn:
        await wait_until(lambda: len(queue.deleted) == 2, lambda: f"deleted {queue.deleted}")
    assert fn.calls == [['{"t": "order"}']]


async def test_batches_close_at_the_batch_size(code: Path) -> None:
    queue = MemoryQueue([message(str(i)) for i in range(7)])
    route = ", batch: {size: 3, window_s: 0.3}"
    async with polling(code, queue, lambda records: None, route) as fn:
        await wait_until(lambda: len(queue.deleted) == 7, lambda: f"deleted {queue.deleted}")
    assert sorted(len(c) for c in fn.calls) == [1, 3, 3]


async def test_a_dispatch_error_is_retried_until_the_visibility_timeout_ends(code: Path) -> None:
    def throttled(records: list[dict[str, Any]]) -> Any:
        raise Throttled("busy")

    queue = MemoryQueue([message("one")], visibility_s=0.5)
    async with polling(code, queue, throttled) as fn:
        await wait_until(lambda: len(fn.calls) >= 2, "a second try")
        await asyncio.sleep(0.8)  # past the visibility timeout: the poller let go of the batch
        calls = len(fn.calls)
        await asyncio.sleep(0.3)
        assert len(fn.calls) == calls
    assert queue.deleted == []


async def test_a_recursive_loop_dead_letters_the_batch(code: Path) -> None:
    def loop(records: list[dict[str, Any]]) -> Any:
        raise LoopDetected("too deep")

    queue = MemoryQueue([message("one")])
    async with polling(code, queue, loop) as fn:
        await wait_until(lambda: queue.deleted == ["one"], lambda: f"deleted {queue.deleted}")
    assert queue.dead == ["one"] and len(fn.calls) == 1
