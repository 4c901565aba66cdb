"""What the failure destinations hold: `GET /inspect/failures`, `GET /inspect/functions/{name}/failures`.

The failure destinations are each function's `async.on_failure` (records of asynchronous events given up:
RetriesExhausted, EventAgeExceeded, RecursiveLoopDetected) and each stream route's `on_error.destination`
(records of stream batches given up). Answer:

    {"destinations": [{"owner": "functions.resize.async.on_failure", "functions": ["resize"],
                       "source": null, "kind": "directory", "target": "/abs/.router/dlq/resize",
                       "count": 3, "records": [{"file": "...json", "record": {...}}, ...]}, ...]}

Records are read back through the destination's failure store (router/record/failstores.py): the newest
`limit` (default 20), oldest first, each `{"id", "record"}` (`file` too for directories); `count` is how many
it holds (files in the folder; records past the redrive group's offset in a Kafka topic). Function
destinations are listed with `count` and `records` null: their records went into a function's queue. A
destination that cannot be read now (a broker down) is listed with `error`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from router.control.errors import ApiError, invalid_parameter
from router.control.plane import PLANE_KEY, inspection
from router.core.errors import RESOURCE_NOT_FOUND
from router.dispatch import destinations
from router.record.failstores import open_store

if TYPE_CHECKING:
    from router.config import Config, Destination
    from router.dispatch.registry import FunctionDefinition

DEFAULT_LIMIT = 20
READ_TIMEOUT_S = 20.0  # a destination that cannot be read within this is listed with its error


@dataclass(frozen=True)
class FailureDestination:
    owner: str  # the config path that names it
    functions: list[str]
    source: str | None
    destination: Destination


def failure_destinations(config: Config, defs: dict[str, FunctionDefinition]) -> list[FailureDestination]:
    found = []
    for name, definition in sorted(defs.items()):
        target = definition.config.async_.on_failure
        if target is not None:
            found.append(FailureDestination(f"functions.{name}.async.on_failure", [name], None, target))
    for i, route in enumerate(config.routes):
        if route.on_error is not None and route.on_error.destination is not None:
            found.append(
                FailureDestination(
                    f"routes[{i}].on_error.destination",
                    route.functions,
                    route.source,
                    route.on_error.destination,
                )
            )
    return found


async def describe(found: FailureDestination, config: Config, limit: int) -> dict[str, Any]:
    d = found.destination
    entry: dict[str, Any] = {"owner": found.owner, "functions": found.functions, "source": found.source}
    store = open_store(d, config.path)
    if store is None:
        kind = destinations.kind(d)
        entry.update(kind=kind, target=getattr(d, kind, None), count=None, records=None)
        return entry
    entry.update(kind=store.kind, target=store.target)
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            count = await store.count()
            listed = await store.newest(limit)  # after the count: what it counted is listed
            if count is not None:
                count = max(count, len(listed))  # and one written in between is counted
    except Exception as e:  # an unreachable broker: listed with the error, the others still answer
        entry.update(count=None, records=None, error=f"cannot read it back: {e!r}")
        return entry
    records = [
        {"id": e.id, "file": e.id, "record": e.record} if e.error is None else {"id": e.id, "error": e.error}
        for e in listed
    ]
    if store.kind != "directory":
        for r in records:
            r.pop("file", None)
    entry.update(count=count, records=records)
    return entry


async def failures(request: web.Request) -> web.Response:
    ins = inspection(request)
    config = ins.config()
    defs = request.app[PLANE_KEY].dispatcher.functions()
    name = request.match_info.get("name")
    if name is not None and name not in defs:
        raise ApiError(404, RESOURCE_NOT_FOUND, f"Function not found: {name}")
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not (raw.isascii() and raw.isdigit()):
        raise invalid_parameter(f"limit: expected a whole number, got {raw!r}")
    found = [f for f in failure_destinations(config, defs) if name is None or name in f.functions]
    return web.json_response({"destinations": [await describe(f, config, int(raw)) for f in found]})
