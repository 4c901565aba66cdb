"""What every stream source (Kafka, Kinesis, DynamoDB Streams) does with its routes.

Each route is its own event source mapping, as on Lambda. `mapping_names` gives each a stable name (for its
consumer group or checkpoint file); `run_mappings` runs them together in one task group until cancelled and
tells the daemon the source is ready once every mapping has started reading.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol


def mapping_names(functions: list[str]) -> list[str]:
    """A stable name per route of a source, for its consumer group or checkpoint file: the function's name,
    with `-2`, `-3`... for a function's second, third... route from the same source."""
    seen: Counter[str] = Counter()
    names = []
    for fn in functions:
        seen[fn] += 1
        names.append(fn if seen[fn] == 1 else f"{fn}-{seen[fn]}")
    return names


class RouteMapping(Protocol):
    """A route's reader of a stream (a Kafka consumer, a shard tree): calls `started` once it reads."""

    async def run(self, started: Callable[[], None]) -> None: ...


async def run_mappings(ready: Callable[[], None], mappings: Sequence[tuple[str, RouteMapping]]) -> None:
    """Run a source's (task name, mapping) pairs in one task group until cancelled; `ready()` once each has
    started. With no routes there is nothing to read, but the source stays up like every source."""
    if not mappings:
        ready()
        await asyncio.Event().wait()
    started = 0

    def one_started() -> None:
        nonlocal started
        started += 1
        if started == len(mappings):
            ready()

    async with asyncio.TaskGroup() as tg:
        for name, mapping in mappings:
            tg.create_task(mapping.run(one_started), name=name)
