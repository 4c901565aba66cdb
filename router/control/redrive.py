"""`POST /inspect/redrive`: failure destinations sent back through their functions (router/record/redrive.py).

Body (every key optional): `{"function": F, "destination": D, "dry_run": false, "rate": 50}`. `function`
limits the redrive to the destinations serving F (its `async.on_failure`, the `on_error.destination` of
routes to it) and to their entries for F; `destination` to the destinations whose owner (the config path,
`functions.resize.async.on_failure`, `routes[1].on_error.destination`) or target (a folder, a topic) is D.
Destinations that cannot be read back (function destinations) are not redriven.

The answer: `{"dry_run", "entries", "succeeded", "failed", "skipped", "would_send", "destinations": [{owner,
kind, target, entries, succeeded, failed, skipped, would_send, items: [{id, function, result,
request_id?, reason?, error_type?}]}]}`. 404 when F is not a function or D names no destination.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from router.control.errors import ApiError, invalid_parameter
from router.control.failures import failure_destinations
from router.control.plane import PLANE_KEY, inspection
from router.control.requests import read_body
from router.core.errors import INVALID_REQUEST_CONTENT, RESOURCE_NOT_FOUND
from router.record.failstores import open_store
from router.record.redrive import Target
from router.record.redrive import redrive as run_redrive


class RedriveRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    function: str | None = None
    destination: str | None = None
    dry_run: bool = False
    rate: float = 50.0


async def redrive(request: web.Request) -> web.Response:
    ins = inspection(request)
    dispatcher = request.app[PLANE_KEY].dispatcher
    try:
        ask = msgspec.json.decode(await read_body(request) or b"{}", type=RedriveRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise ApiError(400, INVALID_REQUEST_CONTENT, f"redrive: {e}") from None
    if not 0 < ask.rate <= 1000:
        raise invalid_parameter(f"rate: expected more than 0 and at most 1000 per second, got {ask.rate:g}")
    defs = dispatcher.functions()
    if ask.function is not None and ask.function not in defs:
        raise ApiError(404, RESOURCE_NOT_FOUND, f"Function not found: {ask.function}")
    config = ins.config()
    targets = []
    for found in failure_destinations(config, defs):
        if ask.function is not None and ask.function not in found.functions:
            continue
        store = open_store(found.destination, config.path)
        if store is None:
            continue
        if ask.destination is not None and ask.destination not in (found.owner, store.target):
            continue
        targets.append(Target(found.owner, found.functions, store))
    if ask.destination is not None and not targets:
        raise ApiError(404, RESOURCE_NOT_FOUND, f"No failure destination {ask.destination!r} to redrive")
    summary = await run_redrive(
        targets, dispatcher, dry_run=ask.dry_run, rate=ask.rate, function=ask.function
    )
    return web.json_response(summary)
