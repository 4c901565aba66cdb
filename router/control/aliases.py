"""Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases.

| operation   | request                                               | success |
| ----------- | ----------------------------------------------------- | ------- |
| CreateAlias | POST   /2015-03-31/functions/{name}/aliases           | 201     |
| ListAliases | GET    /2015-03-31/functions/{name}/aliases           | 200     |
| GetAlias    | GET    /2015-03-31/functions/{name}/aliases/{alias}   | 200     |
| UpdateAlias | PUT    /2015-03-31/functions/{name}/aliases/{alias}   | 200     |
| DeleteAlias | DELETE /2015-03-31/functions/{name}/aliases/{alias}   | 204     |

An alias points to `FunctionVersion` ($LATEST or a published version) and may send a share of calls to
one more published version (`RoutingConfig.AdditionalVersionWeights`, a weight in [0, 1]); Lambda's rules
are checked here: a name of 1-128 letters, digits, `-` or `_` that is not only digits, at most one
additional version, which is not the alias's own, and no weights on an alias of $LATEST. Unknown versions
are ResourceNotFoundException, an existing alias on create ResourceConflictException, a stale RevisionId
PreconditionFailedException (router.control.versioning). ListAliases takes `FunctionVersion` (only the
aliases pointing to it), `Marker` and `MaxItems`. Deleting an alias also drops its event invoke config and
function URL.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from router.control import access, pages
from router.control.access import catalog
from router.control.errors import invalid_parameter
from router.control.names import LATEST
from router.control.records import AliasRecord
from router.control.requests import Base, decode

ALIAS_NAME = re.compile(r"^(?!^[0-9]+\Z)[a-zA-Z0-9_-]{1,128}\Z")
VERSION = re.compile(r"^(\$LATEST|[0-9]{1,1024})\Z")


class RoutingIn(Base):
    additional_version_weights: dict[str, float] = {}


class CreateAliasIn(Base):
    name: str
    function_version: str
    description: str = ""
    routing_config: RoutingIn | None = None


class UpdateAliasIn(Base):
    function_version: str | None = None
    description: str | None = None
    routing_config: RoutingIn | None = None
    revision_id: str | None = None


def alias_body(request: web.Request, name: str, alias: AliasRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AliasArn": catalog(request).arn(name, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
    return out


def checked(alias: AliasRecord) -> AliasRecord:
    problems = []
    if not ALIAS_NAME.match(alias.name):
        problems.append(
            f"Alias name {alias.name!r} must be 1-128 letters, digits, '-' or '_', not only digits"
        )
    if not VERSION.match(alias.version):
        problems.append(f"FunctionVersion {alias.version!r} must be $LATEST or a version number")
    if len(alias.description) > 256:
        problems.append("Description must be at most 256 characters")
    if len(alias.weights) > 1:
        problems.append("Number of items in AdditionalVersionWeights must be at most 1")
    for version, weight in alias.weights.items():
        if not version.isdigit():
            problems.append(f"AdditionalVersionWeights: {version!r} is not a published version number")
        if not 0.0 <= weight <= 1.0:
            problems.append(
                f"AdditionalVersionWeights: weight {weight} of version {version} must be in [0.0, 1.0]"
            )
        if version == alias.version:
            problems.append(f"Version {version} cannot be both the primary and the additional version")
    if alias.weights and alias.version == LATEST:
        problems.append("$LATEST is not supported for an alias pointing to more than 1 version")
    if problems:
        raise invalid_parameter("; ".join(problems))
    return alias


async def create_alias(request: web.Request) -> web.Response:
    req = decode(await access.body(request), CreateAliasIn)
    name = access.latest_name(request)
    weights = req.routing_config.additional_version_weights if req.routing_config else {}
    alias = checked(
        AliasRecord(name=req.name, version=req.function_version, description=req.description, weights=weights)
    )
    alias = await catalog(request).versions.put_alias(name, alias, create=True)
    return web.json_response(alias_body(request, name, alias), status=201)


async def get_alias(request: web.Request) -> web.Response:
    name = access.latest_name(request)
    catalog(request).require(name)
    alias = catalog(request).versions.alias(name, request.match_info["alias"])
    return web.json_response(alias_body(request, name, alias))


async def update_alias(request: web.Request) -> web.Response:
    req = decode(await access.body(request), UpdateAliasIn)
    name = access.latest_name(request)
    cat = catalog(request)
    cat.require(name)
    current = cat.versions.alias(name, request.match_info["alias"])
    changes: dict[str, Any] = {}
    if req.function_version is not None:
        changes["version"] = req.function_version
    if req.description is not None:
        changes["description"] = req.description
    if req.routing_config is not None:
        changes["weights"] = dict(req.routing_config.additional_version_weights)
    alias = checked(msgspec.structs.replace(current, **changes))
    alias = await cat.versions.put_alias(name, alias, revision_id=req.revision_id, create=False)
    return web.json_response(alias_body(request, name, alias))


async def delete_alias(request: web.Request) -> web.Response:
    name = access.latest_name(request)
    alias = request.match_info["alias"]
    cat = catalog(request)
    await cat.versions.delete_alias(name, alias)
    if cat.record(name) is not None:
        await cat.change(name, lambda r: msgspec.structs.replace(
            r, invoke_configs={q: c for q, c in r.invoke_configs.items() if q != alias},
            urls={q: u for q, u in r.urls.items() if q != alias},
        ))  # fmt: skip
    return web.Response(status=204)


async def list_aliases(request: web.Request) -> web.Response:
    name = access.latest_name(request)
    cat = catalog(request)
    cat.require(name)
    wanted = request.query.get("FunctionVersion")
    aliases = sorted(cat.versions.of(name).aliases.values(), key=lambda a: a.name)
    if wanted:
        aliases = [a for a in aliases if a.version == wanted or wanted in a.weights]
    chunk, marker = pages.page(request, aliases, lambda a: a.name)
    body: dict[str, Any] = {"Aliases": [alias_body(request, name, a) for a in chunk]}
    if marker:
        body["NextMarker"] = marker
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/2015-03-31/functions/{name}/aliases", create_alias)
    r.add_get("/2015-03-31/functions/{name}/aliases", list_aliases)
    r.add_get("/2015-03-31/functions/{name}/aliases/{alias}", get_alias)
    r.add_put("/2015-03-31/functions/{name}/aliases/{alias}", update_alias)
    r.add_delete("/2015-03-31/functions/{name}/aliases/{alias}", delete_alias)
