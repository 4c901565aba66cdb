"""What the failure destinations hold: `GET /inspect/failures`, `GET /inspect/functions/{name}/failures`.

The failure destinations are each function's `async.on_failure` (records of asynchronous events given up:
RetriesExhausted, EventAgeExceeded, RecursiveLoopDetected) and each stream route's `on_error.destination`
(records of stream batches given up). Answer:

    {"destinations": [{"owner": "functions.resize.async.on_failure", "functions": ["resize"],
                       "source": null, "kind": "directory", "target": "/abs/.router/dlq/resize",
                       "count": 3, "records": [{"file": "...json", "record": {...}}, ...]}, ...]}

Records are read only from directory destinations (newest `limit`, default 20, oldest first; `count` is how
many files the folder holds). Function and Kafka destinations are listed with `count` and `records` null:
their records went to a function's queue or a topic, where the router cannot read them back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from router.control.errors import ApiError, invalid_parameter
from router.control.plane import PLANE_KEY, inspection
from router.core.errors import RESOURCE_NOT_FOUND

if TYPE_CHECKING:
    from router.config import Config, Destination
    from router.dispatch.registry import FunctionDefinition

DEFAULT_LIMIT = 20
_decode = msgspec.json.Decoder().decode


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


def read_directory(folder: Path, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many records the folder holds, the newest `limit` of them oldest first). Blocking."""
    try:
        files = [p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
    except FileNotFoundError:
        return 0, []
    files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    records = []
    for path in files[max(0, len(files) - limit) :]:
        try:
            records.append({"file": path.name, "record": _decode(path.read_bytes())})
        except (OSError, msgspec.DecodeError) as e:
            records.append({"file": path.name, "error": str(e)})
    return len(files), records


async def describe(found: FailureDestination, config: Config, limit: int) -> dict[str, Any]:
    d = found.destination
    entry: dict[str, Any] = {"owner": found.owner, "functions": found.functions, "source": found.source}
    if d.directory is not None:
        folder = config.path(d.directory).resolve()
        count, records = await asyncio.to_thread(read_directory, folder, limit)
        entry.update(kind="directory", target=str(folder), count=count, records=records)
    elif d.function is not None:
        entry.update(kind="function", target=d.function, count=None, records=None)
    elif d.kafka is not None:
        entry.update(kind="kafka", target=d.kafka.topic, count=None, records=None)
    return entry


async def failures(request: web.Request) -> web.Response:
    ins = inspection(request)
    config = ins.config()
    defs = request.app[PLANE_KEY].dispatcher.functions()
    name = request.match_info.get("name")
    if name is not None and name not in defs:
        raise ApiError(404, RESOURCE_NOT_FOUND, f"Function not found: {name}")
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit():
        raise invalid_parameter(f"limit: expected a whole number, got {raw!r}")
    found = [f for f in failure_destinations(config, defs) if name is None or name in f.functions]
    return web.json_response({"destinations": [await describe(f, config, int(raw)) for f in found]})
