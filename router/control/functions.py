"""Function management: the subset of the Lambda REST API that SDKs, the AWS CLI and deploy tools use.

Paths, methods and status codes are botocore's Lambda model (service-2.json, API version 2015-03-31):

| operation                    | request                                              | success |
| ---------------------------- | ---------------------------------------------------- | ------- |
| CreateFunction               | POST   /2015-03-31/functions                         | 201     |
| ListFunctions                | GET    /2015-03-31/functions?Marker=&MaxItems=       | 200     |
| GetFunction                  | GET    /2015-03-31/functions/{name}                  | 200     |
| DeleteFunction               | DELETE /2015-03-31/functions/{name}                  | 204     |
| GetFunctionConfiguration     | GET    /2015-03-31/functions/{name}/configuration    | 200     |
| UpdateFunctionConfiguration  | PUT    /2015-03-31/functions/{name}/configuration    | 200     |
| UpdateFunctionCode           | PUT    /2015-03-31/functions/{name}/code             | 200     |
| PutFunctionConcurrency       | PUT    /2017-10-31/functions/{name}/concurrency       | 200     |
| DeleteFunctionConcurrency    | DELETE /2017-10-31/functions/{name}/concurrency      | 204     |
| GetFunctionConcurrency       | GET    /2019-09-30/functions/{name}/concurrency      | 200     |
| GetAccountSettings           | GET    /2016-08-19/account-settings                  | 200     |

plus `GET /router/functions/{name}/code.zip`, where GetFunction's Code.Location points (Lambda's is a
pre-signed S3 URL). Uploaded ZIPs are checked in memory (router.control.uploads) before anything is written;
changes go through the FunctionCatalog, which persists them and hands the dispatcher the new set.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from aiohttp import web

from router.control.catalog import FunctionCatalog
from router.control.configuration import account_settings, function_configuration, get_function
from router.control.errors import invalid_parameter, not_found
from router.control.names import NEW_FUNCTION_NAME, parse_function_name
from router.control.plane import PLANE_KEY
from router.control.requests import (
    ConcurrencyIn,
    CreateFunctionIn,
    UpdateCodeIn,
    UpdateConfigurationIn,
    check_content_type,
    check_settings,
    check_zip_source,
    decode,
)
from router.control.store import FunctionRecord
from router.control.uploads import UnsafeZip, check_zip
from router.dispatch.registry import FunctionDefinition

DEFAULT_PAGE = 50


def _catalog(request: web.Request) -> FunctionCatalog:
    catalog = request.app[PLANE_KEY].catalog
    assert catalog is not None, "the control plane runs without a function catalog"
    return catalog


def _name(request: web.Request) -> str:
    """The plain function name of the path; a qualifier other than $LATEST names nothing that exists."""
    ref = parse_function_name(request.match_info["name"], request.query.get("Qualifier"))
    if not ref.is_latest:
        raise not_found(_catalog(request).arn(ref.name, ref.qualifier))
    return ref.name


def _configuration(request: web.Request, defn: FunctionDefinition) -> dict[str, Any]:
    catalog = _catalog(request)
    return function_configuration(defn, catalog.record(defn.name), catalog.config)


async def _body(request: web.Request) -> bytes:
    check_content_type(request.headers.get("Content-Type"))
    return await request.read()


async def _checked_zip(data: bytes) -> bytes:
    try:
        await asyncio.to_thread(check_zip, data)
    except UnsafeZip as e:
        raise invalid_parameter(str(e)) from None
    return data


# -- handlers ----------------------------------------------------------------------------------------------


async def create_function(request: web.Request) -> web.Response:
    req = decode(await _body(request), CreateFunctionIn)
    ref = parse_function_name(req.function_name)
    if ref.qualifier is not None or not NEW_FUNCTION_NAME.match(ref.name):
        raise invalid_parameter(
            f"FunctionName {req.function_name!r} must be 1-64 letters, digits, '-' or '_'"
        )
    if req.package_type != "Zip":
        raise invalid_parameter("The router runs ZIP packages only (PackageType Zip)")
    if req.runtime is None or req.handler is None:
        raise invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages."
        )
    env = req.environment.variables if req.environment else {}
    check_settings(
        runtime=req.runtime,
        handler=req.handler,
        memory_size=req.memory_size,
        timeout=req.timeout,
        description=req.description,
        environment=env,
        architectures=req.architectures,
    )
    zip_bytes = await _checked_zip(check_zip_source(req.code))
    record = FunctionRecord(
        name=ref.name,
        runtime=req.runtime,
        handler=req.handler,
        code_file="",
        role=req.role,
        description=req.description,
        memory_mb=req.memory_size,
        timeout_s=req.timeout,
        environment=dict(env),
        architectures=list(req.architectures),
    )
    defn = await _catalog(request).create(record, zip_bytes)
    return web.json_response(_configuration(request, defn), status=201)


async def list_functions(request: web.Request) -> web.Response:
    catalog = _catalog(request)
    limit = _max_items(request.query.get("MaxItems"))
    names = catalog.names()
    marker = request.query.get("Marker")
    if marker:
        after = _decode_marker(marker)
        names = [n for n in names if n > after]
    page, rest = names[:limit], names[limit:]
    body: dict[str, Any] = {"Functions": [_configuration(request, catalog.require(n)) for n in page]}
    if rest:
        body["NextMarker"] = _encode_marker(page[-1])
    return web.json_response(body)


async def get_function_handler(request: web.Request) -> web.Response:
    catalog = _catalog(request)
    defn = catalog.require(_name(request))
    base = f"{request.scheme}://{request.host}"
    return web.json_response(get_function(defn, catalog.record(defn.name), catalog.config, base))


async def get_configuration(request: web.Request) -> web.Response:
    return web.json_response(_configuration(request, _catalog(request).require(_name(request))))


async def update_configuration(request: web.Request) -> web.Response:
    req = decode(await _body(request), UpdateConfigurationIn)
    name = _name(request)
    env = req.environment.variables if req.environment is not None else None
    check_settings(
        runtime=req.runtime,
        handler=req.handler,
        memory_size=req.memory_size,
        timeout=req.timeout,
        description=req.description,
        environment=env,
    )
    given = {
        "runtime": req.runtime,
        "handler": req.handler,
        "memory_mb": req.memory_size,
        "timeout_s": req.timeout,
        "description": req.description,
        "role": req.role,
        "environment": env,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    defn = await _catalog(request).update_settings(name, changes, revision_id=req.revision_id)
    return web.json_response(_configuration(request, defn))


async def update_code(request: web.Request) -> web.Response:
    req = decode(await _body(request), UpdateCodeIn)
    name = _name(request)
    catalog = _catalog(request)
    if req.architectures is not None:
        check_settings(architectures=req.architectures)
    zip_bytes = await _checked_zip(check_zip_source(req))
    if req.dry_run:
        # Validate only: the function must exist and be writable; nothing is stored or applied.
        catalog.writable(name, req.revision_id)
        return web.json_response(_configuration(request, catalog.require(name)))
    defn = await catalog.update_code(name, zip_bytes, revision_id=req.revision_id)
    return web.json_response(_configuration(request, defn))


async def delete_function(request: web.Request) -> web.Response:
    await _catalog(request).delete(_name(request))
    return web.Response(status=204)


async def put_concurrency(request: web.Request) -> web.Response:
    req = decode(await _body(request), ConcurrencyIn)
    if req.reserved_concurrent_executions < 0:
        raise invalid_parameter("ReservedConcurrentExecutions must be 0 or more")
    name = _name(request)
    await _catalog(request).set_reserved(name, req.reserved_concurrent_executions)
    return web.json_response({"ReservedConcurrentExecutions": req.reserved_concurrent_executions})


async def get_concurrency(request: web.Request) -> web.Response:
    defn = _catalog(request).require(_name(request))
    reserved = defn.config.reserved_concurrency
    return web.json_response({} if reserved is None else {"ReservedConcurrentExecutions": reserved})


async def delete_concurrency(request: web.Request) -> web.Response:
    await _catalog(request).set_reserved(_name(request), None)
    return web.Response(status=204)


async def get_account_settings(request: web.Request) -> web.Response:
    catalog = _catalog(request)
    return web.json_response(account_settings(catalog.definitions(), catalog.config))


async def download_code(request: web.Request) -> web.StreamResponse:
    catalog = _catalog(request)
    name = _name(request)
    defn = catalog.require(name)
    path = catalog.code_path(name)
    if path is None:
        raise invalid_parameter(f"Function {name} comes from the config file; its code is {defn.config.code}")
    return web.FileResponse(path, headers={"Content-Type": "application/zip"})


# -- pagination --------------------------------------------------------------------------------------------


def _max_items(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    try:
        n = int(value)
    except ValueError:
        raise invalid_parameter(f"MaxItems must be an integer, got {value!r}") from None
    if not 1 <= n <= 10000:
        raise invalid_parameter(f"MaxItems must be between 1 and 10000, got {n}")
    return n


def _encode_marker(last_name: str) -> str:
    return base64.urlsafe_b64encode(last_name.encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        return base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_parameter(
            f"Invalid Marker {marker!r}: pass the NextMarker of a previous page"
        ) from None


def add_routes(app: web.Application) -> None:
    r = app.router
    for path in ("/2015-03-31/functions", "/2015-03-31/functions/"):
        r.add_post(path, create_function)
        r.add_get(path, list_functions)
    r.add_get("/2015-03-31/functions/{name}", get_function_handler)
    r.add_delete("/2015-03-31/functions/{name}", delete_function)
    r.add_get("/2015-03-31/functions/{name}/configuration", get_configuration)
    r.add_put("/2015-03-31/functions/{name}/configuration", update_configuration)
    r.add_put("/2015-03-31/functions/{name}/code", update_code)
    r.add_put("/2017-10-31/functions/{name}/concurrency", put_concurrency)
    r.add_delete("/2017-10-31/functions/{name}/concurrency", delete_concurrency)
    r.add_get("/2019-09-30/functions/{name}/concurrency", get_concurrency)
    for path in ("/2016-08-19/account-settings", "/2016-08-19/account-settings/"):
        r.add_get(path, get_account_settings)
    r.add_get("/router/functions/{name}/code.zip", download_code)
