"""Lambda layers: PublishLayerVersion, ListLayers, ListLayerVersions, GetLayerVersion, GetLayerVersionByArn,
DeleteLayerVersion.

| operation            | request                                                    | success |
| -------------------- | ---------------------------------------------------------- | ------- |
| PublishLayerVersion  | POST   /2018-10-31/layers/{name}/versions                  | 201     |
| ListLayerVersions    | GET    /2018-10-31/layers/{name}/versions                  | 200     |
| GetLayerVersion      | GET    /2018-10-31/layers/{name}/versions/{n}              | 200     |
| DeleteLayerVersion   | DELETE /2018-10-31/layers/{name}/versions/{n}              | 204     |
| ListLayers           | GET    /2018-10-31/layers                                  | 200     |
| GetLayerVersionByArn | GET    /2018-10-31/layers?find=LayerVersion&Arn={arn}       | 200     |

plus `GET /router/layers/{name}/{n}/content.zip`, where `Content.Location` points (Lambda's is a pre-signed
S3 URL). Content is `ZipFile` or an S3 object (router.control.code_source), checked like function code.
Versions are numbered from 1 per layer and never reused; ListLayerVersions lists the newest first, ListLayers
each layer with its newest version (`LatestMatchingVersion`), both filtered by `CompatibleRuntime` and
`CompatibleArchitecture` when given. A deleted version is gone from the API but functions that use it keep
it (router.control.layer_store).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from typing import Any

from aiohttp import web

from router.control import access, code_source, pages
from router.control.access import catalog
from router.control.errors import ApiError, invalid_parameter
from router.control.layer_store import LayerVersionRecord
from router.control.requests import RUNTIMES, Base, CodeIn, decode
from router.core import timefmt
from router.core.arn import layer_arn, parse_layer_version_arn
from router.core.errors import RESOURCE_NOT_FOUND

LAYER_NAME = re.compile(
    r"^(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:[0-9]{12}:layer:)?(?P<name>[a-zA-Z0-9_-]{1,140})\Z"
)
ARCHITECTURES = ("x86_64", "arm64")


class PublishLayerIn(Base):
    content: CodeIn
    description: str = ""
    compatible_runtimes: list[str] = []
    compatible_architectures: list[str] = []
    license_info: str | None = None


def _name(value: str) -> str:
    m = LAYER_NAME.match(value)
    if m is None:
        raise invalid_parameter(
            f"LayerName {value!r} must be 1-140 letters, digits, '-' or '_' (or a layer ARN)"
        )
    return m.group("name")


def _number(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise invalid_parameter(f"VersionNumber must be a number, got {value!r}")
    return int(value)


def _missing() -> ApiError:
    return ApiError(404, RESOURCE_NOT_FOUND, "The resource you requested does not exist.")


def _item(request: web.Request, record: LayerVersionRecord) -> dict[str, Any]:
    """A LayerVersionsListItem."""
    account = catalog(request).config.account
    out: dict[str, Any] = {
        "LayerVersionArn": layer_arn(record.name, account.region, account.account_id, record.version),
        "Version": record.version,
        "Description": record.description,
        "CreatedDate": timefmt.lambda_timestamp(record.created),
        "CompatibleRuntimes": list(record.compatible_runtimes),
        "CompatibleArchitectures": list(record.compatible_architectures),
    }
    if record.license_info is not None:
        out["LicenseInfo"] = record.license_info
    return out


def _full(request: web.Request, record: LayerVersionRecord) -> dict[str, Any]:
    account = catalog(request).config.account
    location = f"{request.scheme}://{request.host}/router/layers/{record.name}/{record.version}/content.zip"
    return {
        "Content": {"Location": location, "CodeSha256": record.code_sha256, "CodeSize": record.code_size},
        "LayerArn": layer_arn(record.name, account.region, account.account_id),
        **_item(request, record),
    }


async def publish_layer_version(request: web.Request) -> web.Response:
    req = decode(await access.body(request), PublishLayerIn)
    name = _name(request.match_info["name"])
    problems = [
        f"runtime {r!r} is not one the router runs" for r in req.compatible_runtimes if not RUNTIMES.match(r)
    ]
    problems += [
        f"architecture {a!r}: x86_64 or arm64" for a in req.compatible_architectures if a not in ARCHITECTURES
    ]
    if len(req.compatible_runtimes) > 15 or len(req.compatible_architectures) > 2:
        problems.append("at most 15 CompatibleRuntimes and 2 CompatibleArchitectures")
    if len(req.description) > 256:
        problems.append("Description must be at most 256 characters")
    if problems:
        raise invalid_parameter("; ".join(problems))
    cat = catalog(request)
    zip_bytes = await code_source.package(cat.config, req.content, "Content")
    record = LayerVersionRecord(
        name=name,
        version=0,
        code_sha256=base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode(),
        code_size=len(zip_bytes),
        created=time.time(),
        description=req.description,
        compatible_runtimes=list(req.compatible_runtimes),
        compatible_architectures=list(req.compatible_architectures),
        license_info=req.license_info,
    )
    async with cat.lock:
        record = await asyncio.to_thread(cat.layers.publish, record, zip_bytes)
    return web.json_response(_full(request, record), status=201)


def _matches(request: web.Request, record: LayerVersionRecord) -> bool:
    runtime = request.query.get("CompatibleRuntime")
    arch = request.query.get("CompatibleArchitecture")
    return (runtime is None or runtime in record.compatible_runtimes) and (
        arch is None or arch in record.compatible_architectures
    )


async def list_layer_versions(request: web.Request) -> web.Response:
    name = _name(request.match_info["name"])
    layer = catalog(request).layers.layers.get(name)
    records = [r for r in (layer.live() if layer else []) if _matches(request, r)]
    chunk, marker = pages.page(request, records, lambda r: str(r.version))
    body: dict[str, Any] = {"LayerVersions": [_item(request, r) for r in chunk]}
    if marker:
        body["NextMarker"] = marker
    return web.json_response(body)


async def list_layers(request: web.Request) -> web.Response:
    if request.query.get("find") == "LayerVersion":
        return await get_layer_version_by_arn(request)
    cat = catalog(request)
    account = cat.config.account
    found = []
    for name in sorted(cat.layers.layers):
        latest = next((r for r in cat.layers.layers[name].live() if _matches(request, r)), None)
        if latest is not None:
            found.append((name, latest))
    chunk, marker = pages.page(request, found, lambda item: item[0])
    layers = [{"LayerName": name, "LayerArn": layer_arn(name, account.region, account.account_id),
               "LatestMatchingVersion": _item(request, r)} for name, r in chunk]  # fmt: skip
    body: dict[str, Any] = {"Layers": layers}
    if marker:
        body["NextMarker"] = marker
    return web.json_response(body)


async def get_layer_version(request: web.Request) -> web.Response:
    name = _name(request.match_info["name"])
    record = catalog(request).layers.get(name, _number(request.match_info["version"]))
    if record is None:
        raise _missing()
    return web.json_response(_full(request, record))


async def get_layer_version_by_arn(request: web.Request) -> web.Response:
    arn = request.query.get("Arn", "")
    parsed = parse_layer_version_arn(arn)
    if parsed is None:
        raise invalid_parameter(f"Arn {arn!r} is not a layer version ARN")
    record = catalog(request).layers.get(*parsed)
    if record is None:
        raise _missing()
    return web.json_response(_full(request, record))


async def delete_layer_version(request: web.Request) -> web.Response:
    name = _name(request.match_info["name"])
    version = _number(request.match_info["version"])
    cat = catalog(request)
    async with cat.lock:
        await asyncio.to_thread(cat.layers.delete, name, version)
    return web.Response(status=204)


async def download_content(request: web.Request) -> web.StreamResponse:
    cat = catalog(request)
    name = _name(request.match_info["name"])
    version = _number(request.match_info["version"])
    if cat.layers.get(name, version) is None:
        raise _missing()
    return web.FileResponse(cat.layers.zip_path(name, version), headers={"Content-Type": "application/zip"})


def add_routes(app: web.Application) -> None:
    r = app.router
    for path in ("/2018-10-31/layers", "/2018-10-31/layers/"):
        r.add_get(path, list_layers)
    r.add_post("/2018-10-31/layers/{name}/versions", publish_layer_version)
    r.add_get("/2018-10-31/layers/{name}/versions", list_layer_versions)
    r.add_get("/2018-10-31/layers/{name}/versions/{version}", get_layer_version)
    r.add_delete("/2018-10-31/layers/{name}/versions/{version}", delete_layer_version)
    r.add_get("/router/layers/{name}/{version}/content.zip", download_content)
