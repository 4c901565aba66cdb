"""Which offsets of a Kafka partition may be committed: every offset below the lowest one not settled.

A partition's events run concurrently and settle in any order, but Kafka keeps one committed offset per
partition and group. `PartitionOffsets` holds the offsets this node consumed and has not settled; its
`commit_point` is the lowest of them (or one past the last consumed when all are settled), so a commit never
covers an event still running or waiting: after a crash those are consumed again (at-least-once), together
with the settled events above the lowest unsettled one (the duplicates a crash may cause). Pure logic.
"""

from __future__ import annotations

import heapq

__all__ = ["PartitionOffsets"]


class PartitionOffsets:
    def __init__(self, position: int = 0) -> None:
        self._heap: list[int] = []
        self._pending: set[int] = set()
        self._next = position  # one past the highest offset consumed (or the start position)
        self.committed = position  # the last commit point written to the broker

    def hold(self, offset: int) -> None:
        """A consumed offset, not settled yet."""
        if offset not in self._pending:
            self._pending.add(offset)
            heapq.heappush(self._heap, offset)
        self._next = max(self._next, offset + 1)

    def skip(self, offset: int) -> None:
        """A consumed offset that needs no settling (undecodable, already settled here)."""
        self._next = max(self._next, offset + 1)

    def settle(self, offset: int) -> None:
        self._pending.discard(offset)
        while self._heap and self._heap[0] not in self._pending:
            heapq.heappop(self._heap)

    @property
    def held(self) -> int:
        return len(self._pending)

    @property
    def position(self) -> int:
        """Where this node's reading of the partition is: one past the last offset consumed."""
        return self._next

    def commit_point(self) -> int:
        return self._heap[0] if self._heap else self._next

    def dirty(self) -> bool:
        return self.commit_point() > self.committed
