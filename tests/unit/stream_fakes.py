"""Fakes for unit tests of the stream engine: a route whose function is a Python callable, a stream kind that
records checkpoints, and a sink that keeps failure records in memory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import msgspec

from router.config import BatchConfig, OnErrorConfig, RouteConfig
from router.core.clock import Clock, SystemClock
from router.core.envelope import Envelope
from router.core.kinds import KindTraits
from router.core.results import InvocationResult
from router.sources.stream.engine import MappingSettings, StreamMapping, StreamRecord
from router.sources.stream.stats import MappingStats

Handler = Callable[[list[dict[str, Any]]], Awaitable[InvocationResult] | InvocationResult]


def ok(payload: Any = None) -> InvocationResult:
    return InvocationResult(request_id="req", payload=msgspec.json.encode(payload))


def error(message: str = "boom") -> InvocationResult:
    body = {"errorMessage": message, "errorType": "ValueError"}
    return InvocationResult(request_id="req", payload=msgspec.json.encode(body), function_error="Unhandled")


class FakeRoute:
    """A RoutePort stand-in: the 'event' is the list of records; `handler(records)` is the function."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        predicate: Callable[[Envelope], bool] | None = None,
        batch: BatchConfig | None = None,
        on_error: OnErrorConfig | None = None,
    ) -> None:
        self.source = "src"
        self.function = "fn"
        self.kind = "fake"
        self.traits = KindTraits(shape="fake", stream=True, waits_for_result=True)
        self.event_format = "aws"
        # A predicate stands for a compiled filter: the route's settings then have one, as a real route's do.
        pattern = {"predicate": ["given"]} if predicate is not None else None
        self.settings = RouteConfig(
            source="src", function="fn", batch=batch, on_error=on_error, filter=pattern
        )
        self.handler = handler or (lambda records: ok())
        self.predicate = predicate
        self.calls: list[list[int]] = []  # positions of each invocation, in call order
        self.delivered: list[dict[str, Any]] = []  # records of successful calls
        self.enqueued: list[tuple[str, bytes]] = []  # failure records sent to a function destination

    def matches(self, envelope: Envelope) -> bool:
        return self.predicate is None or self.predicate(envelope)

    async def enqueue(self, payload: bytes, *, trace: str | None = None) -> str:
        raise AssertionError("stream routes invoke synchronously")

    async def enqueue_to(self, function: str, payload: bytes) -> str:
        self.enqueued.append((function, payload))
        return f"req-{len(self.enqueued)}"

    def render(self, envelopes: Sequence[Envelope]) -> bytes:
        return msgspec.json.encode({"Records": [e.record for e in envelopes]})

    async def invoke(
        self, payload: bytes, *, trace: str | None = None, client_context: str | None = None
    ) -> InvocationResult:
        records = msgspec.json.decode(payload)["Records"]
        self.calls.append([r["position"] for r in records])
        result = self.handler(records)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, InvocationResult)
        if result.ok:
            self.delivered.extend(records)
        return result


class FakeKind:
    info_key = "FakeBatchInfo"

    def __init__(self) -> None:
        self.checkpoints: dict[str, int] = {}
        self._changed = asyncio.Event()

    def batch_info(self, partition: str, records: Sequence[StreamRecord]) -> dict[str, Any]:
        return {
            "partition": partition,
            "start": records[0].position,
            "end": records[-1].position,
            "batchSize": len(records),
        }

    def failed_position(self, identifier: Any, partition: str) -> int | None:
        try:
            return int(identifier)
        except (TypeError, ValueError):
            return None

    def checkpoint(self, partition: str, last: StreamRecord) -> None:
        self.checkpoints[partition] = last.position
        self._changed.set()

    async def reached(self, partition: str, position: int) -> None:
        while self.checkpoints.get(partition, -1) < position:
            self._changed.clear()
            await self._changed.wait()


class MemorySink:
    name = "memory"

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    async def put(self, doc: dict[str, Any], *, partition: str, first: int, last: int) -> None:
        self.docs.append(doc)

    async def aclose(self) -> None:
        return None

    def positions(self) -> list[int]:
        return [r["position"] for d in self.docs for r in d["payload"]["Records"]]


def records(
    start: int,
    count: int,
    *,
    key: Any = None,
    arrival: float | None = None,
    size: int = 10,
    keys: Callable[[int], Any] | None = None,
    value: Callable[[int], Any] | None = None,
) -> list[StreamRecord]:
    out = []
    for n in range(start, start + count):
        k = keys(n) if keys else key
        rec = {"position": n, "key": k, "value": value(n) if value else n}
        env = Envelope(
            id=str(n), source="fake", type="fake", time="", kind="fake", source_name="src", record=rec
        )
        out.append(
            StreamRecord(
                position=n, envelope=env, arrival=arrival if arrival is not None else 1e12, size=size, key=k
            )
        )
    return out


class Harness:
    def __init__(self, mapping: StreamMapping, route: FakeRoute, kind: FakeKind, sink: MemorySink) -> None:
        self.mapping, self.route, self.kind, self.sink = mapping, route, kind, sink

    async def until(self, partition: str, position: int, within_s: float = 5) -> None:
        await asyncio.wait_for(self.kind.reached(partition, position), within_s)


@contextlib.asynccontextmanager
async def harness(route: FakeRoute, clock: Clock | None = None, **settings: Any) -> AsyncIterator[Harness]:
    kind, sink = FakeKind(), MemorySink()
    defaults = {"retry_delay_s": 0.001, "throttle_delay_s": 0.001, "throttle_delay_max_s": 0.01}
    async with asyncio.TaskGroup() as tg:
        mapping = StreamMapping(
            route,
            kind,
            MappingSettings(**(defaults | settings)),
            sink=sink,  # type: ignore[arg-type]
            clock=clock or SystemClock(),
            stats=MappingStats("src", "fn"),
            tasks=tg,
        )
        try:
            yield Harness(mapping, route, kind, sink)
        finally:
            await mapping.close_all(0)
