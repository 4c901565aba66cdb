"""`GET /inspect/faults` and `PUT /inspect/faults`: the injected faults in force, changed at run time.

`GET` answers `{"functions": {name: {error_rate, timeout_rate, crash_rate, throttle_rate, latency_ms, seed}},
"sources": {name: {drop_ack, duplicate, reorder, reorder_window_ms, seed}}}`: what is in force, each with
its seed (a random one when none was given: set it again with that seed to repeat a run).

`PUT` body: `{"functions": {name: {...} | null}, "sources": {name: {...} | null}}`: each named function or
source gets exactly these settings (the config's `faults:` keys; null or `{}` turns its faults off); the
others keep theirs. Setting faults starts that name's draws over, from its seed. A reload of the config
puts the config's faults back. Unknown names are 404, bad settings 400. The answer is as for `GET`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from router.config import FunctionFaults, SourceFaults
from router.control.errors import ApiError, invalid_parameter
from router.control.plane import PLANE_KEY, inspection
from router.control.requests import read_body
from router.core.errors import INVALID_REQUEST_CONTENT, RESOURCE_NOT_FOUND
from router.dispatch.faults import fault_rates_problem


class FaultsRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    functions: dict[str, FunctionFaults | None] = {}
    sources: dict[str, SourceFaults | None] = {}


async def show(request: web.Request) -> web.Response:
    inspection(request)
    return web.json_response(request.app[PLANE_KEY].dispatcher.faults.show())


async def put(request: web.Request) -> web.Response:
    ins = inspection(request)
    dispatcher = request.app[PLANE_KEY].dispatcher
    try:
        ask = msgspec.json.decode(await read_body(request) or b"{}", type=FaultsRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise ApiError(400, INVALID_REQUEST_CONTENT, f"faults: {e}") from None
    known_functions, known_sources = dispatcher.functions(), ins.config().sources
    for name, settings in ask.functions.items():
        if name not in known_functions:
            raise ApiError(404, RESOURCE_NOT_FOUND, f"Function not found: {name}")
        problem = fault_rates_problem(settings) if settings is not None else None
        if problem:
            raise invalid_parameter(f"functions.{name}: {problem}")
    for name in ask.sources:
        if name not in known_sources:
            raise ApiError(404, RESOURCE_NOT_FOUND, f"No source named {name!r}")
    faults = dispatcher.faults
    for name, settings in ask.functions.items():
        faults.set_function(name, settings)
    for name, source_settings in ask.sources.items():
        faults.set_source(name, source_settings)
    dispatcher.changed()  # front processes hand these functions' calls to the primary (router/processes.py)
    answer: dict[str, Any] = faults.show()
    return web.json_response(answer)
