"""A kind driver: what the contract suite needs to know about one source kind (tests/contract/README.md).

A driver configures the source (its settings and route settings as YAML), makes one native event of the kind
(a file, a mail, a record, a request, a tick), names the event by a key it can find again in what the route
receives (`keys(event)` reads an event in the kind's AWS shape), and tells whether the source acknowledged
the event, by looking where the acknowledgement lands (the source's state, the broker, the queue, the reply
the sender got). One instance serves one test; the harness sets `state_dir` before the source starts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from router.core.clock import Clock, SystemClock
from tests.support import FUNCTIONS


@dataclass
class Event:
    """One native event the driver made: `key` finds it in deliveries; `handle` is the driver's own (the
    sender's task, a Kafka offset, a Kinesis shard and sequence number, a schedule tick)."""

    key: str
    handle: Any = None


class KindDriver:
    kind: ClassVar[str]  # the registered source kind it drives
    name: ClassVar[str]  # the test id: the kind, or kind-mode for a second mode of one kind
    services: ClassVar[tuple[str, ...]] = ()  # session fixtures it needs (moto_server, kafka_broker)
    # True: the sender hears the refusal and sends again (HTTP, SMTP); False: the source keeps the event
    # and retries on its own.
    pushed: ClassVar[bool] = False

    def __init__(self, tmp_path: Path, services: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.services = services
        self.clock: Clock = SystemClock()
        self.state_dir = tmp_path / "state"
        self.functions_dir = FUNCTIONS
        self._made = 0

    def token(self) -> str:
        """A key unique to one event (and across tests sharing a broker or an emulator)."""
        self._made += 1
        return f"ev{self._made}-{uuid.uuid4().hex[:8]}"

    async def prepare(self) -> None:
        """Make what the source reads (topic, stream, table, queue) before it first starts."""

    def source_yaml(self) -> str:
        raise NotImplementedError

    def route_yaml(self) -> str:
        return ""

    async def started(self, source: Any) -> None:
        """Called after each start, once the source is ready (e.g. to learn the port it bound)."""

    async def produce(self) -> Event:
        raise NotImplementedError

    def keys(self, event: Any) -> list[str]:
        """The keys of the native events in one event the function received, in the kind's AWS shape."""
        raise NotImplementedError

    async def acknowledged(self, event: Event) -> bool:
        raise NotImplementedError

    async def retry(self, event: Event) -> Event:
        """After the function refused the event: a pushed event's sender checks it heard a refusal and sends
        the event again; otherwise the source retries on its own, and this lets the time pass it waits for."""
        return event

    async def close(self) -> None:
        """Release the driver's clients and senders."""
