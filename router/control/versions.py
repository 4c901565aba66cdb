"""Published versions: PublishVersion and ListVersionsByFunction (DeleteFunction with a version Qualifier
deletes one: router.control.functions).

| operation              | request                                          | success |
| ---------------------- | ------------------------------------------------ | ------- |
| PublishVersion         | POST /2015-03-31/functions/{name}/versions       | 201     |
| ListVersionsByFunction | GET  /2015-03-31/functions/{name}/versions       | 200     |

PublishVersion snapshots $LATEST's code and configuration as version N+1 (router.control.versioning);
`CodeSha256` and `RevisionId`, when given, must be $LATEST's. ListVersionsByFunction lists $LATEST, then the
versions in order, `MaxItems` (1-10000, default 50) per page with `Marker`.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from router.control import access, pages
from router.control.access import Qualified, catalog, configuration
from router.control.errors import invalid_parameter
from router.control.names import LATEST
from router.control.requests import Base, decode


class PublishVersionIn(Base):
    code_sha256: str | None = None
    description: str | None = None
    revision_id: str | None = None
    publish_to: str | None = None


async def publish_version(request: web.Request) -> web.Response:
    req = decode(await access.body(request), PublishVersionIn)
    name = access.latest_name(request)
    if req.description is not None and len(req.description) > 256:
        raise invalid_parameter("Description must be at most 256 characters")
    record, defn = await catalog(request).versions.publish(
        name, code_sha256=req.code_sha256, revision_id=req.revision_id, description=req.description
    )
    return web.json_response(configuration(request, Qualified(defn, record.function, None)), status=201)


async def list_versions(request: web.Request) -> web.Response:
    name = access.latest_name(request)
    cat = catalog(request)
    latest = cat.require(name)
    entries = [LATEST, *(v.version for v in cat.versions.of(name).ordered())]
    chunk, marker = pages.page(request, entries, str)
    out = []
    for version in chunk:
        if version == LATEST:
            out.append(configuration(request, Qualified(latest, cat.record(name), LATEST)))
        else:
            record, defn = cat.versions.version(name, version)
            out.append(configuration(request, Qualified(defn, record.function, None)))
    body: dict[str, object] = {"Versions": out}
    if marker:
        body["NextMarker"] = marker
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/2015-03-31/functions/{name}/versions", publish_version)
    app.router.add_get("/2015-03-31/functions/{name}/versions", list_versions)
