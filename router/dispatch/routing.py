"""Routes bound to the running dispatcher: the `RoutePort`s (router/core/ports.py) a source delivers through.

A config route with several functions becomes one `BoundRoute` per function. A BoundRoute knows its filter
(EventBridge pattern syntax, compiled once), its kind's traits, the function's event format (aws or
cloudevents, the route may override), and how to call the function synchronously (`invoke`) or
asynchronously (`enqueue`, and `enqueue_to` for failure destinations of type function). It holds those
calls, not the dispatcher: a source can reach nothing else through it.

A route's function may pin a published version or an alias (`function: resize:live`): the BoundRoute's
`function` is then the plain name and `qualifier` the version or alias every call of the route names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from router.config import Config, RouteConfig, split_qualifier
from router.config.sources import traits_of
from router.core.arn import lambda_arn
from router.core.envelope import Envelope, encoder
from router.core.kinds import KindTraits
from router.core.results import InvocationResult


class Calls(Protocol):
    """The two calls a route needs from the dispatcher (`Dispatcher` satisfies it)."""

    def invoke(
        self,
        function: str,
        payload: bytes,
        *,
        client_context: str | None = None,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
    ) -> Awaitable[InvocationResult]: ...

    def enqueue(
        self,
        function: str,
        payload: bytes,
        *,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
    ) -> Awaitable[str]: ...


@dataclass
class BoundRoute:
    source: str
    function: str
    kind: str  # the source's kind
    traits: KindTraits
    settings: RouteConfig
    event_format: str  # "aws" | "cloudevents"
    calls: Calls
    function_arn: str | None = None  # shapes that name the receiving function (SES's receipt action)
    predicate: Callable[[Any], bool] | None = None  # from router.dispatch.filters.compile_filter
    qualifier: str | None = None  # a published version or alias the route pins (`function: name:qualifier`)

    def matches(self, envelope: Envelope) -> bool:
        """Does the route take this envelope? Its event-name list (`events`), then its filter."""
        if not self._wants(envelope):
            return False
        return self.predicate is None or self.predicate(envelope)

    def _wants(self, envelope: Envelope) -> bool:
        name = envelope.record.get("eventName") if isinstance(envelope.record, dict) else None
        if name is None:
            return True
        patterns = self.settings.events if self.settings.events is not None else self.traits.default_events
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def render(self, envelopes: Sequence[Envelope]) -> bytes:
        from router.shapes import render

        event = render(self.traits.shape, list(envelopes), self.event_format, function_arn=self.function_arn)
        return encoder.encode(event)

    async def invoke(
        self, payload: bytes, *, trace: str | None = None, client_context: str | None = None
    ) -> InvocationResult:
        return await self.calls.invoke(
            self.function,
            payload,
            trace=trace,
            client_context=client_context,
            source=self.source,
            **self._pinned(),
        )

    async def enqueue(self, payload: bytes, *, trace: str | None = None) -> str:
        return await self.calls.enqueue(
            self.function, payload, trace=trace, source=self.source, **self._pinned()
        )

    def _pinned(self) -> dict[str, str]:
        # Only when the route pins one: a Calls implementation without versions need not take the keyword.
        return {"qualifier": self.qualifier} if self.qualifier else {}

    async def enqueue_to(self, function: str, payload: bytes) -> str:
        name, qualifier = split_qualifier(function)
        pinned = {"qualifier": qualifier} if qualifier else {}
        return await self.calls.enqueue(name, payload, source=self.source, **pinned)


def bind_routes(config: Config, source: str, calls: Calls) -> list[BoundRoute]:
    """The enabled routes of one source, one BoundRoute per (route, function), filters compiled once."""
    from router.dispatch.filters import compile_filter

    settings = config.sources[source]
    kind, traits = settings.kind_name(), traits_of(settings)
    bound = []
    for route in config.routes:
        if route.source != source or not route.enabled:
            continue
        predicate = compile_filter(route.filter, traits) if route.filter is not None else None
        for target in route.functions:
            fn, qualifier = split_qualifier(target)
            known = config.functions.get(fn)  # None: deployed through the API (event format aws)
            fmt = route.event_format or (known.event_format if known is not None else "aws")
            arn = lambda_arn(fn, config.account.region, config.account.account_id)
            bound.append(BoundRoute(source, fn, kind, traits, route, fmt, calls, arn, predicate, qualifier))
    return bound
