"""Inject a synthetic event into a source, as if it had arrived: `POST /inspect/sources/{name}/inject`.

Body (every key optional):

    {"records": [<record>, ...]       # native records in the source kind's AWS shape (one S3 notification
                                      #   record, one SES record, one Kafka record, ...), or
     "record": <record>,              # one of them, or
     "event": <AWS event>,            # a whole event as a function receives it ({"Records": [...]}, Kafka's
                                      #   {"records": {...}}, a scheduled event, an API Gateway request):
                                      #   what `router events --kind KIND` prints
     "trace": "Root=...;Lineage=...", # the X-Amzn-Trace-Id the event carries (loop protection)
     "function": "name"}              # only the routes to this function

With none of records/record/event, the kind's sample event is injected.

What happens depends on how the source's kind delivers:

* asynchronous kinds (s3, sns, email, schedule): the envelopes go through the source's own `submit`: each
  route's filter, rendering per function (aws or cloudevents) and the durable async queue, exactly as a
  native event. Answer: `{"mode": "queued", "queued", "filtered", "request_ids"}`.
* synchronous kinds (http, and the batched kinds kafka, kinesis, dynamodb, sqs): nothing can be put into the
  client's connection or the broker's partition, so the routed functions are invoked directly with the
  rendered event: for http each request goes to the first route (most specific first) whose method, path
  and filter take it; for batched kinds the records that pass a route's filter go to its function as one
  batch. Nothing is committed, checkpointed or deleted. Answer: `{"mode": "invoked", "filtered",
  "invocations": [{function, request_id, outcome, error_type, result} or {function, error, message}]}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from router.control.errors import ApiError, from_dispatch_error, invalid_parameter
from router.control.plane import inspection
from router.control.requests import read_body
from router.core.errors import INVALID_REQUEST_CONTENT, RESOURCE_NOT_FOUND, DispatchError
from router.record.views import payload_view

if TYPE_CHECKING:
    from router.core.envelope import Envelope
    from router.core.ports import RoutePort, SourceContext
    from router.core.results import InvocationResult

RECORDS_KEY = {  # by shape
    "s3": "Records",
    "ses": "Records",
    "dynamodb": "Records",
    "kinesis": "Records",
    "sqs": "Records",
    "sns": "Records",
}


class InjectRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    records: list[dict[str, Any]] | None = None
    record: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    trace: str | None = None
    function: str | None = None


async def inject(request: web.Request) -> web.Response:
    ins = inspection(request)
    name = request.match_info["name"]
    running = ins.sources()
    ctx = running.get(name)
    if ctx is None:
        known = ", ".join(sorted(running)) or "none running"
        raise ApiError(404, RESOURCE_NOT_FOUND, f"No source named {name!r} (sources: {known})")
    try:
        ask = msgspec.json.decode(await read_body(request) or b"{}", type=InjectRequest)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as e:
        raise ApiError(400, INVALID_REQUEST_CONTENT, f"inject: {e}") from None
    kind, traits = ctx.config.kind_name(), ctx.config.traits
    envelopes = [_envelope(traits.shape, ctx, r, ask.trace) for r in _records(traits.shape, ask)]
    routes = [r for r in ctx.routes if ask.function is None or r.function == ask.function]
    if ask.function is not None and not routes:
        raise invalid_parameter(f"function: source {name!r} has no route to {ask.function!r}")
    answer: dict[str, Any] = {"source": name, "kind": kind, "events": len(envelopes)}
    if not traits.waits_for_result:
        answer.update(await _queue(ctx, routes, envelopes, ask.function is None))
    elif traits.request_routed:
        answer.update(await _invoke_http(routes, envelopes))
    else:
        answer.update(await _invoke_batches(routes, envelopes))
    return web.json_response(answer)


def _records(kind: str, ask: InjectRequest) -> list[dict[str, Any]]:
    if ask.records is not None:
        return ask.records
    if ask.record is not None:
        return [ask.record]
    if ask.event is None:
        from router.shapes import sample_envelope

        return [sample_envelope(kind).record]
    event = ask.event
    if kind == "kafka":
        batches = event.get("records")
        if not isinstance(batches, dict):
            raise invalid_parameter("event: a Kafka event has a 'records' map of topic-partition to records")
        return [r for batch in batches.values() for r in batch]
    key = RECORDS_KEY.get(kind)
    if key is None:
        return [event]  # schedule and http events are their own record
    if not isinstance(event.get(key), list):
        raise invalid_parameter(f"event: a {kind} event has a '{key}' list")
    return list(event[key])


def _envelope(kind: str, ctx: SourceContext, record: dict[str, Any], trace: str | None) -> Envelope:
    from router.shapes import module

    extra: dict[str, Any] = {}
    if kind == "kafka":
        extra["bootstrap_servers"] = getattr(ctx.config, "brokers", "")
    elif kind == "http":
        extra["meta"] = {"version": getattr(ctx.config, "payload_version", "2.0")}
    try:
        return module(kind).envelope(
            record, source_name=ctx.name, id=f"inject-{uuid.uuid4()}", trace=trace, **extra
        )
    except (KeyError, TypeError, IndexError) as e:
        raise invalid_parameter(f"record: not a {kind} record in AWS shape (missing or bad {e})") from None


async def _queue(
    ctx: SourceContext, routes: list[RoutePort], envelopes: list[Envelope], all_routes: bool
) -> dict[str, Any]:
    from router.core.ports import submit_to

    try:
        outcome = await (ctx.submit(envelopes) if all_routes else submit_to(routes, envelopes))
    except DispatchError as e:
        raise from_dispatch_error(e) from None
    return {
        "mode": "queued",
        "queued": outcome.queued,
        "filtered": outcome.filtered,
        "request_ids": outcome.request_ids,
    }


async def _invoke_http(routes: list[RoutePort], envelopes: list[Envelope]) -> dict[str, Any]:
    from router.sources.http.source import build_table

    table = build_table(routes)
    results, filtered = [], 0
    for envelope in envelopes:
        method, path = _method_path(envelope.record)
        candidates = table.resolve(method, path).candidates
        route = next((c.route for c in candidates if c.route.matches(envelope)), None)
        if route is None:
            filtered += 1
            continue
        results.append(await _call(route, [envelope]))
    return {"mode": "invoked", "filtered": filtered, "invocations": results}


def _method_path(event: dict[str, Any]) -> tuple[str, str]:
    if event.get("version") == "2.0":
        return event["requestContext"]["http"]["method"], event["rawPath"]
    return event["httpMethod"], event["path"]


async def _invoke_batches(routes: list[RoutePort], envelopes: list[Envelope]) -> dict[str, Any]:
    results, filtered = [], 0
    for route in routes:
        taken = [e for e in envelopes if route.matches(e)]
        filtered += len(envelopes) - len(taken)
        if taken:
            results.append(await _call(route, taken))
    return {"mode": "invoked", "filtered": filtered, "invocations": results}


async def _call(route: RoutePort, envelopes: Sequence[Envelope]) -> dict[str, Any]:
    try:
        result: InvocationResult = await route.invoke(route.render(envelopes), trace=envelopes[0].trace)
    except DispatchError as e:
        return {"function": route.function, "error": e.code, "message": e.message}
    return {
        "function": route.function,
        "request_id": result.request_id,
        "outcome": "success" if result.ok else "error",
        "error_type": result.error_type,
        "result": payload_view(result.payload, len(result.payload)),
    }
