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
pre-signed S3 URL). Code comes as `ZipFile` or from S3 (router.control.code_source), checked in memory before
anything is written; changes go through the FunctionCatalog, which persists them and hands the dispatcher
the new set.

Beyond the basics: `Publish: true` (CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration) publishes
a version of the result and answers with it; `Tags`, `Layers` and `DeadLetterConfig` are taken and stored;
GetFunction / GetFunctionConfiguration take a `Qualifier` (a version or an alias); DeleteFunction with a
version `Qualifier` deletes that version; ListFunctions with `FunctionVersion=ALL` lists every version too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router.control import access, code_source, pages
from router.control.access import Qualified, catalog, configuration, latest_name
from router.control.configuration import account_settings, get_function
from router.control.errors import invalid_parameter
from router.control.names import LATEST, NEW_FUNCTION_NAME, FunctionRef, parse_function_name
from router.control.requests import (
    ConcurrencyIn,
    CreateFunctionIn,
    DeadLetterConfigIn,
    UpdateCodeIn,
    UpdateConfigurationIn,
    check_settings,
    decode,
)
from router.control.store import FunctionRecord
from router.dispatch.registry import FunctionDefinition


def _latest(request: web.Request, defn: FunctionDefinition) -> dict[str, Any]:
    return configuration(request, Qualified(defn, catalog(request).record(defn.name), None))


async def _answer(
    request: web.Request, defn: FunctionDefinition, publish: bool, status: int = 200
) -> web.Response:
    """The function's configuration, or with Publish, that of the version published from it."""
    if publish:
        record, version = await catalog(request).versions.publish(
            defn.name, code_sha256=None, revision_id=None, description=None
        )
        return web.json_response(
            configuration(request, Qualified(version, record.function, None)), status=status
        )
    return web.json_response(_latest(request, defn), status=status)


def _dead_letter(config: DeadLetterConfigIn | None) -> str | None:
    if config is None or not config.target_arn:
        return None
    from router.control.async_settings import destination_from_arn

    destination_from_arn(config.target_arn, dead_letter=True)  # refuses anything but SQS and SNS
    return config.target_arn


# -- handlers ----------------------------------------------------------------------------------------------


async def create_function(request: web.Request) -> web.Response:
    req = decode(await access.body(request), CreateFunctionIn)
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
    cat = catalog(request)
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
        tags=access.check_tags(req.tags),
        layers=access.check_layers(cat, req.layers),
        dead_letter_arn=_dead_letter(req.dead_letter_config),
    )
    zip_bytes = await code_source.package(cat.config, req.code)
    defn = await cat.create(record, zip_bytes)
    return await _answer(request, defn, req.publish, status=201)


async def list_functions(request: web.Request) -> web.Response:
    cat = catalog(request)
    everything = request.query.get("FunctionVersion")
    if everything not in (None, "ALL"):
        raise invalid_parameter(f"FunctionVersion must be ALL, got {everything!r}")
    entries: list[tuple[str, str]] = []
    for name in cat.names():
        entries.append((name, LATEST))
        if everything:
            entries.extend((name, v.version) for v in cat.versions.of(name).ordered())
    chunk, marker = pages.page(request, entries, _entry_key)
    functions = [configuration(request, access.qualified(request, _ref(name, v))) for name, v in chunk]
    for config, (_, version) in zip(functions, chunk, strict=True):
        if version == LATEST:  # listed unqualified, as Lambda lists $LATEST
            config["FunctionArn"] = config["FunctionArn"].removesuffix(f":{LATEST}")
    body: dict[str, Any] = {"Functions": functions}
    if marker:
        body["NextMarker"] = marker
    return web.json_response(body)


def _entry_key(entry: tuple[str, str]) -> str:
    name, version = entry
    return name if version == LATEST else f"{name}:{version}"


def _ref(name: str, version: str) -> FunctionRef:
    return FunctionRef(name, None if version == LATEST else version)


async def get_function_handler(request: web.Request) -> web.Response:
    cat = catalog(request)
    q = access.qualified(request, access.target(request))
    base = f"{request.scheme}://{request.host}"
    record = cat.record(q.defn.name)
    tags = record.tags if record is not None else {}
    body = get_function(
        q.defn,
        q.record,
        cat.config,
        base,
        qualifier=q.qualifier,
        layer_size=access.layer_size(cat),
        tags=tags,
    )
    return web.json_response(body)


async def get_configuration(request: web.Request) -> web.Response:
    return web.json_response(configuration(request, access.qualified(request, access.target(request))))


async def update_configuration(request: web.Request) -> web.Response:
    req = decode(await access.body(request), UpdateConfigurationIn)
    name = latest_name(request)
    cat = catalog(request)
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
        "layers": access.check_layers(cat, req.layers) if req.layers is not None else None,
    }
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if req.dead_letter_config is not None:
        changes["dead_letter_arn"] = _dead_letter(req.dead_letter_config)
    defn = await cat.update_settings(name, changes, revision_id=req.revision_id)
    return await _answer(request, defn, False)


async def update_code(request: web.Request) -> web.Response:
    req = decode(await access.body(request), UpdateCodeIn)
    name = latest_name(request)
    cat = catalog(request)
    if req.architectures is not None:
        check_settings(architectures=req.architectures)
    zip_bytes = await code_source.package(cat.config, req)
    if req.dry_run:
        # Validate only: the function must exist and be writable; nothing is stored or applied.
        cat.writable(name, req.revision_id)
        return web.json_response(_latest(request, cat.require(name)))
    defn = await cat.update_code(name, zip_bytes, revision_id=req.revision_id)
    return await _answer(request, defn, req.publish)


async def delete_function(request: web.Request) -> web.Response:
    ref = access.target(request)
    cat = catalog(request)
    if ref.qualifier == LATEST:
        raise invalid_parameter("$LATEST version cannot be deleted without deleting the function.")
    if ref.qualifier is not None:
        cat.require(ref.name)
        await cat.versions.delete_version(ref.name, ref.qualifier)
    else:
        await cat.delete(ref.name)
    return web.Response(status=204)


async def put_concurrency(request: web.Request) -> web.Response:
    req = decode(await access.body(request), ConcurrencyIn)
    if req.reserved_concurrent_executions < 0:
        raise invalid_parameter("ReservedConcurrentExecutions must be 0 or more")
    name = latest_name(request)
    await catalog(request).set_reserved(name, req.reserved_concurrent_executions)
    return web.json_response({"ReservedConcurrentExecutions": req.reserved_concurrent_executions})


async def get_concurrency(request: web.Request) -> web.Response:
    defn = catalog(request).require(latest_name(request))
    reserved = defn.config.reserved_concurrency
    return web.json_response({} if reserved is None else {"ReservedConcurrentExecutions": reserved})


async def delete_concurrency(request: web.Request) -> web.Response:
    await catalog(request).set_reserved(latest_name(request), None)
    return web.Response(status=204)


async def get_account_settings(request: web.Request) -> web.Response:
    cat = catalog(request)
    return web.json_response(account_settings(cat.definitions(), cat.config))


async def download_code(request: web.Request) -> web.StreamResponse:
    cat = catalog(request)
    name = latest_name(request)
    defn = cat.require(name)
    path = cat.code_path(name)
    if path is None:
        raise invalid_parameter(f"Function {name} comes from the config file; its code is {defn.config.code}")
    return web.FileResponse(path, headers={"Content-Type": "application/zip"})


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
