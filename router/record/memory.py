"""The invocation record in memory: each function's recent invocations in a bounded ring.

The `router.core.backends.InvocationRecord` used with `record: {enabled: false}` (and by tests and
benchmarks that want no disk): nothing survives a restart.

Contract (beyond the seam's, router/record/base.py):

* `InspectStore(ring_size=..., max_payload_bytes=...)`: at most `ring_size` invocations per function (the
  oldest fall out) and as many accepted events; an event or a result longer than `max_payload_bytes` is
  kept truncated (its view says so, with the full size), so a replay skips it.
* Recording is O(1) and keeps references to the payload bytes the dispatcher already holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from router.core.backends import AcceptedEvent, Invocation, Predicate, Recorded, RecordQuery
from router.record.base import PAGE, RecordBase
from router.record.views import ERROR, LOOP_STOPPED, SUCCESS, view

__all__ = ["ERROR", "LOOP_STOPPED", "SUCCESS", "InspectStore", "Invocation", "Predicate", "view"]


class InspectStore(RecordBase):
    """The InvocationRecord in memory: a ring per function."""

    def __init__(
        self, *, ring_size: int = 100, max_payload_bytes: int = 256 * 1024, log_bytes: int = 4096
    ) -> None:
        super().__init__(log_bytes=log_bytes)
        self.ring_size = ring_size
        self.max_payload_bytes = max_payload_bytes
        self._rings: dict[str, deque[Invocation]] = {}
        self._accepted: dict[str, deque[AcceptedEvent]] = {}
        self._links: dict[str, str] = {}

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        self.close()

    def _add(self, invocation: Invocation) -> None:
        limit = self.max_payload_bytes
        if len(invocation.event) > limit:
            invocation.event = invocation.event[:limit]
        if len(invocation.result) > limit:
            invocation.result = invocation.result[:limit]
        invocation.replay_of = self._links.get(invocation.request_id)
        ring = self._rings.get(invocation.function)
        if ring is None:
            ring = self._rings[invocation.function] = deque(maxlen=self.ring_size)
        ring.append(invocation)

    def _accept(self, event: AcceptedEvent) -> None:
        ring = self._accepted.get(event.function)
        if ring is None:
            ring = self._accepted[event.function] = deque(maxlen=self.ring_size)
        ring.append(event)

    def link(self, request_id: str, original: str) -> None:
        self._links[request_id] = original
        if len(self._links) > 10 * self.ring_size:
            self._links.pop(next(iter(self._links)))
        for invocation in self._iter(None):
            if invocation.request_id == request_id:
                invocation.replay_of = original

    # -- reading ------------------------------------------------------------------------------------------

    async def functions(self) -> dict[str, int]:
        """Function -> how many invocations its ring holds."""
        return {name: len(ring) for name, ring in sorted(self._rings.items())}

    async def recent(
        self,
        function: str | None = None,
        *,
        after: int = 0,
        limit: int | None = None,
        source: str | None = None,
    ) -> list[Invocation]:
        """Invocations after the cursor (only from `source` when given), oldest first: the newest `limit`
        of them when given, else the first PAGE."""
        found = [i for i in self._iter(function) if i.seq > after and (source is None or i.source == source)]
        if function is None:
            found.sort(key=lambda i: i.seq)
        return found[-limit:] if limit is not None and limit >= 0 else found[:PAGE]

    def _iter(self, function: str | None) -> Iterator[Invocation]:
        if function is not None:
            yield from self._rings.get(function, ())
            return
        for ring in self._rings.values():
            yield from ring

    async def request(self, request_id: str) -> tuple[list[AcceptedEvent], list[Invocation]]:
        accepted = [e for ring in self._accepted.values() for e in ring if e.request_id == request_id]
        invocations = sorted((i for i in self._iter(None) if i.request_id == request_id), key=lambda i: i.seq)
        return accepted, invocations

    async def select(self, query: RecordQuery) -> list[Recorded]:
        latest: dict[str, Invocation] = {}
        for invocation in sorted(self._iter(query.function), key=lambda i: i.seq):
            if invocation.request_id and _matches(invocation, query):
                latest[invocation.request_id] = invocation  # later attempts replace earlier ones
        accepted = {e.request_id: e for ring in self._accepted.values() for e in ring}
        chosen = [i for i in latest.values() if query.outcome is None or i.outcome == query.outcome]
        chosen.sort(key=lambda i: i.time)
        return [Recorded(invocation=i, accepted=accepted.get(i.request_id)) for i in chosen[: query.limit]]


def _matches(invocation: Invocation, query: RecordQuery) -> bool:
    if query.source is not None and invocation.source != query.source:
        return False
    if query.source is None and invocation.source == "replay":
        return False  # replays are not replayed again unasked
    if query.since is not None and invocation.time < query.since:
        return False
    return query.until is None or invocation.time < query.until
