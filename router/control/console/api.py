"""The console's JSON endpoints (docs/console.md), under the control plane's auth like every API route.

* `GET /console/api/functions` -> `{"account": AccountStats, "functions": [function, ...]}`: every function
  the dispatcher runs (config-file and deployed: `origin`), its settings (runtime, handler, memory, timeout,
  reserved and provisioned concurrency, idle timeout, event format, async settings), its versions and
  aliases, and `stats` (the dispatcher's `FunctionStats`: calls in use, idle/busy/launching instances,
  provisioned ones, invocations, errors, throttles, cold and warm starts, queued async events and the age
  of the oldest). Functions with queued events but no definition (deleted) are listed with `origin` null.
* `GET /console/api/history[?function=F]` -> the dispatcher's last hour (router/dispatch/history.py
  `History.series`); 404 for a function the dispatcher does not know.
* `GET /console/api/sources` -> `{"sources": [source, ...]}` (router/control/console/sources.py).
* `GET /console/api/templates` -> `{"kinds": {kind: sample event}}`: a sample event of every shape, built by
  router/shapes `sample` (what `router events --kind KIND` prints), for the Test page.

Answers 404 ResourceNotFoundException when the daemon gave the app no console port (`extras[CONSOLE]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from router.control.console.port import CONSOLE, ConsolePort
from router.control.errors import ApiError
from router.control.plane import PLANE_KEY
from router.core.errors import RESOURCE_NOT_FOUND
from router.dispatch import destinations

if TYPE_CHECKING:
    from router.config import Destination
    from router.dispatch.registry import FunctionDefinition
    from router.dispatch.stats import FunctionStats

# The shapes of the Test page's templates: every shape `router events` knows, in its order.
TEMPLATE_KINDS = ("s3", "dynamodb", "kafka", "kinesis", "sqs", "sns", "ses", "schedule", "http")


def console_port(request: web.Request) -> ConsolePort:
    found: ConsolePort | None = request.app[PLANE_KEY].extras.get(CONSOLE)
    if found is None:
        raise ApiError(404, RESOURCE_NOT_FOUND, "The console is not available in this router")
    return found


def destination_view(d: Destination | None) -> dict[str, str] | None:
    """`{"kind", "target"}` of a destination (its one set field), None when unset."""
    if d is None:
        return None
    kind = destinations.kind(d)
    if d.kafka is not None:
        return {"kind": kind, "target": f"{d.kafka.topic} ({', '.join(d.kafka.brokers)})"}
    return {"kind": kind, "target": str(getattr(d, kind, ""))}


def function_view(name: str, d: FunctionDefinition | None, s: FunctionStats | None) -> dict[str, Any]:
    stats = msgspec.to_builtins(s) if s is not None else None
    if d is None:
        return {"name": name, "origin": None, "stats": stats}
    c = d.config
    a = c.async_
    return {
        "name": name,
        "origin": d.origin,
        "runtime": c.runtime,
        "handler": c.handler,
        "memory_mb": c.memory_mb,
        "timeout_s": c.timeout_s,
        "reserved_concurrency": c.reserved_concurrency,
        "provisioned_concurrency": c.provisioned_concurrency,
        "idle_timeout_s": c.idle_timeout_s,
        "event_format": c.event_format,
        "description": c.description,
        "revision": d.revision,
        "last_modified": d.last_modified,
        "versions": sorted(d.versions, key=lambda v: int(v) if v.isdigit() else 0),
        "aliases": {alias: routing.version for alias, routing in sorted(d.aliases.items())},
        "async": {
            "max_retries": a.max_retries,
            "max_event_age_s": a.max_event_age_s,
            "on_failure": destination_view(a.on_failure),
            "on_success": destination_view(a.on_success),
            "dead_letter": destination_view(a.dead_letter),
        },
        "stats": stats,
    }


async def functions(request: web.Request) -> web.Response:
    dispatcher = request.app[PLANE_KEY].dispatcher
    stats = dispatcher.stats()
    defs = dispatcher.functions()
    names = sorted({*defs, *stats.functions})
    return web.json_response(
        {
            "account": msgspec.to_builtins(stats.account),
            "functions": [function_view(n, defs.get(n), stats.functions.get(n)) for n in names],
        }
    )


async def history(request: web.Request) -> web.Response:
    port = console_port(request)
    function = request.query.get("function")
    series = port.history.series(function)
    if function is not None and function not in series["functions"]:
        raise ApiError(404, RESOURCE_NOT_FOUND, f"Function not found: {function}")
    return web.json_response(series)


async def templates(request: web.Request) -> web.Response:
    from router.shapes import sample

    return web.json_response({"kinds": {kind: sample(kind) for kind in TEMPLATE_KINDS}})


async def sources(request: web.Request) -> web.Response:
    from router.control.console.sources import describe_sources

    return web.json_response({"sources": await describe_sources(request, console_port(request))})
