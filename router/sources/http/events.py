"""What the HTTP gateway tells a function about a request: the API Gateway event, or the CloudEvent it is.

`RequestFacts` is a plain snapshot of one HTTP request (method, encoded path and query, headers in arrival
order with their original spelling, body bytes, peer address, arrival time, request id). `gateway_event`
turns it into the event API Gateway's Lambda proxy integration sends, with the builders of
`router/shapes/apigateway.py` (payload 2.0 or 1.0, every field AWS sends), after adding what API Gateway adds
to the headers: X-Forwarded-For (the peer appended), X-Forwarded-Port, X-Forwarded-Proto and an
X-Amzn-Trace-Id. A media type listed in `binary_media_types` (globs allowed) is always passed as base64.

A named stage (any but `$default`) is part of the URL, as on AWS: `/<stage>/items/42` reaches the routes as
`/items/42` (`stage_path`); a path outside the stage is 404. Payload 2.0 keeps the stage in `rawPath` and
`requestContext.http.path` (Powertools' resolvers strip it again); 1.0 has `path` without it and
`requestContext.path` with it.

REST APIs (1.0) have no `$default` route; a request it catches looks like one to the catch-all resource
`/{proxy+}`, with the path (without its leading slash) as the `proxy` path parameter.

`incoming_cloudevent(facts)` reads a request that is itself a CloudEvent (CloudEvents HTTP binding, binary or
structured mode) for routes whose function takes CloudEvents; None when it is not one.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from router.core import ids
from router.shapes import apigateway, cloudevents

if TYPE_CHECKING:
    from aiohttp import web


@dataclass
class RequestFacts:
    method: str
    raw_path: str  # as sent, percent-encoded, without the query
    raw_query: str  # as sent, without '?'
    headers: list[tuple[str, str]]  # arrival order, original spelling
    body: bytes
    source_ip: str
    time: float  # epoch seconds
    request_id: str
    protocol: str = "HTTP/1.1"
    scheme: str = "http"
    local_port: int = 0

    @classmethod
    def of(
        cls,
        request: web.BaseRequest,
        request_id: str,
        raw_path: str,
        raw_query: str,
        body: bytes,
        default_port: int = 0,
    ) -> RequestFacts:
        """The facts of an aiohttp request as it arrived (`default_port` when the socket is gone)."""
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        sock = transport.get_extra_info("sockname") if transport is not None else None
        version = request.version
        return cls(
            method=request.method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=[(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.raw_headers],
            body=body,
            source_ip=peer[0] if peer else "127.0.0.1",
            time=time.time(),
            request_id=request_id,
            protocol=f"HTTP/{version.major}.{version.minor}",
            local_port=sock[1] if sock else default_port,
        )

    def header(self, name: str) -> str | None:
        """The last value of a header (case-insensitive), or None."""
        return self._last.get(name.lower())

    @cached_property
    def _last(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers}

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ('' when none was sent)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class ApiSettings:
    """What the events say about the API itself (from the source's config)."""

    api_id: str
    stage: str = "$default"
    account_id: str = "123456789012"
    region: str = "us-east-1"
    stage_variables: dict[str, str] = field(default_factory=dict)
    binary_media_types: tuple[str, ...] = ()


def stage_path(raw_path: str, stage: str) -> str | None:
    """The path the routes see: `raw_path` without its leading `/<stage>`; None when a named stage is not
    its first segment (AWS answers 404). Under `$default` the path is unchanged."""
    if stage == "$default":
        return raw_path
    prefix = f"/{stage}"
    if raw_path == prefix:
        return "/"
    if raw_path.startswith(prefix + "/"):
        return raw_path[len(prefix) :]
    return None


def api_id_for(source_name: str) -> str:
    """A stable 10-character API id of lower-case letters and digits, as API Gateway's look."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % 36] for b in hashlib.sha256(source_name.encode()).digest()[:10])


def new_request_id(version: str) -> str:
    """HTTP API request ids look like 'JKJaXmPLvHcESHA=', REST API ones are UUIDs."""
    if version == "2.0":
        return base64.b64encode(ids.random_bytes(11)).decode("ascii")
    return ids.new_request_id()


def gateway_headers(facts: RequestFacts) -> list[tuple[str, str]]:
    """The request's headers plus the x-forwarded-* and trace headers API Gateway adds."""
    skip = ("x-forwarded-for", "x-forwarded-port")
    headers = [(k, v) for k, v in facts.headers if k.lower() not in skip]
    forwarded = facts.header("x-forwarded-for")
    headers.append(("X-Forwarded-For", f"{forwarded}, {facts.source_ip}" if forwarded else facts.source_ip))
    headers.append(("X-Forwarded-Port", str(facts.local_port)))
    if facts.header("x-forwarded-proto") is None:
        headers.append(("X-Forwarded-Proto", facts.scheme))
    if facts.header("x-amzn-trace-id") is None:
        headers.append(("X-Amzn-Trace-Id", f"Root=1-{int(facts.time):08x}-{ids.random_hex(24)}"))
    return headers


def _forced_base64(facts: RequestFacts, api: ApiSettings) -> bool | None:
    media = facts.content_type
    if media and any(fnmatch.fnmatchcase(media, p) for p in api.binary_media_types):
        return True
    return None  # the builder decides: text as is, binary as base64


def gateway_event(
    facts: RequestFacts, version: str, route_key: str, path_params: dict[str, str], api: ApiSettings
) -> dict[str, Any]:
    inner = stage_path(facts.raw_path, api.stage)
    assert inner is not None, "routed requests lie within the stage"
    common: dict[str, Any] = {
        "method": facts.method,
        "path": facts.raw_path if version == "2.0" else inner,
        "raw_query": facts.raw_query,
        "headers": gateway_headers(facts),
        "body": facts.body,
        "source_ip": facts.source_ip,
        "stage": api.stage,
        "stage_variables": api.stage_variables or None,
        "time": facts.time,
        "request_id": facts.request_id,
        "api_id": api.api_id,
        "account": api.account_id,
        "region": api.region,
        "protocol": facts.protocol,
        "base64": _forced_base64(facts, api),
    }
    if version == "2.0":
        return apigateway.v2_event(route_key=route_key, path_parameters=path_params or None, **common)
    resource = route_key.split(" ", 1)[1] if " " in route_key else route_key
    if route_key == "$default":
        proxy = unquote(inner.lstrip("/"))
        resource, path_params = "/{proxy+}", ({"proxy": proxy} if proxy else {})
    return apigateway.v1_event(resource=resource, path_parameters=path_params or None, **common)


class CloudEventRejected(ValueError):
    """The request claims to be a CloudEvent the gateway does not take. `status` is the reply's status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def incoming_cloudevent(facts: RequestFacts) -> dict[str, Any] | None:
    """The request as a structured CloudEvent; None if it is not one, CloudEventRejected if a bad one."""
    if not cloudevents.is_cloudevent(facts.headers):
        return None
    if facts.content_type == cloudevents.BATCH:
        raise CloudEventRejected("CloudEvents batch mode is not accepted: send one event per request", 415)
    try:
        event = cloudevents.from_http(facts.headers, facts.body)
    except ValueError as e:
        raise CloudEventRejected(str(e)) from None
    assert isinstance(event, dict)
    return event
