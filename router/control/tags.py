"""Function tags: TagResource, UntagResource, ListTags (and `Tags` in CreateFunction and GetFunction).

| operation     | request                                             | success |
| ------------- | --------------------------------------------------- | ------- |
| TagResource   | POST   /2017-03-31/tags/{ARN}                        | 204     |
| UntagResource | DELETE /2017-03-31/tags/{ARN}?tagKeys=k1&tagKeys=k2  | 204     |
| ListTags      | GET    /2017-03-31/tags/{ARN}                        | 200     |

The resource is a function ARN (or name), unqualified: Lambda does not tag versions or aliases
(InvalidParameterValueException). At most 50 tags, keys 1-128 characters not starting with `aws:`, values
at most 256 (router.control.access.check_tags). Tags are stored with the function and leave with it;
config-file functions have none and cannot be tagged (ResourceConflictException: read-only).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from router.control import access
from router.control.access import catalog
from router.control.errors import invalid_parameter
from router.control.names import parse_function_name
from router.control.requests import Base, decode


class TagsIn(Base):
    tags: dict[str, str] = {}


def _function(request: web.Request) -> str:
    resource = request.match_info["resource"]
    if ":function:" not in resource and resource.startswith("arn:"):
        raise invalid_parameter(f"Resource {resource} is not a function ARN: only functions have tags here")
    ref = parse_function_name(resource)
    if ref.qualifier is not None:
        raise invalid_parameter(
            "Tags on function aliases and versions are not supported. Please specify a function ARN."
        )
    return ref.name


async def tag_resource(request: web.Request) -> web.Response:
    req = decode(await access.body(request), TagsIn)
    name = _function(request)
    cat = catalog(request)
    current = cat.writable(name, None).tags
    tags = access.check_tags({**current, **req.tags})
    await cat.change(name, lambda r: msgspec.structs.replace(r, tags=tags))
    return web.Response(status=204)


async def untag_resource(request: web.Request) -> web.Response:
    name = _function(request)
    keys = set(request.query.getall("tagKeys", []))
    cat = catalog(request)
    cat.writable(name, None)
    await cat.change(
        name, lambda r: msgspec.structs.replace(r, tags={k: v for k, v in r.tags.items() if k not in keys})
    )
    return web.Response(status=204)


async def list_tags(request: web.Request) -> web.Response:
    name = _function(request)
    cat = catalog(request)
    cat.require(name)
    record = cat.record(name)
    return web.json_response({"Tags": dict(record.tags) if record is not None else {}})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/2017-03-31/tags/{resource}", tag_resource)
    r.add_delete("/2017-03-31/tags/{resource}", untag_resource)
    r.add_get("/2017-03-31/tags/{resource}", list_tags)
