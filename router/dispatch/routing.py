"""Routes bound to the running dispatcher: what a source calls to deliver an event to one function.

A config route with several functions becomes one `BoundRoute` per function. A BoundRoute knows its filter
(EventBridge pattern syntax, compiled once), the function's event format (aws or cloudevents, the route may
override), and how to call the function synchronously (`invoke`) or asynchronously (`enqueue`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from router.config import Config, RouteConfig
from router.envelope import Envelope, encoder
from router.sources.base import Outcome, Submit

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
        """Does the route take this envelope? Its event-name list (`events`), then its filter."""
        if not self._wants(envelope):
            return False
        return self.predicate is None or self.predicate(envelope)

    def _wants(self, envelope: Envelope) -> bool:
        name = envelope.record.get("eventName") if isinstance(envelope.record, dict) else None
        if name is None:
            return True
        patterns = self.config.events
        if patterns is None:
            # As S3 notifications are configured per event type, an s3 route gets creations unless it asks.
            patterns = ["ObjectCreated:*"] if self.kind == "s3" else ["*"]
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def render(self, envelopes: Sequence[Envelope]) -> bytes:
        from router.shapes import render
        from router.shapes.common import lambda_arn

        # Shapes that name the receiving function (SES's receipt.action.functionArn) get this route's.
        account = getattr(getattr(self.dispatcher, "config", None), "account", None)
        arn = lambda_arn(self.function, account.region, account.account_id) if account else None
        return encoder.encode(render(self.kind, list(envelopes), self.event_format, function_arn=arn))

    async def invoke(
        self, payload: bytes, *, trace: str | None = None, client_context: str | None = None
    ) -> InvocationResult:
        return await self.dispatcher.invoke(
            self.function, payload, trace=trace, client_context=client_context, source=self.source
        )

    async def enqueue(self, payload: bytes, *, trace: str | None = None) -> str:
        return await self.dispatcher.enqueue(self.function, payload, trace=trace, source=self.source)


def bind_routes(config: Config, source: str, dispatcher: Dispatcher) -> list[BoundRoute]:
    """The enabled routes of one source, one BoundRoute per (route, function), filters compiled once."""
    from router.dispatch.filters import compile_filter
    from router.sources import source_kind

    kind = source_kind(config.sources[source])
    bound = []
    for route in config.routes:
        if route.source != source or not route.enabled:
            continue
        predicate = compile_filter(route.filter, kind) if route.filter is not None else None
        for fn in route.functions:
            fmt = route.event_format or config.functions[fn].event_format
            bound.append(BoundRoute(source, fn, kind, route, fmt, dispatcher, predicate))
    return bound


def make_submit(routes: list[BoundRoute]) -> Submit:
    """The `submit` of asynchronously invoked sources: filter, render per function, queue durably.

    Returns once every matching delivery is queued. A DispatchError propagates: the source must not ack.
    """

    async def submit(envelopes: Sequence[Envelope]) -> Outcome:
        queued, filtered, ids = 0, 0, []
        for envelope in envelopes:
            for route in routes:
                if not route.matches(envelope):
                    filtered += 1
                    continue
                ids.append(await route.enqueue(route.render([envelope]), trace=envelope.trace))
                queued += 1
        return Outcome(queued=queued, filtered=filtered, request_ids=ids)

    return submit
