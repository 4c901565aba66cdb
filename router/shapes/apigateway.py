"""API Gateway proxy requests (synchronous invoke): REST API payload 1.0, HTTP API / function URL payload 2.0.

`v1_event(...)` and `v2_event(...)` build the whole event (no `Records` list) from the raw request: method,
raw path, raw query string, headers as a list of (name, value) pairs in arrival order (repeats allowed),
body bytes, source ip, route key / resource, path parameters, stage.

* 1.0: `"version": "1.0"` (HTTP APIs send it with payload 1.0; Powertools reads it); `headers` keeps the
  last value of a repeated header and `multiValueHeaders` all of them, names as sent; `queryStringParameters`
  / `multiValueQueryStringParameters` likewise (URL-decoded); absent ones are null; `requestContext` with
  `identity` (sourceIp, userAgent, the rest null).
* 2.0: header names lower-cased and repeats comma-joined; Cookie headers move to `cookies`; repeated query
  parameters comma-joined; `rawPath`, `rawQueryString`, `requestContext.http`; absent optional fields are
  left out.
* Bodies: text (text/*, JSON, XML, JavaScript, YAML, form data, or no content type, and valid UTF-8) is
  passed as a string; anything else base64 with `isBase64Encoded: true`. `base64=True/False` forces it.
"""

from __future__ import annotations

import base64 as _b64
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "http"
SINGLE = True
API_ID = "routerlocal"
_TEXT_SUBTYPES = ("json", "xml", "javascript", "yaml", "x-yaml", "x-www-form-urlencoded", "graphql")

Headers = Sequence[tuple[str, str]]


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    top, _, sub = mime.partition("/")
    return top == "text" or sub in _TEXT_SUBTYPES or sub.endswith(("+json", "+xml"))


def encode_body(
    body: bytes | None, content_type: str | None, base64: bool | None = None
) -> tuple[str | None, bool]:
    """(body as the event carries it, isBase64Encoded)."""
    if not body:
        return None, False
    if base64 is None:
        base64 = not is_text(content_type)
    if not base64:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return common.b64(body), True


def decode_body(event: Mapping[str, Any]) -> bytes:
    """The request body bytes back out of a v1 or v2 event."""
    body = event.get("body")
    if body is None:
        return b""
    return _b64.b64decode(body) if event.get("isBase64Encoded") else str(body).encode("utf-8")


def _header(headers: Headers, name: str) -> str | None:
    found = [v for k, v in headers if k.lower() == name]
    return found[-1] if found else None


def _domain(host: str | None, api_id: str, region: str) -> tuple[str, str]:
    domain = host.rsplit(":", 1)[0] if host and not host.endswith("]") else host
    domain = domain or f"{api_id}.execute-api.{region}.amazonaws.com"
    return domain, domain.split(".", 1)[0]


def _v2_request_id() -> str:
    return common.b64(os.urandom(11))  # 16 characters ending in '=', like API Gateway's


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """`parse_qsl(raw_query, keep_blank_values=True)`; a query with nothing to decode (no `%`, no `+`, as
    most are) is split without it (one per gateway request)."""
    if "%" in raw_query or "+" in raw_query:
        return parse_qsl(raw_query, keep_blank_values=True)
    return [
        (name, value) for part in raw_query.split("&") if part for name, _, value in (part.partition("="),)
    ]


def _multi(pairs: Sequence[tuple[str, str]], names: str) -> dict[str, list[str]]:
    """Group repeated names. names: 'exact' (query), 'lower' (2.0 headers), 'first' (1.0 headers: the first
    spelling seen, matched case-insensitively)."""
    out: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for k, v in pairs:
        if names == "lower":
            k = k.lower()
        elif names == "first":
            k = spelling.setdefault(k.lower(), k)
        out.setdefault(k, []).append(v)
    return out


def v1_event(
    *,
    method: str,
    path: str,
    raw_query: str = "",
    headers: Headers = (),
    body: bytes | None = None,
    source_ip: str = "127.0.0.1",
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    stage: str = "$default",
    stage_variables: Mapping[str, str] | None = None,
    time: float | None = None,
    request_id: str | None = None,
    api_id: str = API_ID,
    account: str = common.ACCOUNT,
    region: str = common.REGION,
    protocol: str = "HTTP/1.1",
    authorizer: Mapping[str, Any] | None = None,
    base64: bool | None = None,
) -> dict[str, Any]:
    """A REST API (payload 1.0) proxy event. `resource` is the matched route template, e.g. /items/{id}."""
    t = common.now(time)
    multi_headers = _multi(headers, "first")
    query = _query_pairs(raw_query)
    multi_query = _multi(query, "exact") if query else None
    text, is_b64 = encode_body(body, _header(headers, "content-type"), base64)
    domain, prefix = _domain(_header(headers, "host"), api_id, region)
    resource = resource or path
    context: dict[str, Any] = {
        "accountId": account,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": prefix,
        "extendedRequestId": _v2_request_id(),
        "httpMethod": method,
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": source_ip,
            "user": None,
            "userAgent": _header(headers, "user-agent") or "",
            "userArn": None,
        },
        "path": path if stage == "$default" else f"/{stage}{path}",
        "protocol": protocol,
        "requestId": request_id or common.uuid4(),
        "requestTime": timefmt.clf(t),
        "requestTimeEpoch": common.epoch_ms(t),
        "resourceId": common.lower_hex_id(6),
        "resourcePath": resource,
        "stage": stage,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": dict(stage_variables) if stage_variables else None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": is_b64,
    }


def v2_event(
    *,
    method: str,
    path: str,
    raw_query: str = "",
    headers: Headers = (),
    body: bytes | None = None,
    source_ip: str = "127.0.0.1",
    route_key: str = "$default",
    path_parameters: Mapping[str, str] | None = None,
    stage: str = "$default",
    stage_variables: Mapping[str, str] | None = None,
    cookies: Sequence[str] | None = None,
    time: float | None = None,
    request_id: str | None = None,
    api_id: str = API_ID,
    account: str = common.ACCOUNT,
    region: str = common.REGION,
    protocol: str = "HTTP/1.1",
    authorizer: Mapping[str, Any] | None = None,
    base64: bool | None = None,
) -> dict[str, Any]:
    """An HTTP API / function URL (payload 2.0) event. `route_key` is e.g. 'GET /items/{id}' or '$default'."""
    t = common.now(time)
    # One pass over the headers: 2.0 lower-cases names and comma-joins repeats; Cookie headers move out.
    joined: dict[str, str] = {}
    last: dict[str, str] = {}
    found: list[str] = []
    for k, v in headers:
        lower = k.lower()
        last[lower] = v
        if lower == "cookie":
            if cookies is None:
                found.extend(c.strip() for c in v.split(";") if c.strip())
        elif lower in joined:
            joined[lower] = f"{joined[lower]},{v}"
        else:
            joined[lower] = v
    if cookies is None:
        cookies = found
    query = _multi(_query_pairs(raw_query), "exact") if raw_query else {}
    text, is_b64 = encode_body(body, last.get("content-type"), base64)
    domain, prefix = _domain(last.get("host"), api_id, region)
    context: dict[str, Any] = {
        "accountId": account,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": prefix,
        "http": {
            "method": method,
            "path": path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": last.get("user-agent") or "",
        },
        "requestId": request_id or _v2_request_id(),
        "routeKey": route_key,
        "stage": stage,
        "time": timefmt.clf(t),
        "timeEpoch": common.epoch_ms(t),
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = list(cookies)
    event["headers"] = joined
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    event["requestContext"] = context
    if text is not None:
        event["body"] = text
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["isBase64Encoded"] = is_b64
    if stage_variables:
        event["stageVariables"] = dict(stage_variables)
    return event


def envelope(
    ev: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    ctx = ev["requestContext"]
    if ev.get("version") == "2.0":
        method, path, epoch = ctx["http"]["method"], ev["rawPath"], ctx["timeEpoch"]
    else:
        method, path, epoch = ev["httpMethod"], ev["path"], ctx["requestTimeEpoch"]
    return Envelope(
        id=id or ctx["requestId"],
        source=f"router://sources/{source_name}",
        type="com.amazonaws.apigateway.request",
        subject=f"{method} {path}",
        time=timefmt.iso_ms(epoch / 1000),
        kind=KIND,
        source_name=source_name,
        record=ev,
        trace=trace,
        meta=meta or {},
    )


def wrap(envelopes: Sequence[Envelope], **_: Any) -> dict[str, Any]:
    return common.single_event(envelopes, "an API Gateway request")


SAMPLE_HEADERS = [
    ("Host", "127.0.0.1:8080"),
    ("User-Agent", "curl/8.5.0"),
    ("Accept", "application/json"),
    ("Content-Type", "application/json"),
    ("X-Forwarded-For", "205.255.255.176"),
    ("X-Forwarded-For", "10.0.0.1"),
    ("Cookie", "s_fid=7AABXMPL1AFD9BBF; regStatus=pre-register"),
]


def sample(version: str = "2.0") -> Envelope:
    common_args: dict[str, Any] = {
        "method": "POST",
        "path": "/items/42",
        "raw_query": "color=red&color=blue&size=L",
        "headers": SAMPLE_HEADERS,
        "body": b'{"name": "widget"}',
        "source_ip": "205.255.255.176",
        "path_parameters": {"id": "42"},
        "time": 1_700_000_000.220,
    }
    if version == "1.0":
        ev = v1_event(
            resource="/items/{id}", request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef", **common_args
        )
    else:
        ev = v2_event(route_key="POST /items/{id}", request_id="JKJaXmPLvHcESHA=", **common_args)
    return envelope(ev, source_name="api")
