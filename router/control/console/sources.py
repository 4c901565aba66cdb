"""`GET /console/api/sources`: every source the daemon supervises, as the console's Sources page shows it.

One document per source (config-file sources and event source mappings, `esm-<uuid>`), by name:

    {"name", "kind", "shape", "mapping": bool, "state": "running" | "starting" | "failing" | "stopped",
     "started_at", "restarts", "last_error", "last_error_at",
     "settings": {...},                      # the kind's settings; secrets shown as "***"
     "routes": [{"functions", "filter", "batch", "on_error", "http", "events", "enabled"}],
     "status": {key: {...}},                 # what the source publishes (router/core/ports.py SourceStatus):
                                             #   stream mappings: counters, lag and checkpoint per partition
     "last_event": {"time", "function", "outcome", "request_id"} | null}   # from the record

`state`: `starting` until the source is ready (listening, subscribed) the first time; `failing` while it
waits to be started again after an error (`last_error` says which); `stopped` once its task ended.
`last_event` is the newest recorded invocation from that source (null with inspect off or none held).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from router.control.plane import INSPECTION, PLANE_KEY, Inspection
from router.core import timefmt

if TYPE_CHECKING:
    from router.config import RouteConfig
    from router.control.console.port import ConsolePort, SourceHandle

SECRET = re.compile(r"password|secret|token|credential|sasl_plain|private", re.I)
HIDDEN = "***"


def redact(value: Any) -> Any:
    """Settings as JSON, with the values of secret-looking keys hidden."""
    if isinstance(value, dict):
        return {k: HIDDEN if SECRET.search(k) and v else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def state_of(handle: SourceHandle) -> str:
    if handle.task is None or handle.task.done():
        return "stopped"
    if handle.last_error_at is not None and handle.last_error_at >= handle.started_at:
        return "failing"
    return "running" if handle.ready.is_set() else "starting"


def route_view(route: RouteConfig) -> dict[str, Any]:
    doc = msgspec.to_builtins(route)
    return {
        "functions": route.functions,
        "filter": route.filter,
        "batch": doc.get("batch"),
        "on_error": doc.get("on_error"),
        "http": doc.get("http"),
        "events": route.events,
        "enabled": route.enabled,
    }


async def last_event(inspection: Inspection | None, source: str) -> dict[str, Any] | None:
    if inspection is None:
        return None
    found = await inspection.store.recent(None, limit=1, source=source)
    if not found:
        return None
    i = found[-1]
    return {"time": timefmt.iso_ms(i.time), "function": i.function, "outcome": i.outcome,
            "request_id": i.request_id}  # fmt: skip


async def describe_sources(request: web.Request, port: ConsolePort) -> list[dict[str, Any]]:
    plane = request.app[PLANE_KEY]
    inspection: Inspection | None = plane.extras.get(INSPECTION)
    contexts = port.contexts()
    out = []
    for name, handle in sorted(port.handles().items()):
        settings = handle.settings
        ctx = contexts.get(name)
        out.append(
            {
                "name": name,
                "kind": settings.kind_name(),
                "shape": type(settings).traits.shape,
                "mapping": port.is_mapping(name),
                "state": state_of(handle),
                "started_at": timefmt.iso_ms(handle.started_at) if handle.started_at else None,
                "restarts": handle.restarts,
                "last_error": handle.last_error,
                "last_error_at": timefmt.iso_ms(handle.last_error_at) if handle.last_error_at else None,
                "settings": redact(msgspec.to_builtins(settings)),
                "routes": [route_view(r) for r in handle.routes],
                "status": ctx.status.snapshot() if ctx is not None else {},
                "last_event": await last_event(inspection, name),
            }
        )
    return out
