"""The source contract.

A source turns native events (a file, a Kafka record, a mail, a tick, an HTTP request) into envelopes and
settles the native event only once the outcome is known:

* `create(ctx)` builds it; nothing runs and nothing binds until `run`.
* `async run(submit)` produces events until cancelled. Pull-style sources loop inside it; push-style sources
  (HTTP, SMTP) start their server in it and wait. `run` returns only when cancelled or on a fatal error.
* `submit(envelopes) -> Outcome` is given by the daemon (`SourceContext.submit`): it matches each envelope
  against the source's routes, renders the event per function and queues it durably for asynchronous
  invocation. When it returns, the events are safe; only then may the source acknowledge (answer SMTP 250,
  delete the SQS message, record the file as announced). A `DispatchError` from it means nothing was
  accepted: do not acknowledge, back off, retry.
* Synchronous sources (HTTP) and stream sources (Kafka, Kinesis, DynamoDB) call `ctx.routes[i].invoke(...)`
  themselves, because they need the result (the HTTP reply, the batch outcome).
* `async aclose()` is idempotent and releases everything `run` acquired.

A source never loses an event it has acknowledged; an ungraceful stop may cause duplicates, never drops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from router.clock import Clock
    from router.dispatch.routing import BoundRoute
    from router.envelope import Envelope


@dataclass(frozen=True)
class Outcome:
    """What submit did: how many (envelope, function) deliveries were queued, how many filtered out."""

    queued: int = 0
    filtered: int = 0
    request_ids: list[str] = field(default_factory=list)


Submit = Callable[["Sequence[Envelope]"], Awaitable[Outcome]]


class Source(Protocol):
    async def run(self, submit: Submit) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class SourceContext:
    """Everything a source gets from the daemon."""

    name: str
    config: Any  # the kind's Config Struct
    routes: list[BoundRoute]
    state_dir: Path  # <state_dir>/sources/<name>, created by the daemon; the source's own durable state
    clock: Clock
    submit: Submit
    region: str = "us-east-1"
    account_id: str = "123456789012"
    metrics: Any = None  # router.metrics.Metrics, for source lag and counters
    ready: Callable[[], None] = lambda: None  # call once the source listens / is subscribed (for /readyz)
    # Await until these asynchronous invocations (request ids from Outcome) have finished: succeeded, failed
    # for good or were dropped; ids the dispatcher does not know count as finished. None: not available.
    # The schedule source uses it for `overlap: false`.
    settled: Callable[[Sequence[str]], Awaitable[None]] | None = None
    # The config file's folder (Config.base_dir): relative paths in a source's settings resolve against it.
    base_dir: Path = Path(".")
