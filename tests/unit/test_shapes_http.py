"""API Gateway payloads 1.0 and 2.0, field by field against the samples in lambda-semantics.md section 1.7."""

from __future__ import annotations

import base64

import pytest

from router.shapes import apigateway, render

HEADERS = [
    ("Host", "abc123.execute-api.us-east-2.amazonaws.com"),
    ("User-Agent", "Mozilla/5.0"),
    ("Accept", "text/html"),
    ("X-Multi", "one"),
    ("x-multi", "two"),
    ("Cookie", "a=1; b=2"),
    ("Cookie", "c=3"),
]
T = 1583817383.220

V1_TOP = {
    "version",
    "resource",
    "path",
    "httpMethod",
    "headers",
    "multiValueHeaders",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "pathParameters",
    "stageVariables",
    "requestContext",
    "body",
    "isBase64Encoded",
}
V1_CONTEXT = {
    "accountId",
    "apiId",
    "domainName",
    "domainPrefix",
    "extendedRequestId",
    "httpMethod",
    "identity",
    "path",
    "protocol",
    "requestId",
    "requestTime",
    "requestTimeEpoch",
    "resourceId",
    "resourcePath",
    "stage",
}
V1_IDENTITY = {
    "accessKey": None,
    "accountId": None,
    "caller": None,
    "cognitoAuthenticationProvider": None,
    "cognitoAuthenticationType": None,
    "cognitoIdentityId": None,
    "cognitoIdentityPoolId": None,
    "principalOrgId": None,
    "sourceIp": "205.255.255.176",
    "user": None,
    "userAgent": "Mozilla/5.0",
    "userArn": None,
}


def test_v1_event_fields() -> None:
    ev = apigateway.v1_event(
        method="GET",
        path="/items/7",
        raw_query="p1=v1&p1=v2&p2=a%20b&P1=upper",
        headers=HEADERS,
        source_ip="205.255.255.176",
        resource="/items/{id}",
        path_parameters={"id": "7"},
        stage="Prod",
        stage_variables={"env": "dev"},
        time=T,
        request_id="req-1",
    )
    assert set(ev) == V1_TOP and ev["version"] == "1.0"
    assert (ev["resource"], ev["path"], ev["httpMethod"]) == ("/items/{id}", "/items/7", "GET")
    assert ev["headers"]["X-Multi"] == "two" and "x-multi" not in ev["headers"]
    assert ev["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert ev["multiValueHeaders"]["Cookie"] == ["a=1; b=2", "c=3"]
    assert ev["queryStringParameters"] == {"p1": "v2", "p2": "a b", "P1": "upper"}
    assert ev["multiValueQueryStringParameters"] == {"p1": ["v1", "v2"], "p2": ["a b"], "P1": ["upper"]}
    assert ev["pathParameters"] == {"id": "7"} and ev["stageVariables"] == {"env": "dev"}
    assert ev["body"] is None and ev["isBase64Encoded"] is False
    ctx = ev["requestContext"]
    assert set(ctx) == V1_CONTEXT
    assert ctx["identity"] == V1_IDENTITY
    assert ctx["path"] == "/Prod/items/7" and ctx["resourcePath"] == "/items/{id}" and ctx["stage"] == "Prod"
    assert ctx["requestTime"] == "10/Mar/2020:05:16:23 +0000" and ctx["requestTimeEpoch"] == 1583817383220
    assert (
        ctx["domainName"] == "abc123.execute-api.us-east-2.amazonaws.com" and ctx["domainPrefix"] == "abc123"
    )
    assert (ctx["requestId"], ctx["httpMethod"], ctx["protocol"]) == ("req-1", "GET", "HTTP/1.1")


def test_v1_event_without_query_headers_or_params_has_nulls() -> None:
    ev = apigateway.v1_event(method="GET", path="/")
    for key in ("headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters"):
        assert ev[key] is None, key
    assert ev["pathParameters"] is None and ev["stageVariables"] is None
    assert ev["requestContext"]["path"] == "/"  # $default stage: no prefix
    assert ev["requestContext"]["domainName"] == "routerlocal.execute-api.us-east-1.amazonaws.com"


V2_TOP = {
    "version",
    "routeKey",
    "rawPath",
    "rawQueryString",
    "cookies",
    "headers",
    "queryStringParameters",
    "requestContext",
    "body",
    "pathParameters",
    "isBase64Encoded",
    "stageVariables",
}


def test_v2_event_fields() -> None:
    ev = apigateway.v2_event(
        method="POST",
        path="/default/fn",
        raw_query="parameter1=value1&parameter1=value2&parameter2=value",
        headers=[*HEADERS, ("Content-Type", "application/json")],
        body=b'{"a": 1}',
        source_ip="205.255.255.176",
        route_key="ANY /default/fn",
        path_parameters={"x": "y"},
        stage="default",
        stage_variables={"s": "v"},
        time=T,
        request_id="JKJaXmPLvHcESHA=",
    )
    assert set(ev) == V2_TOP
    assert (ev["version"], ev["routeKey"], ev["rawPath"]) == ("2.0", "ANY /default/fn", "/default/fn")
    assert ev["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=value"
    assert ev["cookies"] == ["a=1", "b=2", "c=3"]
    assert ev["headers"] == {
        "host": "abc123.execute-api.us-east-2.amazonaws.com",
        "user-agent": "Mozilla/5.0",
        "accept": "text/html",
        "x-multi": "one,two",
        "content-type": "application/json",
    }
    assert ev["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value"}
    assert (ev["body"], ev["isBase64Encoded"]) == ('{"a": 1}', False)
    assert ev["pathParameters"] == {"x": "y"} and ev["stageVariables"] == {"s": "v"}
    assert ev["requestContext"] == {
        "accountId": "123456789012",
        "apiId": "routerlocal",
        "domainName": "abc123.execute-api.us-east-2.amazonaws.com",
        "domainPrefix": "abc123",
        "http": {
            "method": "POST",
            "path": "/default/fn",
            "protocol": "HTTP/1.1",
            "sourceIp": "205.255.255.176",
            "userAgent": "Mozilla/5.0",
        },
        "requestId": "JKJaXmPLvHcESHA=",
        "routeKey": "ANY /default/fn",
        "stage": "default",
        "time": "10/Mar/2020:05:16:23 +0000",
        "timeEpoch": 1583817383220,
    }


def test_v2_event_leaves_out_absent_optional_fields() -> None:
    ev = apigateway.v2_event(method="GET", path="/")
    assert set(ev) == {
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "headers",
        "requestContext",
        "isBase64Encoded",
    }
    assert ev["headers"] == {} and ev["rawQueryString"] == ""
    assert len(ev["requestContext"]["requestId"]) == 16


def test_bodies_text_or_base64() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00"
    ev = apigateway.v2_event(method="PUT", path="/", headers=[("content-type", "image/png")], body=png)
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == png
    assert apigateway.decode_body(ev) == png
    ev = apigateway.v1_event(
        method="PUT", path="/", headers=[("content-type", "text/plain")], body=b"\xff\xfe"
    )
    assert ev["isBase64Encoded"] is True and apigateway.decode_body(ev) == b"\xff\xfe"  # not UTF-8
    ev = apigateway.v1_event(
        method="PUT", path="/", headers=[("Content-Type", "application/vnd.api+json")], body=b"{}"
    )
    assert (ev["body"], ev["isBase64Encoded"]) == ("{}", False)
    ev = apigateway.v2_event(method="PUT", path="/", body=b"plain", base64=True)
    assert ev["isBase64Encoded"] is True and apigateway.decode_body(ev) == b"plain"
    assert apigateway.decode_body(apigateway.v2_event(method="GET", path="/")) == b""
    assert apigateway.is_text("application/x-www-form-urlencoded; charset=utf-8")
    assert not apigateway.is_text("application/octet-stream")


def test_envelope_and_render() -> None:
    ev = apigateway.v2_event(method="GET", path="/a", time=T, request_id="r")
    env = apigateway.envelope(ev, source_name="api")
    assert (env.id, env.subject, env.type) == ("r", "GET /a", "com.amazonaws.apigateway.request")
    assert env.time == "2020-03-10T05:16:23.220Z" and env.source == "router://sources/api"
    assert render("http", [env]) is ev
    v1 = apigateway.envelope(apigateway.v1_event(method="DELETE", path="/b", time=T), source_name="api")
    assert v1.subject == "DELETE /b" and v1.time == env.time


@pytest.mark.parametrize(
    "query",
    [
        "q=bench",
        "a=1&b=2&c=&d",
        "&&a&=x&",
        "a=1=2",
        "p=a%20b&x=%zz",
        "p=a+b",
        "k;v=1",
        "%E2%82%AC=1&e=%C3%A9",
    ],
)
def test_query_pairs_are_parse_qsl(query: str) -> None:
    """The query's quick split (no %, no +) gives what parse_qsl gives, blank values kept."""
    from urllib.parse import parse_qsl

    from router.shapes.apigateway import _query_pairs

    assert _query_pairs(query) == parse_qsl(query, keep_blank_values=True)
