"""The event source mapping operations of the Lambda API (paths, methods and codes of botocore's model).

* CreateEventSourceMapping: `POST /2015-03-31/event-source-mappings`, 202;
* ListEventSourceMappings: `GET /2015-03-31/event-source-mappings` with `FunctionName`, `EventSourceArn`,
  `Marker` and `MaxItems` in the query, 200;
* GetEventSourceMapping: `GET /2015-03-31/event-source-mappings/{UUID}`, 200;
* UpdateEventSourceMapping: `PUT /2015-03-31/event-source-mappings/{UUID}`, 202;
* DeleteEventSourceMapping: `DELETE /2015-03-31/event-source-mappings/{UUID}`, 202.

Older SDKs send the collection path with a trailing slash; both are served. An unknown UUID is a
ResourceNotFoundException ("The resource you requested does not exist."), as on Lambda.
ListEventSourceMappings pages with `Marker` (an opaque position the previous page returned as
`NextMarker`) and `MaxItems` (1-10000, default 100).
"""

from __future__ import annotations

from aiohttp import web

from router.control.errors import ApiError, invalid_parameter
from router.control.mappings.model import CreateIn, UpdateIn
from router.control.mappings.registry import MappingNotFound, MappingRegistry
from router.control.plane import PLANE_KEY
from router.control.requests import check_content_type, decode, read_body
from router.core.errors import RESOURCE_NOT_FOUND, SERVICE_EXCEPTION

COLLECTION = "/2015-03-31/event-source-mappings"
DEFAULT_PAGE = 100


def _registry(request: web.Request) -> MappingRegistry:
    registry: MappingRegistry | None = request.app[PLANE_KEY].mappings
    if registry is None:
        raise ApiError(500, SERVICE_EXCEPTION, "Event source mappings are not available in this router")
    return registry


def _missing(uuid: str) -> ApiError:
    return ApiError(404, RESOURCE_NOT_FOUND, f"The resource you requested does not exist. (UUID {uuid})")


async def _body(request: web.Request) -> bytes:
    check_content_type(request.headers.get("Content-Type"))
    return await read_body(request)


async def create_mapping(request: web.Request) -> web.Response:
    req = decode(await _body(request), CreateIn)
    return web.json_response(await _registry(request).create(req), status=202)


async def get_mapping(request: web.Request) -> web.Response:
    uuid = request.match_info["uuid"]
    try:
        return web.json_response(_registry(request).describe(uuid))
    except MappingNotFound:
        raise _missing(uuid) from None


async def update_mapping(request: web.Request) -> web.Response:
    uuid = request.match_info["uuid"]
    req = decode(await _body(request), UpdateIn)
    try:
        return web.json_response(await _registry(request).update(uuid, req), status=202)
    except MappingNotFound:
        raise _missing(uuid) from None


async def delete_mapping(request: web.Request) -> web.Response:
    uuid = request.match_info["uuid"]
    try:
        return web.json_response(await _registry(request).delete(uuid), status=202)
    except MappingNotFound:
        raise _missing(uuid) from None


async def list_mappings(request: web.Request) -> web.Response:
    q = request.query
    found = _registry(request).list(q.get("FunctionName") or None, q.get("EventSourceArn") or None)
    start, size = _page(q.get("Marker"), q.get("MaxItems"))
    body: dict[str, object] = {"EventSourceMappings": found[start : start + size]}
    if start + size < len(found):
        body["NextMarker"] = str(start + size)
    return web.json_response(body)


def _page(marker: str | None, max_items: str | None) -> tuple[int, int]:
    try:
        start = int(marker) if marker else 0
        size = int(max_items) if max_items else DEFAULT_PAGE
    except ValueError:
        raise invalid_parameter("Marker must be a value returned as NextMarker; MaxItems a number") from None
    if start < 0 or not 1 <= size <= 10000:
        raise invalid_parameter("MaxItems must be between 1 and 10000 and Marker a returned NextMarker")
    return start, size


def add_routes(app: web.Application) -> None:
    for path in (COLLECTION, f"{COLLECTION}/"):
        app.router.add_post(path, create_mapping)
        app.router.add_get(path, list_mappings)
    app.router.add_get(f"{COLLECTION}/{{uuid}}", get_mapping)
    app.router.add_put(f"{COLLECTION}/{{uuid}}", update_mapping)
    app.router.add_delete(f"{COLLECTION}/{{uuid}}", delete_mapping)
