"""The source contract, and the ports a source is given.

A source turns native events (a file, a Kafka record, a mail, a tick, an HTTP request) into envelopes and
settles the native event only once the outcome is known. Every source kind has the same shape:

* `create(ctx: SourceContext) -> Source` builds it (the kind's package exports `create`); nothing runs and
  nothing binds until `run`.
* `async run()` produces events until cancelled. Pull-style sources loop inside it; push-style sources (HTTP,
  SMTP) start their server in it and wait. `run` returns only when cancelled or on a fatal error. It calls
  `ctx.ready()` once it listens or is subscribed.
* Everything a source delivers goes through its routes, `ctx.routes`: one `RoutePort` per (route,
  function). A source that does not wait for the result (S3, email, schedules) calls `ctx.submit(envelopes)`,
  which filters, renders and queues each event durably for every matching route (`RoutePort.enqueue`). When
  it returns the events are safe; only then may the source acknowledge (answer SMTP 250, delete the SQS
  message, record the file as announced). A source that needs the result (HTTP, streams) renders with
  `RoutePort.render` and calls `RoutePort.invoke`.
* A `DispatchError` from either means nothing was accepted (throttled, shutting down, no such function):
  do not acknowledge, back off, retry. A function error is data in the `InvocationResult`, never an
  exception.
* `ctx.stopping` is set when the daemon stops the source (just before `run` is cancelled).
* `async aclose()` is idempotent and releases everything `run` acquired.
* `ctx.status` (a `SourceStatus`) is where a source may publish what it knows of itself beyond its events
  (a stream mapping's counters, lag and checkpoints per partition) for the console; optional, never waited on.

A source never loses an event it has acknowledged; an ungraceful stop may cause duplicates, never drops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from router.core.backends import SourceBackends
from router.core.clock import Clock
from router.core.envelope import Envelope
from router.core.kinds import KindTraits
from router.core.results import InvocationResult
from router.core.writes import WriteJournal


@dataclass(frozen=True)
class Delivery:
    """What submit did: how many (envelope, function) deliveries were queued, how many filtered out."""

    queued: int = 0
    filtered: int = 0
    request_ids: list[str] = field(default_factory=list)


Submit = Callable[[Sequence[Envelope]], Awaitable[Delivery]]


class RoutePort(Protocol):
    """A source's handle on one function of one route: match, render, call. No way to reach anything else.

    `settings` is the route's config (router.config.RouteConfig): filter, batch, on_error, http, events.
    """

    source: str
    function: str
    kind: str  # the source's kind
    traits: KindTraits
    settings: Any
    event_format: str  # "aws" | "cloudevents"

    def matches(self, envelope: Envelope) -> bool: ...

    def render(self, envelopes: Sequence[Envelope]) -> bytes: ...

    async def invoke(
        self, payload: bytes, *, trace: str | None = None, client_context: str | None = None
    ) -> InvocationResult: ...

    async def enqueue(self, payload: bytes, *, trace: str | None = None) -> str: ...

    async def enqueue_to(self, function: str, payload: bytes) -> str:
        """Queue an asynchronous event for another function: a failure destination of type function."""
        ...


class Source(Protocol):
    async def run(self) -> None: ...

    async def aclose(self) -> None: ...


async def submit_to(routes: Sequence[RoutePort], envelopes: Sequence[Envelope]) -> Delivery:
    """The `submit` of asynchronously invoked sources: filter, render per function, queue durably.

    Returns once every matching delivery is queued. A DispatchError propagates: the source must not ack.
    """
    queued, filtered, ids = 0, 0, []
    for envelope in envelopes:
        for route in routes:
            if not route.matches(envelope):
                filtered += 1
                continue
            ids.append(await route.enqueue(route.render([envelope]), trace=envelope.trace))
            queued += 1
    return Delivery(queued=queued, filtered=filtered, request_ids=ids)


def _never_ready() -> None:
    return None


class SourceStatus:
    """Snapshots a running source publishes about itself, read by the console (router/control/console/).

    `publish(key, snapshot)` names a callable returning a JSON-able dict (one per route or mapping, keyed by
    its function); `withdraw(key)` when that part stops; `snapshot()` calls each of them now. A snapshot that
    fails is reported as `{"error": ...}`: reading status never breaks a source.
    """

    def __init__(self) -> None:
        self._parts: dict[str, Callable[[], dict[str, Any]]] = {}

    def publish(self, key: str, snapshot: Callable[[], dict[str, Any]]) -> str:
        """Publish under `key` (`key#2`, ... when taken); returns the key to withdraw."""
        unique, n = key, 1
        while unique in self._parts:
            n += 1
            unique = f"{key}#{n}"
        self._parts[unique] = snapshot
        return unique

    def withdraw(self, key: str) -> None:
        self._parts.pop(key, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, part in list(self._parts.items()):
            try:
                out[key] = part()
            except Exception as e:  # a status reader must not break the source it reads
                out[key] = {"error": f"{type(e).__name__}: {e}"}
        return out


@dataclass
class SourceContext:
    """Everything a source gets from the daemon: the same for every kind."""

    name: str
    config: Any  # the kind's Config Struct (router.config.sources)
    routes: list[RoutePort]
    state_dir: Path  # <state_dir>/sources/<name>, created by the daemon; the source's own durable state
    clock: Clock
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    metrics: Any = None  # router.metrics.Metrics, for source lag and counters
    ready: Callable[[], None] = _never_ready  # call once the source listens / is subscribed (for /readyz)
    # Await until these asynchronous invocations (request ids from Delivery) have finished: succeeded, failed
    # for good or were dropped; ids the dispatcher does not know count as finished. None: not available.
    # The schedule source uses it for `overlap: false`.
    settled: Callable[[Sequence[str]], Awaitable[None]] | None = None
    # The config file's folder (Config.base_dir): relative paths in a source's settings resolve against it.
    base_dir: Path = Path(".")
    # The seams chosen by the daemon (router.core.backends): checkpoints, shard ownership, schedule ticks.
    # None: the source uses today's local implementations (tests and benchmarks build contexts without).
    backends: SourceBackends | None = None
    # Who wrote what into the router's own sources (loop protection for events that carry no trace,
    # router/core/writes.py). None: no journal (tests and benchmarks).
    writes: WriteJournal | None = None
    # Deliver envelopes asynchronously to every matching route; by default `submit_to(self.routes, ...)`.
    # Given explicitly only by tests and benchmarks that count what a source submits.
    submit: Submit = None  # type: ignore[assignment]
    # What the source publishes about itself for the console (see SourceStatus); the daemon reads it.
    status: SourceStatus = field(default_factory=SourceStatus)
    # Several processes listen on the source's port (SO_REUSEPORT): the router's front processes serve the
    # HTTP gateway too (router/processes.py). Only listeners that serve calls whole (http) read it.
    reuse_port: bool = False

    def __post_init__(self) -> None:
        if self.submit is None:
            routes = self.routes

            async def submit(envelopes: Sequence[Envelope]) -> Delivery:
                return await submit_to(routes, envelopes)

            self.submit = submit
