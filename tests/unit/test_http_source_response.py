"""Mapping a function's result to the HTTP reply, as API Gateway's Lambda proxy integration does."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from router.config.sources.http import CorsConfig
from router.core.errors import SANDBOX_TIMEOUT, FunctionNotFound, LoopDetected, ShuttingDown, Throttled
from router.core.results import InvocationResult
from router.sources.http.cors import apply_cors, check_cors, preflight_reply
from router.sources.http.response import Reply, reply_for_dispatch_error, reply_for_result


def result(value: Any = None, *, raw: bytes | None = None, error: str | None = None) -> InvocationResult:
    payload = raw if raw is not None else json.dumps(value).encode()
    return InvocationResult(
        request_id="r-1", payload=payload, function_error="Unhandled" if error else None, error_type=error
    )


def message(reply: Reply) -> str:
    assert reply.header("content-type") == "application/json"
    return json.loads(reply.body)["message"]


def test_proxy_response_v2_with_headers_cookies_and_status() -> None:
    reply = reply_for_result(
        result(
            {
                "statusCode": 201,
                "headers": {"Content-Type": "text/plain", "X-Count": 3, "X-Flag": True},
                "cookies": ["a=1; Path=/", "b=2"],
                "body": "made",
            }
        ),
        "2.0",
    )
    assert reply.status == 201
    assert reply.body == b"made"
    assert ("X-Count", "3") in reply.headers and ("X-Flag", "true") in reply.headers
    assert [v for k, v in reply.headers if k == "Set-Cookie"] == ["a=1; Path=/", "b=2"]
    assert reply.header("content-type") == "text/plain"


def test_v2_result_without_status_code_is_a_200_json_body() -> None:
    reply = reply_for_result(result({"hello": "world"}), "2.0")
    assert (reply.status, reply.header("content-type")) == (200, "application/json")
    assert json.loads(reply.body) == {"hello": "world"}
    assert reply_for_result(result("plain text"), "2.0").body == b"plain text"
    assert json.loads(reply_for_result(result([1, 2]), "2.0").body) == [1, 2]


def test_v1_requires_the_proxy_shape() -> None:
    reply = reply_for_result(result({"hello": "world"}), "1.0")
    assert reply.status == 502 and message(reply) == "Internal server error"
    reply = reply_for_result(result({"statusCode": 200, "body": "x", "cookies": ["a=1"]}), "1.0")
    assert reply.status == 502  # REST APIs refuse keys outside the proxy shape


def test_multi_value_headers_merge_and_win_over_single_ones() -> None:
    reply = reply_for_result(
        result(
            {
                "statusCode": 200,
                "headers": {"X-A": "single", "X-B": "b"},
                "multiValueHeaders": {"x-a": ["m1", "m2"], "Set-Cookie": ["c=1", "d=2"]},
                "body": "",
            }
        ),
        "1.0",
    )
    assert reply.status == 200
    assert [v for k, v in reply.headers if k.lower() == "x-a"] == ["m1", "m2"]
    assert [v for k, v in reply.headers if k == "Set-Cookie"] == ["c=1", "d=2"]
    assert ("X-B", "b") in reply.headers


def test_base64_body_is_decoded() -> None:
    data = bytes(range(256))
    reply = reply_for_result(
        result(
            {
                "statusCode": 200,
                "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(data).decode(),
                "isBase64Encoded": True,
            }
        ),
        "2.0",
    )
    assert reply.body == data


def test_framing_headers_from_the_function_are_dropped() -> None:
    reply = reply_for_result(
        result({"statusCode": 200, "headers": {"Content-Length": "999", "Connection": "close"}, "body": "x"}),
        "2.0",
    )
    assert reply.header("content-length") is None and reply.header("connection") is None
    assert reply.header("content-type") == "application/json"  # API Gateway's default


@pytest.mark.parametrize(
    "bad",
    [
        {"statusCode": "two hundred"},
        {"statusCode": 99},
        {"statusCode": True},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!!", "isBase64Encoded": True},
        {"statusCode": 200, "headers": {"X": {"nested": 1}}},
        {"statusCode": 200, "headers": ["not", "a", "map"]},
        {"statusCode": 200, "multiValueHeaders": {"X": "not a list"}},
        {"statusCode": 200, "cookies": "a=1"},
    ],
)
def test_malformed_results_are_502(bad: dict[str, Any]) -> None:
    reply = reply_for_result(result(bad), "2.0")
    assert reply.status == 502 and message(reply) == "Internal Server Error"


def test_a_result_that_is_not_json_is_502() -> None:
    assert reply_for_result(result(raw=b"{not json"), "2.0").status == 502


def test_function_errors_are_502_and_timeouts_504() -> None:
    failed = reply_for_result(
        result({"errorMessage": "boom", "errorType": "ValueError"}, error="ValueError"), "2.0"
    )
    assert failed.status == 502 and message(failed) == "Internal Server Error"
    timed_out = reply_for_result(result({"errorMessage": "Task timed out"}, error=SANDBOX_TIMEOUT), "2.0")
    assert timed_out.status == 504 and message(timed_out) == "Endpoint request timed out"


def test_dispatch_errors_map_to_back_pressure() -> None:
    throttled = reply_for_dispatch_error(Throttled("over the limit"))
    assert throttled.status == 429 and message(throttled) == "Too Many Requests"
    down = reply_for_dispatch_error(ShuttingDown("draining"))
    assert down.status == 503 and message(down) == "Service Unavailable"
    assert reply_for_dispatch_error(FunctionNotFound("gone")).status == 500
    assert reply_for_dispatch_error(LoopDetected("loop")).status == 508


def test_cors_preflight_and_reply_headers() -> None:
    cors = CorsConfig(allow_origins=["https://*.example.com"], allow_methods=["GET", "post"], max_age_s=600)
    ok = preflight_reply(cors, "https://app.example.com", "POST", "x-custom")
    assert ok.status == 204
    assert ok.header("access-control-allow-origin") == "https://app.example.com"
    assert ok.header("access-control-allow-methods") == "GET,POST"
    assert ok.header("access-control-allow-headers") == "x-custom"  # '*' echoes what was asked
    assert ok.header("access-control-max-age") == "600"
    assert preflight_reply(cors, "https://evil.test", "GET", None).headers == []

    reply = Reply(200, [("Access-Control-Allow-Origin", "https://from-function"), ("X", "1")])
    apply_cors(cors, reply, "https://app.example.com")
    assert reply.header("access-control-allow-origin") == "https://app.example.com"
    assert reply.header("vary") == "Origin"
    stranger = Reply(200, [("Access-Control-Allow-Origin", "*")])
    apply_cors(cors, stranger, "https://evil.test")
    assert stranger.header("access-control-allow-origin") is None


def test_cors_with_credentials_cannot_allow_every_origin() -> None:
    problems: list[str] = []
    check_cors(CorsConfig(allow_credentials=True), "sources.api.cors", problems)
    assert problems and problems[0].startswith("sources.api.cors.allow_origins:")
