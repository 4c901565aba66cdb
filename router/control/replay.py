"""`POST /inspect/replay`: recorded events delivered again (router/record/replay.py; `router replay`).

Body (a `ReplayPlan`): `{"source": S | "function": F, "since", "until", "outcome", "to", "rate", "mode":
"sync"|"async", "dry_run", "limit"}`. The answer is the summary: `{"dry_run", "total", "replayed", "same",
"different", "errors", "skipped", "items": [{original, function, request_id, outcome, same_result, ...}]}`.

With `Accept: application/x-ndjson` the answer streams: one line per event as it is replayed
(`{"progress": {"done", "total"}, "item": {...}}`), then `{"summary": {...}}` (without the items). A client
that disconnects stops the replay. Errors before the first event (a bad plan, an unknown function) use the
control plane's error shape.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from aiohttp import web

from router.control.errors import ApiError, invalid_parameter
from router.control.plane import PLANE_KEY, inspection
from router.control.requests import read_body
from router.core.errors import INVALID_REQUEST_CONTENT, RESOURCE_NOT_FOUND, FunctionNotFound
from router.record.replay import PlanError, ReplayPlan, query_of
from router.record.replay import replay as run_replay

NDJSON = "application/x-ndjson"
_encode = msgspec.json.Encoder().encode


async def replay(request: web.Request) -> web.StreamResponse:
    ins = inspection(request)
    dispatcher = request.app[PLANE_KEY].dispatcher
    try:
        plan = msgspec.json.decode(await read_body(request) or b"{}", type=ReplayPlan)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise ApiError(400, INVALID_REQUEST_CONTENT, f"replay: {e}") from None
    try:
        query_of(plan, time.time())
    except PlanError as e:
        raise invalid_parameter(str(e)) from None
    if plan.to is not None and not plan.dry_run:
        try:
            dispatcher.check(plan.to)
        except FunctionNotFound:
            raise ApiError(404, RESOURCE_NOT_FOUND, f"to: no function named {plan.to!r}") from None
    if NDJSON not in request.headers.get("Accept", ""):
        return web.json_response(await run_replay(ins.store, dispatcher, plan))
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    await response.prepare(request)

    async def progress(item: dict[str, Any], done: int, total: int) -> None:
        line = {"progress": {"done": done, "total": total}, "item": item}
        await response.write(_encode(line) + b"\n")

    summary = await run_replay(ins.store, dispatcher, plan, progress)
    summary.pop("items")
    await response.write(_encode({"summary": summary}) + b"\n")
    await response.write_eof()
    return response
