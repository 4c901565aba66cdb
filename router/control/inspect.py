"""The event inspection API: recent invocations, wait-for-next, inject, failures (docs/inspect.md).

Routes (all JSON; off with `inspect: {enabled: false}`, then every one answers 404):

* `GET /inspect/cursor` -> `{"cursor": N}`: the seq of the latest recorded invocation. Read it before
  triggering something, then ask for what came `after` it.
* `GET /inspect/invocations` and `GET /inspect/functions/{name}/invocations`, query `after` (cursor, default
  0), `limit` (the newest N, default all the ring holds), `source` (only from that source), `wait_s` (long
  poll: wait up to that long for at least one, max 300) -> `{"cursor", "invocations": [view, ...]}`, oldest
  first; `cursor` is the highest seq returned (or the current cursor when none).
* `GET /inspect/functions` -> `{"cursor", "functions": {name: invocations held}}`.
* `POST /inspect/wait` and `POST /inspect/functions/{name}/wait`, body `{"pattern": <EventBridge pattern
  or list of them>, "after": N, "timeout_s": 10}`: the first invocation after the cursor (default: the
  cursor when the request arrives) whose view (`{"event", "result", "outcome", "source", ...}`) matches
  the pattern -> 200 `{"cursor", "invocation"}`, or 408 RequestTimeoutException after timeout_s (max 900).
* `GET /inspect/requests/{id}` -> `{"request_id", "events": [accepted event, ...], "invocations": [view with
  its "log", ...]}`: what a request id (from a REPORT line) was; 404 when the record holds nothing of it.
* `POST /inspect/sources/{name}/inject` (router/control/inject.py), `GET /inspect/failures`,
  `GET /inspect/functions/{name}/failures` (router/control/failures.py), `POST /inspect/redrive`
  (router/control/redrive.py), `POST /inspect/replay` (router/control/replay.py), `GET`/`PUT
  /inspect/faults` (router/control/faults.py).

The views are `router.record.views.view` documents. Errors use the control plane's error shape.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from router.control.errors import ApiError, invalid_parameter, query_number
from router.control.plane import PLANE_KEY, Inspection, inspection
from router.control.requests import read_body
from router.core.backends import Invocation, InvocationRecord
from router.core.errors import INVALID_REQUEST_CONTENT, REQUEST_TIMEOUT, RESOURCE_NOT_FOUND, ConfigError
from router.record.views import accepted_view, view

MAX_WAIT_S = 900.0
MAX_POLL_S = 300.0


async def _known_function(request: web.Request, ins: Inspection) -> str:
    name = request.match_info["name"]
    if name in request.app[PLANE_KEY].dispatcher.functions():
        return name
    if name not in await ins.store.functions():
        raise ApiError(404, RESOURCE_NOT_FOUND, f"Function not found: {name}")
    return name


def _page(invocations: list[Invocation], store: InvocationRecord) -> dict[str, Any]:
    cursor = invocations[-1].seq if invocations else store.cursor
    return {"cursor": cursor, "invocations": [view(i) for i in invocations]}


async def cursor(request: web.Request) -> web.Response:
    return web.json_response({"cursor": inspection(request).store.cursor})


async def functions(request: web.Request) -> web.Response:
    store = inspection(request).store
    return web.json_response({"cursor": store.cursor, "functions": await store.functions()})


async def invocations(request: web.Request) -> web.Response:
    ins = inspection(request)
    function = await _known_function(request, ins) if "name" in request.match_info else None
    after = int(query_number(request, "after", 0, 0, float(2**62)))
    limit = int(query_number(request, "limit", -1, 0, 100000))  # -1 (absent): everything the ring holds
    wait_s = query_number(request, "wait_s", 0, 0, MAX_POLL_S)
    source = request.query.get("source")
    if wait_s:
        found = await ins.store.since(function, after, wait_s, source)
    else:
        found = await ins.store.recent(function, after=after, source=source)
    if limit >= 0:
        found = found[max(0, len(found) - limit) :]
    return web.json_response(_page(found, ins.store))


class WaitRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pattern: dict[str, Any] | list[dict[str, Any]] | None = None
    after: int | None = None
    timeout_s: float = 10.0


async def wait(request: web.Request) -> web.Response:
    ins = inspection(request)
    function = await _known_function(request, ins) if "name" in request.match_info else None
    body = await read_body(request)
    try:
        ask = msgspec.json.decode(body or b"{}", type=WaitRequest)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as e:
        raise ApiError(400, INVALID_REQUEST_CONTENT, f"wait: {e}") from None
    if not 0 <= ask.timeout_s <= MAX_WAIT_S:
        raise invalid_parameter(f"timeout_s: expected 0 to {MAX_WAIT_S:g}, got {ask.timeout_s:g}")
    predicate = None
    if ask.pattern is not None:
        from router.dispatch.filters import compile_patterns

        try:
            predicate = compile_patterns(ask.pattern)
        except ConfigError as e:
            raise invalid_parameter(
                "; ".join(p.replace("filter", "pattern", 1) for p in e.problems)
            ) from None
    after = ins.store.cursor if ask.after is None else ask.after
    found = await ins.store.wait(function, predicate, after, ask.timeout_s)
    if found is None:
        what = f"of {function}" if function else ""
        raise ApiError(
            408,
            REQUEST_TIMEOUT,
            f"No matching invocation {what} after cursor {after} within {ask.timeout_s:g}s",
        )
    return web.json_response({"cursor": found.seq, "invocation": view(found)})


async def request_lookup(request: web.Request) -> web.Response:
    """A request id (from a REPORT line, an Invoke response, a destination record) -> the event a route
    accepted for it and every invocation (attempt) it had, with their logs."""
    ins = inspection(request)
    request_id = request.match_info["id"]
    accepted, invocations = await ins.store.request(request_id)
    if not accepted and not invocations:
        raise ApiError(404, RESOURCE_NOT_FOUND, f"No recorded request {request_id!r}")
    return web.json_response(
        {
            "request_id": request_id,
            "events": [accepted_view(e) for e in accepted],
            "invocations": [view(i, logs=True) for i in invocations],
        }
    )


def add_routes(app: web.Application) -> None:
    from router.control import failures, faults, inject, redrive, replay

    app.router.add_get("/inspect/cursor", cursor)
    app.router.add_get("/inspect/functions", functions)
    app.router.add_get("/inspect/invocations", invocations)
    app.router.add_get("/inspect/functions/{name}/invocations", invocations)
    app.router.add_post("/inspect/wait", wait)
    app.router.add_post("/inspect/functions/{name}/wait", wait)
    app.router.add_post("/inspect/sources/{name}/inject", inject.inject)
    app.router.add_get("/inspect/failures", failures.failures)
    app.router.add_get("/inspect/functions/{name}/failures", failures.failures)
    app.router.add_get("/inspect/requests/{id}", request_lookup)
    app.router.add_post("/inspect/replay", replay.replay)
    app.router.add_post("/inspect/redrive", redrive.redrive)
    app.router.add_get("/inspect/faults", faults.show)
    app.router.add_put("/inspect/faults", faults.put)
