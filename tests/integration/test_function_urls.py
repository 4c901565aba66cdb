"""Function URLs against a real `router serve`: created with boto3, then called with plain HTTP.

Covers: the URL in CreateFunctionUrlConfig's answer answers GET and POST with the function's proxy reply;
the payload 2.0 event Lambda sends for URLs (rawPath without the URL prefix, $default route and stage,
the lambda-url domain); CORS preflights and headers from the URL's Cors; AuthType NONE open on a router
with a token, AWS_IAM checked against it; an alias's URL running the alias's version; Get/Update/List/
Delete and their errors; a function error as 502.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from router.core import errors as E
from tests.integration.test_control import call, error_of
from tests.support import RouterProcess
from tests.unit.test_control_support import lambda_client, make_zip

CONFIG = """
server: {port: "${ROUTER_PORT}", auth_token: "${TOKEN:-}"}
state_dir: state
functions:
  cfg-echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo"}
"""

HANDLER = """
import json

VERSION = {version}

def handler(event, context):
    if event.get("rawPath") == "/fail":
        raise ValueError("asked to fail")
    ctx = event["requestContext"]
    seen = {{"version": VERSION, "rawPath": event["rawPath"], "query": event.get("queryStringParameters"),
            "routeKey": event["routeKey"], "stage": ctx["stage"], "domain": ctx["domainName"],
            "prefix": ctx["domainPrefix"], "account": ctx["accountId"], "method": ctx["http"]["method"],
            "body": event.get("body"), "cookies": event.get("cookies"), "iam": "authorizer" in ctx}}
    return {{"statusCode": 201, "headers": {{"x-seen": "yes"}}, "body": json.dumps(seen)}}
"""


def create_args(name: str, version: int = 1, **kw: Any) -> dict[str, Any]:
    return {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::123456789012:role/x",
            "Handler": "app.handler", "Code": {"ZipFile": code(version)}, **kw}  # fmt: skip


def code(version: int) -> bytes:
    return make_zip({"app.py": HANDLER.format(version=version)})


async def fetch(method: str, url: str, **kw: Any) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url, **kw) as r:
        text = await r.text()
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        return r.status, dict(r.headers), body


async def test_create_a_url_and_call_it(make_router: Any) -> None:
    router: RouterProcess = await make_router(CONFIG)
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("web"))
    created = await call(c.create_function_url_config, FunctionName="web", AuthType="NONE")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    url = created["FunctionUrl"]
    assert url.startswith(router.url + "/lambda-url/") and url.endswith("/")
    url_id = url.rstrip("/").rsplit("/", 1)[-1]

    status, headers, seen = await fetch("GET", url + "items/7?x=1&x=2", headers={"Cookie": "a=1; b=2"})
    assert status == 201 and headers["x-seen"] == "yes"
    assert seen == {"version": 1, "rawPath": "/items/7", "query": {"x": "1,2"}, "routeKey": "$default",
                    "stage": "$default", "domain": f"{url_id}.lambda-url.us-east-1.on.aws", "prefix": url_id,
                    "account": "anonymous", "method": "GET", "body": None, "cookies": ["a=1", "b=2"],
                    "iam": False}  # fmt: skip
    status, _, seen = await fetch("POST", url, data=b'{"n": 1}', headers={"Content-Type": "application/json"})
    assert status == 201 and seen["rawPath"] == "/" and seen["body"] == '{"n": 1}'
    status, _, body = await fetch("GET", url + "fail")
    assert status == 502 and body == {"message": "Internal Server Error"}

    got = await call(c.get_function_url_config, FunctionName="web")
    assert got["FunctionUrl"] == url and got["AuthType"] == "NONE" and got["InvokeMode"] == "BUFFERED"
    listed = await call(c.list_function_url_configs, FunctionName="web")
    assert [u["FunctionUrl"] for u in listed["FunctionUrlConfigs"]] == [url]

    # CORS, as configured on the URL.
    cors = {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET"], "MaxAge": 60}
    updated = await call(c.update_function_url_config, FunctionName="web", Cors=cors)
    assert updated["Cors"] == cors and updated["FunctionUrl"] == url
    status, headers, _ = await fetch("OPTIONS", url, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Methods"] == "GET" and headers["Access-Control-Max-Age"] == "60"
    status, headers, _ = await fetch("GET", url, headers={"Origin": "https://app.example"})
    assert status == 201 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    status, headers, _ = await fetch("GET", url, headers={"Origin": "https://elsewhere.example"})
    assert status == 201 and "Access-Control-Allow-Origin" not in headers

    await call(c.delete_function_url_config, FunctionName="web")
    assert (await fetch("GET", url))[0] == 404
    cases: list[tuple[Any, dict[str, Any], int, str, str]] = [
        (c.get_function_url_config, {"FunctionName": "web"}, 404, E.RESOURCE_NOT_FOUND, "does not exist"),
        (c.create_function_url_config, {"FunctionName": "web", "AuthType": "AWS_IAM"}, 400,
         E.INVALID_PARAMETER_VALUE, "auth_token"),
        (c.create_function_url_config, {"FunctionName": "web", "AuthType": "NONE", "Qualifier": "1"}, 400,
         E.INVALID_PARAMETER_VALUE, "alias"),
        (c.create_function_url_config, {"FunctionName": "web", "AuthType": "NONE", "Qualifier": "nope"}, 404,
         E.RESOURCE_NOT_FOUND, "Alias not found"),
        (c.create_function_url_config, {"FunctionName": "cfg-echo", "AuthType": "NONE"}, 409,
         E.RESOURCE_CONFLICT, "config file"),
    ]  # fmt: skip
    for fn, kw, status, error, needle in cases:
        e = await error_of(fn, **kw)
        assert e["ResponseMetadata"]["HTTPStatusCode"] == status, kw
        assert e["Error"]["Code"] == error, (kw, e["Error"])
        assert needle in e["Error"]["Message"], (kw, e["Error"]["Message"])
    await call(c.create_function_url_config, FunctionName="web", AuthType="NONE")
    e = await error_of(c.create_function_url_config, FunctionName="web", AuthType="NONE")
    assert e["Error"]["Code"] == E.RESOURCE_CONFLICT and "FunctionUrlConfig exists" in e["Error"]["Message"]


async def test_auth_types_and_an_alias_url_on_a_router_with_a_token(make_router: Any) -> None:
    router: RouterProcess = await make_router(CONFIG, env={"TOKEN": "sekret"})
    c = lambda_client(router.url, "sekret")
    await call(c.create_function, **create_args("web", Publish=True))
    await call(c.update_function_code, FunctionName="web", ZipFile=code(2))
    await call(c.create_alias, FunctionName="web", Name="live", FunctionVersion="1")
    open_url = (await call(c.create_function_url_config, FunctionName="web", AuthType="NONE"))["FunctionUrl"]
    iam = await call(c.create_function_url_config, FunctionName="web", Qualifier="live", AuthType="AWS_IAM")
    assert iam["FunctionArn"].endswith(":function:web:live")

    status, _, seen = await fetch("GET", open_url)  # no token needed: AuthType NONE
    assert status == 201 and seen["version"] == 2
    assert (await fetch("GET", f"{router.url}/2015-03-31/functions"))[0] == 401  # the API still needs it
    status, _, body = await fetch("GET", iam["FunctionUrl"])
    assert status == 403 and body == {"Message": "Forbidden"}
    status, _, _ = await fetch("GET", iam["FunctionUrl"], headers={"Authorization": "Bearer wrong"})
    assert status == 403
    status, _, seen = await fetch("GET", iam["FunctionUrl"], headers={"Authorization": "Bearer sekret"})
    assert status == 201 and seen["version"] == 1
    assert seen["iam"] is True and seen["account"] == "123456789012"
    listed = await call(c.list_function_url_configs, FunctionName="web")
    assert sorted(u["AuthType"] for u in listed["FunctionUrlConfigs"]) == ["AWS_IAM", "NONE"]
    await call(c.delete_alias, FunctionName="web", Name="live")  # its URL goes with it
    assert (await fetch("GET", iam["FunctionUrl"], headers={"Authorization": "Bearer sekret"}))[0] == 404
