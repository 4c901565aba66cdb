"""Function URLs, the serving side: `ANY /lambda-url/{url-id}/{path}` on the control port.

A request under a URL's prefix becomes the payload 2.0 event Lambda sends for function URLs, built by the
HTTP gateway's own code (router.sources.http.events, with router.shapes.apigateway): `rawPath` is the path
after the prefix (`/lambda-url/<id>/a/b` -> `/a/b`), `routeKey` and `stage` are `$default`,
`requestContext.domainName` is `<url-id>.lambda-url.<region>.on.aws`, `domainPrefix` and `apiId` the URL id,
`accountId` "anonymous" for AuthType NONE (with AWS_IAM, an `authorizer.iam` block). The function's result
maps to the reply as API Gateway's HTTP API maps it (router.sources.http.response: proxy shape, or any JSON
as a 200 JSON body; a function error is 502, a timeout 504), and the URL's Cors config is applied with the
gateway's CORS code (router.sources.http.cors): preflights answered without calling the function.

Replies of the gateway itself: 404 for an unknown URL id, 403 `{"Message": "Forbidden"}` for an AWS_IAM
URL without the router's token, 413 for a body over 6 MB, and the dispatch errors as the HTTP gateway maps
them (429 throttled, 503 draining, 500 no such function).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from router.config.sources.http import CorsConfig
from router.control.access import catalog
from router.control.auth import check_token
from router.control.errors import REQUEST_ID_KEY
from router.control.names import LATEST
from router.control.plane import PLANE_KEY
from router.control.records import UrlConfigRecord
from router.control.urls import PREFIX
from router.core.errors import DispatchError
from router.edge import bodies
from router.sources.http.cors import apply_cors, is_preflight, preflight_reply
from router.sources.http.events import ApiSettings, RequestFacts, gateway_event
from router.sources.http.response import Reply, error_reply, reply_for_dispatch_error, reply_for_result

PAYLOAD_LIMIT = 6 * 1024 * 1024
BODY_TIMEOUT_S = 30.0  # a URL request's body must arrive within this, as on the HTTP gateway by default
SOURCE = "function-url"
_encoder = msgspec.json.Encoder()


def find(request: web.Request, url_id: str) -> tuple[str, str, UrlConfigRecord] | None:
    """(function, qualifier, config) of a URL id, or None."""
    for name, record in catalog(request).records.items():
        for qualifier, url in record.urls.items():
            if url.url_id == url_id:
                return name, qualifier, url
    return None


def cors_of(url: UrlConfigRecord) -> CorsConfig | None:
    if url.cors is None:
        return None
    c: dict[str, Any] = url.cors
    return CorsConfig(
        allow_origins=list(c.get("AllowOrigins", [])),
        allow_methods=list(c.get("AllowMethods", [])),
        allow_headers=list(c.get("AllowHeaders", [])),
        expose_headers=list(c.get("ExposeHeaders", [])),
        max_age_s=int(c.get("MaxAge", 0)),
        allow_credentials=bool(c.get("AllowCredentials", False)),
    )


async def serve(request: web.Request) -> web.StreamResponse:
    found = find(request, request.match_info["url_id"])
    if found is None:
        return _response(error_reply(404))
    name, qualifier, url = found
    if url.auth_type == "AWS_IAM":
        token = request.app[PLANE_KEY].config.server.auth_token
        if check_token(request.headers.get("Authorization"), token) is not None:
            return _response(Reply(403, [("Content-Type", "application/json")], b'{"Message":"Forbidden"}'))
    cors = cors_of(url)
    origin = request.headers.get("Origin")
    wanted = request.headers.get("Access-Control-Request-Method")
    if cors is not None and is_preflight(request.method, origin, wanted):
        assert origin is not None and wanted is not None
        asked = request.headers.get("Access-Control-Request-Headers")
        return _response(preflight_reply(cors, origin, wanted, asked))
    reply = await _call(request, name, qualifier, url)
    if cors is not None:
        apply_cors(cors, reply, origin)
    return _response(reply)


async def _call(request: web.Request, name: str, qualifier: str, url: UrlConfigRecord) -> Reply:
    if request.content_length is not None and request.content_length > PAYLOAD_LIMIT:
        return error_reply(413)
    try:
        body = await bodies.read_body(request, limit=PAYLOAD_LIMIT, timeout_s=BODY_TIMEOUT_S)
    except bodies.BodyRefused as e:
        return error_reply(e.status)
    event = url_event(request, body, url)
    pinned = {} if qualifier == LATEST else {"qualifier": qualifier}
    try:
        result = await request.app[PLANE_KEY].dispatcher.invoke(
            name,
            _encoder.encode(event),
            trace=request.headers.get("X-Amzn-Trace-Id"),
            source=SOURCE,
            **pinned,
        )
    except DispatchError as e:
        return reply_for_dispatch_error(e)
    return reply_for_result(result, "2.0")


def url_event(request: web.Request, body: bytes, url: UrlConfigRecord) -> dict[str, Any]:
    account = request.app[PLANE_KEY].config.account
    raw_path, _, raw_query = request.raw_path.partition("?")
    path = "/" + raw_path[len(PREFIX) + len(url.url_id) :].lstrip("/")
    facts = RequestFacts.of(request, request[REQUEST_ID_KEY], path, raw_query, body)
    api = ApiSettings(api_id=url.url_id, account_id=account.account_id, region=account.region)
    event = gateway_event(facts, "2.0", "$default", {}, api)
    context = event["requestContext"]
    context["domainName"] = f"{url.url_id}.lambda-url.{account.region}.on.aws"
    context["domainPrefix"] = url.url_id
    if url.auth_type == "NONE":
        context["accountId"] = "anonymous"
    else:
        context["authorizer"] = {"iam": {"accessKey": None, "accountId": account.account_id,
                                         "callerId": None, "cognitoIdentity": None, "principalOrgId": None,
                                         "userArn": None, "userId": None}}  # fmt: skip
    return event


def _response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, headers=reply.headers)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", PREFIX + "{url_id}", serve)
    app.router.add_route("*", PREFIX + "{url_id}/{path:.*}", serve)
