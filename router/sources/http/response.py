"""From a function's result to the HTTP reply, as API Gateway's Lambda proxy integration maps it.

`reply_for_result(result, version)`:

* a function error gives 502 `{"message": "Internal Server Error"}` (REST API spelling for 1.0: "Internal
  server error"), except a timeout (errorType Sandbox.Timeout): 504 `{"message": "Endpoint request timed
  out"}`;
* a result of the proxy shape `{statusCode, headers, multiValueHeaders, cookies, body, isBase64Encoded}`
  becomes that reply: headers and multiValueHeaders merged (multiValueHeaders win on a shared name), each
  cookie a Set-Cookie header, a base64 body decoded, content-type application/json when none is given;
* with 2.0, any other valid JSON result becomes a 200 application/json reply whose body is that JSON
  (a JSON string: the string itself); with 1.0 it is malformed;
* a malformed result (not JSON, a bad statusCode, a non-string body, bad base64, a header name that is not
  a token or a header value or cookie holding CR, LF or NUL, with 1.0 unknown keys)
  gives the 502 above.

`reply_for_dispatch_error(error)` maps "the function did not run": Throttled 429 "Too Many Requests",
ShuttingDown 503 "Service Unavailable", LoopDetected 508 "Loop Detected", a missing function 500 (as API
Gateway answers an integration it cannot call), anything else by the error's status.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from router.core.errors import SANDBOX_TIMEOUT, DispatchError, FunctionNotFound, LoopDetected
from router.core.results import InvocationResult

log = logging.getLogger("router.sources.http")

JSON = "application/json"
V1_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Hop-by-hop and framing headers are the server's business, never the function's.
_DROPPED = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"})
MESSAGES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Internal Server Error",
    503: "Service Unavailable",
    501: "Not Implemented",
    504: "Endpoint request timed out",
    505: "HTTP Version Not Supported",
    508: "Loop Detected",
}

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (a header name), with fullmatch
_UNSAFE = re.compile(r"[\r\n\x00]")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


class MalformedResult(ValueError):
    """The function's result is not a valid proxy response."""


def error_reply(
    status: int, message: str | None = None, headers: list[tuple[str, str]] | None = None
) -> Reply:
    body = _encoder.encode({"message": message or MESSAGES.get(status, "Error")})
    return Reply(status, [("Content-Type", JSON), *(headers or [])], body)


def internal_error(version: str) -> Reply:
    # REST APIs (payload 1.0) and HTTP APIs spell this one differently.
    return error_reply(502, "Internal server error" if version == "1.0" else "Internal Server Error")


def reply_for_dispatch_error(error: DispatchError) -> Reply:
    if isinstance(error, FunctionNotFound):
        return error_reply(500)
    if isinstance(error, LoopDetected):
        return error_reply(508)  # RFC 5842; router/loops.py stopped a recursive loop
    return error_reply(error.status)


def reply_for_result(result: InvocationResult, version: str) -> Reply:
    if result.function_error is not None:
        if result.error_type == SANDBOX_TIMEOUT:
            return error_reply(504)
        return internal_error(version)
    try:
        return _map(result.payload, version)
    except MalformedResult as e:
        log.warning("request %s: malformed function response: %s", result.request_id, e)
        return internal_error(version)


def _map(payload: bytes, version: str) -> Reply:
    try:
        value = _decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        raise MalformedResult("not valid JSON (or nested too deeply)") from None
    if isinstance(value, dict) and "statusCode" in value:
        return _proxy_reply(value, version)
    if version == "1.0":
        raise MalformedResult("a 1.0 response needs statusCode")
    body = value.encode("utf-8") if isinstance(value, str) else payload
    return Reply(200, [("Content-Type", JSON)], body)


def _proxy_reply(value: dict[str, Any], version: str) -> Reply:
    if version == "1.0":
        unknown = set(value) - V1_KEYS
        if unknown:
            raise MalformedResult(f"unknown keys {sorted(unknown)}")
    status = _status(value.get("statusCode"))
    headers = _headers(value.get("headers"), value.get("multiValueHeaders"))
    for cookie in _string_list(value.get("cookies") if version == "2.0" else None, "cookies"):
        headers.append(("Set-Cookie", _scalar(cookie, "cookies")))
    body = _body(value.get("body"), value.get("isBase64Encoded", False))
    if body and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", JSON))
    return Reply(status, headers, body)


def _status(raw: Any) -> int:
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 100 <= raw <= 599:
        raise MalformedResult(f"statusCode {raw!r} is not an HTTP status")
    return raw


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        if _UNSAFE.search(value):
            raise MalformedResult(f"{where}: a header value may not hold CR, LF or NUL")
        return value
    raise MalformedResult(f"{where}: {value!r} is not a header value")


def _name(name: str, where: str) -> str:
    if not TOKEN.fullmatch(name):
        raise MalformedResult(f"{where}: {name[:50]!r} is not a header name")
    return name


def _headers(single: Any, multi: Any) -> list[tuple[str, str]]:
    if single is None:
        single = {}
    if multi is None:
        multi = {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedResult("headers and multiValueHeaders must be objects")
    out: list[tuple[str, str]] = []
    multi_names = set()
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResult(f"multiValueHeaders.{name} must be a list")
        if _name(name, "multiValueHeaders").lower() in _DROPPED:
            continue
        multi_names.add(name.lower())
        out.extend((name, _scalar(v, f"multiValueHeaders.{name}")) for v in values)
    for name, v in single.items():
        if _name(name, "headers").lower() in _DROPPED or name.lower() in multi_names:
            continue
        if v is not None:
            out.append((name, _scalar(v, f"headers.{name}")))
    return out


def _string_list(raw: Any, where: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise MalformedResult(f"{where} must be a list of strings")
    return raw


def _body(raw: Any, is_b64: Any) -> bytes:
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise MalformedResult(f"body must be a string, got {type(raw).__name__}")
    if is_b64 is True:
        try:
            return base64.b64decode("".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResult("isBase64Encoded is true but body is not base64") from None
    if is_b64 not in (False, None):
        raise MalformedResult(f"isBase64Encoded {is_b64!r} is not a boolean")
    return raw.encode("utf-8")
