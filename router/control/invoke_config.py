"""Asynchronous invocation settings: the FunctionEventInvokeConfig calls.

| operation                        | request                                                   | success |
| -------------------------------- | --------------------------------------------------------- | ------- |
| PutFunctionEventInvokeConfig     | PUT    /2019-09-25/functions/{name}/event-invoke-config    | 200     |
| UpdateFunctionEventInvokeConfig  | POST   /2019-09-25/functions/{name}/event-invoke-config    | 200     |
| GetFunctionEventInvokeConfig     | GET    /2019-09-25/functions/{name}/event-invoke-config    | 200     |
| DeleteFunctionEventInvokeConfig  | DELETE /2019-09-25/functions/{name}/event-invoke-config    | 204     |
| ListFunctionEventInvokeConfigs   | GET    /2019-09-25/functions/{name}/event-invoke-config/list | 200   |

One config per qualifier (`?Qualifier=`: none or `$LATEST`, a published version or an alias). Put replaces
it whole, Update changes only the members given. `MaximumRetryAttempts` 0-2, `MaximumEventAgeInSeconds`
60-21600, `DestinationConfig.OnSuccess/OnFailure.Destination` an SQS queue, SNS topic, Lambda function
(of this router) or EventBridge bus ARN (router.control.async_settings). The dispatcher applies a change to
the next attempt of every queued event. Config-file functions are refused (their `async:` is the config's).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from aiohttp import web

from router.control import access, pages
from router.control.access import catalog
from router.control.async_settings import destination_from_arn
from router.control.errors import ApiError, invalid_parameter
from router.control.names import LATEST
from router.control.records import InvokeConfigRecord
from router.control.requests import Base, decode
from router.core.errors import RESOURCE_NOT_FOUND


class TargetIn(Base):
    destination: str | None = None


class DestinationsIn(Base):
    on_success: TargetIn | None = None
    on_failure: TargetIn | None = None


class InvokeConfigIn(Base):
    maximum_retry_attempts: int | None = None
    maximum_event_age_in_seconds: int | None = None
    destination_config: DestinationsIn | None = None


def _checked(req: InvokeConfigIn) -> dict[str, Any]:
    """The record fields the request sets (members it does not send are absent)."""
    problems = []
    if req.maximum_retry_attempts is not None and not 0 <= req.maximum_retry_attempts <= 2:
        problems.append(f"MaximumRetryAttempts must be between 0 and 2, got {req.maximum_retry_attempts}")
    age = req.maximum_event_age_in_seconds
    if age is not None and not 60 <= age <= 21600:
        problems.append(f"MaximumEventAgeInSeconds must be between 60 and 21600, got {age}")
    if problems:
        raise invalid_parameter("; ".join(problems))
    fields: dict[str, Any] = {}
    if req.maximum_retry_attempts is not None:
        fields["max_retries"] = req.maximum_retry_attempts
    if age is not None:
        fields["max_event_age_s"] = age
    if req.destination_config is not None:
        for key, target in (("on_success", req.destination_config.on_success),
                            ("on_failure", req.destination_config.on_failure)):  # fmt: skip
            if target is not None:
                if target.destination:
                    destination_from_arn(target.destination)
                fields[key] = target.destination or None
    return fields


def _qualifier(request: web.Request) -> tuple[str, str]:
    """(function name, qualifier), the qualifier checked to exist ($LATEST when none)."""
    ref = access.target(request)
    cat = catalog(request)
    cat.writable(ref.name, None)
    qualifier = ref.qualifier or LATEST
    if qualifier != LATEST:
        access.qualified(request, ref)  # ResourceNotFoundException for an unknown version or alias
    return ref.name, qualifier


def _body(request: web.Request, name: str, qualifier: str, record: InvokeConfigRecord) -> dict[str, Any]:
    defaults = {"max_retries": 2, "max_event_age_s": 21600}
    return {
        "LastModified": record.last_modified,
        "FunctionArn": catalog(request).arn(name, qualifier),
        "MaximumRetryAttempts": defaults["max_retries"] if record.max_retries is None else record.max_retries,
        "MaximumEventAgeInSeconds": (
            defaults["max_event_age_s"] if record.max_event_age_s is None else record.max_event_age_s
        ),
        "DestinationConfig": {
            "OnSuccess": {"Destination": record.on_success} if record.on_success else {},
            "OnFailure": {"Destination": record.on_failure} if record.on_failure else {},
        },
    }


def _missing(request: web.Request, name: str, qualifier: str) -> ApiError:
    arn = catalog(request).arn(name, qualifier)
    return ApiError(404, RESOURCE_NOT_FOUND, f"The function {arn} doesn't have an EventInvokeConfig")


async def _store(request: web.Request, *, replace: bool) -> web.Response:
    req = decode(await access.body(request), InvokeConfigIn)
    name, qualifier = _qualifier(request)
    fields = _checked(req)
    cat = catalog(request)
    current = (cat.record(name) or _never()).invoke_configs.get(qualifier)
    if not replace and current is None:
        raise _missing(request, name, qualifier)
    base = InvokeConfigRecord() if replace or current is None else current
    config = msgspec.structs.replace(base, **fields, last_modified=time.time())
    await cat.change(
        name, lambda r: msgspec.structs.replace(r, invoke_configs={**r.invoke_configs, qualifier: config})
    )
    return web.json_response(_body(request, name, qualifier, config))


def _never() -> Any:
    raise AssertionError("writable() returned, so the function has a record")


async def put_config(request: web.Request) -> web.Response:
    return await _store(request, replace=True)


async def update_config(request: web.Request) -> web.Response:
    return await _store(request, replace=False)


async def get_config(request: web.Request) -> web.Response:
    name, qualifier = _qualifier(request)
    config = (catalog(request).record(name) or _never()).invoke_configs.get(qualifier)
    if config is None:
        raise _missing(request, name, qualifier)
    return web.json_response(_body(request, name, qualifier, config))


async def delete_config(request: web.Request) -> web.Response:
    name, qualifier = _qualifier(request)
    cat = catalog(request)
    if qualifier not in (cat.record(name) or _never()).invoke_configs:
        raise _missing(request, name, qualifier)
    await cat.change(name, lambda r: msgspec.structs.replace(
        r, invoke_configs={q: c for q, c in r.invoke_configs.items() if q != qualifier}))  # fmt: skip
    return web.Response(status=204)


async def list_configs(request: web.Request) -> web.Response:
    name = access.latest_name(request)
    record = catalog(request).writable(name, None)
    items = sorted(record.invoke_configs.items())
    chunk, marker = pages.page(request, items, lambda item: item[0])
    body: dict[str, Any] = {"FunctionEventInvokeConfigs": [_body(request, name, q, c) for q, c in chunk]}
    if marker:
        body["NextMarker"] = marker
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    r = app.router
    path = "/2019-09-25/functions/{name}/event-invoke-config"
    r.add_put(path, put_config)
    r.add_post(path, update_config)
    r.add_get(path, get_config)
    r.add_delete(path, delete_config)
    r.add_get(path + "/list", list_configs)
