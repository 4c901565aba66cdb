"""Function URLs, the API side: CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
DeleteFunctionUrlConfig, ListFunctionUrlConfigs. Serving the URLs is router.control.url_gateway's.

| operation               | request                                          | success |
| ----------------------- | ------------------------------------------------ | ------- |
| CreateFunctionUrlConfig | POST   /2021-10-31/functions/{name}/url          | 201     |
| GetFunctionUrlConfig    | GET    /2021-10-31/functions/{name}/url          | 200     |
| UpdateFunctionUrlConfig | PUT    /2021-10-31/functions/{name}/url          | 200     |
| DeleteFunctionUrlConfig | DELETE /2021-10-31/functions/{name}/url          | 204     |
| ListFunctionUrlConfigs  | GET    /2021-10-31/functions/{name}/urls         | 200     |

One URL per function and qualifier (`?Qualifier=`: none/`$LATEST`, or an alias; Lambda takes no version
numbers). The URL is `http://<the host the API call reached>/lambda-url/<url-id>/`: the control port, under
a path of its own (see url_gateway). `AuthType` NONE opens it to anyone who reaches the port (the control
plane's token is not asked); AWS_IAM asks for the router's `server.auth_token` (Bearer, or SigV4 signed with
the token as access key id) and is refused when the router has no token. `Cors` (AllowOrigins, AllowMethods,
AllowHeaders, ExposeHeaders, MaxAge, AllowCredentials) is applied by the gateway as Lambda does;
`InvokeMode` RESPONSE_STREAM is stored but answered buffered. Config-file functions are read-only here.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

import msgspec
from aiohttp import web

from router.control import access, pages
from router.control.access import catalog
from router.control.errors import ApiError, conflict, invalid_parameter
from router.control.names import LATEST
from router.control.records import UrlConfigRecord
from router.control.requests import Base, decode
from router.core import timefmt
from router.core.errors import RESOURCE_NOT_FOUND

PREFIX = "/lambda-url/"
AUTH_TYPES = ("NONE", "AWS_IAM")
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
METHODS = {"GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "*"}
CORS_KEYS = ("AllowCredentials", "AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders", "MaxAge")


class CorsIn(Base):
    allow_credentials: bool | None = None
    allow_headers: list[str] | None = None
    allow_methods: list[str] | None = None
    allow_origins: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: int | None = None


class UrlConfigIn(Base):
    auth_type: str | None = None
    cors: CorsIn | None = None
    invoke_mode: str | None = None


def _checked(req: UrlConfigIn, cat: Any) -> dict[str, Any]:
    problems = []
    if req.auth_type is not None and req.auth_type not in AUTH_TYPES:
        problems.append(f"AuthType must be NONE or AWS_IAM, got {req.auth_type!r}")
    if req.auth_type == "AWS_IAM" and not cat.config.server.auth_token:
        problems.append(
            "AuthType AWS_IAM is checked against the router's server.auth_token, which is not set"
        )
    if req.invoke_mode is not None and req.invoke_mode not in INVOKE_MODES:
        problems.append(f"InvokeMode must be BUFFERED or RESPONSE_STREAM, got {req.invoke_mode!r}")
    cors = req.cors
    if cors is not None:
        bad = [m for m in cors.allow_methods or [] if m.upper() not in METHODS]
        if bad:
            problems.append(f"Cors.AllowMethods: {bad} are not HTTP methods")
        if cors.max_age is not None and not 0 <= cors.max_age <= 86400:
            problems.append(f"Cors.MaxAge must be between 0 and 86400, got {cors.max_age}")
        if cors.allow_credentials and "*" in (cors.allow_origins or []):
            problems.append("Cors: AllowOrigins '*' cannot be used with AllowCredentials true")
    if problems:
        raise invalid_parameter("; ".join(problems))
    fields: dict[str, Any] = {}
    if req.auth_type is not None:
        fields["auth_type"] = req.auth_type
    if req.invoke_mode is not None:
        fields["invoke_mode"] = req.invoke_mode
    if cors is not None:
        fields["cors"] = {k: v for k, v in msgspec.to_builtins(cors).items() if v is not None}
    return fields


def _target(request: web.Request) -> tuple[str, str]:
    ref = access.target(request)
    cat = catalog(request)
    cat.writable(ref.name, None)
    qualifier = ref.qualifier or LATEST
    if qualifier != LATEST:
        if qualifier.isdigit():
            raise invalid_parameter("A function URL's Qualifier is $LATEST or an alias, not a version number")
        cat.versions.alias(ref.name, qualifier)
    return ref.name, qualifier


def url_of(request: web.Request, url_id: str) -> str:
    return f"{request.scheme}://{request.host}{PREFIX}{url_id}/"


def _body(request: web.Request, name: str, qualifier: str, url: UrlConfigRecord) -> dict[str, Any]:
    arn = catalog(request).arn(name, None if qualifier == LATEST else qualifier)
    out: dict[str, Any] = {
        "FunctionUrl": url_of(request, url.url_id),
        "FunctionArn": arn,
        "AuthType": url.auth_type,
        "CreationTime": timefmt.iso_ms(url.created),
        "LastModifiedTime": timefmt.iso_ms(url.last_modified),
        "InvokeMode": url.invoke_mode,
    }
    if url.cors is not None:
        out["Cors"] = dict(url.cors)
    return out


def _missing() -> ApiError:
    return ApiError(404, RESOURCE_NOT_FOUND, "The resource you requested does not exist.")


def _urls(request: web.Request, name: str) -> dict[str, UrlConfigRecord]:
    record = catalog(request).record(name)
    return dict(record.urls) if record is not None else {}


async def create_url(request: web.Request) -> web.Response:
    req = decode(await access.body(request), UrlConfigIn)
    name, qualifier = _target(request)
    cat = catalog(request)
    if req.auth_type is None:
        raise invalid_parameter("AuthType is required: NONE or AWS_IAM")
    fields = _checked(req, cat)
    if qualifier in _urls(request, name):
        arn = cat.arn(name, qualifier)
        raise conflict(f"Failed to create function url config for [functionArn = {arn}]. "
                       "Error message:  FunctionUrlConfig exists for this Lambda function")  # fmt: skip
    alphabet = string.ascii_lowercase + string.digits
    now = time.time()
    url = UrlConfigRecord(url_id="".join(secrets.choice(alphabet) for _ in range(32)), created=now,
                          last_modified=now, **fields)  # fmt: skip
    await cat.change(name, lambda r: msgspec.structs.replace(r, urls={**r.urls, qualifier: url}))
    body = _body(request, name, qualifier, url)
    body.pop("LastModifiedTime")
    return web.json_response(body, status=201)


async def update_url(request: web.Request) -> web.Response:
    req = decode(await access.body(request), UrlConfigIn)
    name, qualifier = _target(request)
    cat = catalog(request)
    fields = _checked(req, cat)
    current = _urls(request, name).get(qualifier)
    if current is None:
        raise _missing()
    url = msgspec.structs.replace(current, **fields, last_modified=time.time())
    await cat.change(name, lambda r: msgspec.structs.replace(r, urls={**r.urls, qualifier: url}))
    return web.json_response(_body(request, name, qualifier, url))


async def get_url(request: web.Request) -> web.Response:
    name, qualifier = _target(request)
    url = _urls(request, name).get(qualifier)
    if url is None:
        raise _missing()
    return web.json_response(_body(request, name, qualifier, url))


async def delete_url(request: web.Request) -> web.Response:
    name, qualifier = _target(request)
    if qualifier not in _urls(request, name):
        raise _missing()
    await catalog(request).change(name, lambda r: msgspec.structs.replace(
        r, urls={q: u for q, u in r.urls.items() if q != qualifier}))  # fmt: skip
    return web.Response(status=204)


async def list_urls(request: web.Request) -> web.Response:
    name = access.latest_name(request)
    catalog(request).require(name)
    items = sorted(_urls(request, name).items())
    chunk, marker = pages.page(request, items, lambda item: item[0])
    body: dict[str, Any] = {"FunctionUrlConfigs": [_body(request, name, q, u) for q, u in chunk]}
    if marker:
        body["NextMarker"] = marker
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/2021-10-31/functions/{name}/url", create_url)
    r.add_get("/2021-10-31/functions/{name}/url", get_url)
    r.add_put("/2021-10-31/functions/{name}/url", update_url)
    r.add_delete("/2021-10-31/functions/{name}/url", delete_url)
    r.add_get("/2021-10-31/functions/{name}/urls", list_urls)
