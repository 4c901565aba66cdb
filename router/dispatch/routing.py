"""Routes bound to the running dispatcher: what a source calls to deliver an event to one function.

A config route with several functions becomes one `BoundRoute` per function. A BoundRoute knows its filter
(EventBridge pattern syntax, compiled once), the function's event format (aws or cloudevents, the route may
override), and how to call the function synchronously (`invoke`) or asynchronously (`enqueue`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from router.config import RouteConfig
from router.envelope import Envelope, encoder

if TYPE_CHECKING:
    from router.dispatch.dispatcher import Dispatcher
    from router.invoker.types import InvocationResult


@dataclass
class BoundRoute:
    source: str
    function: str
    kind: str  # the source's kind
    config: RouteConfig
    event_format: str  # "aws" | "cloudevents"
    dispatcher: Dispatcher
    predicate: Callable[[Any], bool] | None = None  # from router.dispatch.filters.compile_filter

    def matches(self, envelope: Envelope) -> bool:
        """Does the route's filter pass this envelope (its native record, as the function would see it)?"""
        return self.predicate is None or self.predicate(envelope)

    def render(self, envelopes: Sequence[Envelope]) -> bytes:
        from router.shapes import render

        return encoder.encode(render(self.kind, list(envelopes), self.event_format))

    async def invoke(
        self, payload: bytes, *, trace: str | None = None, client_context: str | None = None
    ) -> InvocationResult:
        return await self.dispatcher.invoke(self.function, payload, trace=trace, client_context=client_context)

    async def enqueue(self, payload: bytes, *, trace: str | None = None) -> str:
        return await self.dispatcher.enqueue(self.function, payload, trace=trace, source=self.source)
