"""Routes bound to the running dispatcher: the `RoutePort`s (router/core/ports.py) a source delivers through.

A config route with several functions becomes one `BoundRoute` per function. A BoundRoute knows its filter
(EventBridge pattern syntax, compiled once), its kind's traits, the function's event format (aws or
cloudevents, the route may override), and how to call the function synchronously (`invoke`) or
asynchronously (`enqueue`, and `enqueue_to` for failure destinations of type function). It holds those
calls, not the dispatcher: a source can reach nothing else through it.

A route's function may pin a published version or an alias (`function: resize:live`): the BoundRoute's
`function` is then the plain name and `qualifier` the version or alias every call of the route names.

`RouteHooks` (the dispatcher's `route_hooks()`, taken by `bind_routes` when the calls offer it) are what a
route reports and draws from, so every source kind gets them without code of its own:

* `on_accepted`: every event the route delivered (queued, or invoked with a result) is announced as a
  `router.core.backends.AcceptedEvent` (the record keeps them);
* `faults`: the source's injected faults (router/dispatch/faults.py) are applied here: `duplicate` delivers
  twice, `drop_ack` raises `FaultInjected` after the delivery (the source does not acknowledge and delivers
  again), `reorder` delays queued events and shuffles the envelopes of a rendered batch.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from router.config import Config, RouteConfig, split_qualifier
from router.config.sources import traits_of
from router.core.arn import lambda_arn
from router.core.backends import AcceptedEvent
from router.core.envelope import Envelope, encoder
from router.core.kinds import KindTraits
from router.core.results import InvocationResult

if TYPE_CHECKING:
    from router.core.clock import Clock
    from router.dispatch.faults import Faults, SourceDraw


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
        delay_s: float = 0.0,
    ) -> Awaitable[str]: ...


@dataclass(frozen=True)
class RouteHooks:
    faults: Faults | None = None
    on_accepted: Sequence[Callable[[AcceptedEvent], None]] = ()  # the dispatcher's live list
    clock: Clock | None = None


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
    hooks: RouteHooks = field(default_factory=RouteHooks)

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

        listed = list(envelopes)
        if self.hooks.faults is not None:
            listed = self.hooks.faults.shuffled(self.source, listed)
        event = render(self.traits.shape, listed, self.event_format, function_arn=self.function_arn)
        return encoder.encode(event)

    async def invoke(
        self, payload: bytes, *, trace: str | None = None, client_context: str | None = None
    ) -> InvocationResult:
        draw = self.hooks.faults.source_draw(self.source) if self.hooks.faults is not None else None
        for attempt in range(2 if draw is not None and draw.duplicate else 1):
            result = await self.calls.invoke(
                self.function,
                payload,
                trace=trace,
                client_context=client_context,
                source=self.source,
                qualifier=self.qualifier,
            )
            self._accepted(result.request_id, payload, trace, "invoked", _fault(draw, attempt, 0.0))
        self._after(draw, payload, trace)
        return result

    async def enqueue(self, payload: bytes, *, trace: str | None = None) -> str:
        draw = self.hooks.faults.source_draw(self.source) if self.hooks.faults is not None else None
        if draw is None:
            request_id = await self.calls.enqueue(
                self.function, payload, trace=trace, source=self.source, qualifier=self.qualifier
            )
            self._accepted(request_id, payload, trace, "queued", None)
            return request_id
        for attempt in range(2 if draw.duplicate else 1):
            request_id = await self.calls.enqueue(
                self.function,
                payload,
                trace=trace,
                source=self.source,
                delay_s=draw.delay_s,
                qualifier=self.qualifier,
            )
            self._accepted(request_id, payload, trace, "queued", _fault(draw, attempt, draw.delay_s))
        self._after(draw, payload, trace)
        return request_id

    def _accepted(
        self, request_id: str, payload: bytes, trace: str | None, mode: str, fault: str | None
    ) -> None:
        if not self.hooks.on_accepted:
            return
        now = self.hooks.clock.time() if self.hooks.clock is not None else time.time()
        event = AcceptedEvent(
            request_id=request_id, source=self.source, function=self.function, time=now, mode=mode,
            trace=trace, fault=fault, payload=payload,
        )  # fmt: skip
        for hook in list(self.hooks.on_accepted):
            hook(event)

    def _after(self, draw: SourceDraw | None, payload: bytes, trace: str | None) -> None:
        """Count the source faults of a delivery that happened; a dropped ack is raised to the source."""
        if draw is None or self.hooks.faults is None:
            return
        from router.dispatch.faults import DROP_ACK, DUPLICATE, REORDER, FaultInjected, Injected

        now = self.hooks.clock.time() if self.hooks.clock is not None else time.time()
        for kind, happened in (
            (DUPLICATE, draw.duplicate),
            (REORDER, draw.delay_s > 0),
            (DROP_ACK, draw.drop_ack),
        ):
            if happened:
                self.hooks.faults.injected(
                    Injected(kind, self.function, self.source, now, None, payload, trace)
                )
        if draw.drop_ack:
            raise FaultInjected(
                f"{self.source} -> {self.function}: acknowledgement dropped (faults.drop_ack)"
            )

    async def enqueue_to(self, function: str, payload: bytes) -> str:
        name, qualifier = split_qualifier(function)
        return await self.calls.enqueue(name, payload, source=self.source, qualifier=qualifier or None)


def _fault(draw: SourceDraw | None, attempt: int, delay_s: float) -> str | None:
    """How the record marks one delivery of a faulted route call."""
    if draw is None:
        return None
    if attempt > 0:
        return "duplicate"
    if draw.drop_ack:
        return "drop_ack"
    return "reorder" if delay_s > 0 else None


def bind_routes(
    config: Config, source: str, calls: Calls, hooks: RouteHooks | None = None
) -> list[BoundRoute]:
    """The enabled routes of one source, one BoundRoute per (route, function), filters compiled once.
    `hooks` default to the calls' own (`calls.route_hooks()`, the dispatcher's) when they offer them."""
    from router.dispatch.filters import compile_filter

    if hooks is None:
        offered = getattr(calls, "route_hooks", None)
        hooks = offered() if callable(offered) else RouteHooks()

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
            bound.append(
                BoundRoute(source, fn, kind, traits, route, fmt, calls, arn, predicate, qualifier, hooks)
            )
    return bound
