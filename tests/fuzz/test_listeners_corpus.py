"""The regression corpus against a running router: each malformed input of issue 17, on every listener.

Every case must get the right status in the listener's own form (Lambda's JSON error with its error type
on the Invoke API, `{"message": ...}` on the gateway, an SMTP reply code) and leave no traceback and no
ERROR line in the log. The cases themselves are in tests/fuzz/corpus.py.
"""

from __future__ import annotations

import gzip
import json
import socket

import pytest

from tests.fuzz.conftest import Listeners, assert_clean
from tests.fuzz.corpus import INVOKE_PATH, SMTP_CASES, HttpCase, deep_json, http_cases
from tests.fuzz.wire import HANG_S, http_exchange, smtp_session

CASES = http_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_invoke_api_answers_malformed_requests_in_lambda_form(listeners: Listeners, case: HttpCase) -> None:
    reply = http_exchange(listeners.control, case.raw(INVOKE_PATH))
    assert reply is not None, "no answer"
    status, error = case.control
    assert (reply.status, reply.headers.get("x-amzn-errortype")) == (status, error), reply.body[:300]
    assert reply.headers.get("x-amzn-requestid")
    assert reply.json()["Type"] in ("User", "Service")
    assert_clean(listeners)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gateway_answers_malformed_requests_in_api_gateway_form(listeners: Listeners, case: HttpCase) -> None:
    before = listeners.invocations()
    reply = http_exchange(listeners.gateway, case.raw("/items/1"))
    assert reply is not None, "no answer"
    assert reply.status == case.gateway, reply.body[:300]
    assert set(reply.json()) == {"message"}
    assert reply.headers.get("apigw-requestid")
    assert listeners.invocations() == before  # nothing malformed reaches the function
    assert_clean(listeners)


def test_deep_json_is_400_not_a_recursion_error(listeners: Listeners) -> None:
    body = deep_json()
    raw = f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    reply = http_exchange(listeners.control, raw)
    assert reply is not None
    assert (reply.status, reply.headers["x-amzn-errortype"]) == (400, "InvalidRequestContentException")
    assert "nested too deeply" in reply.json()["message"]
    assert_clean(listeners)


@pytest.mark.parametrize("method", ["CONNECT", "TRACE", "PROPFIND"])
def test_methods_the_gateway_cannot_serve_are_501_and_never_run_the_function(
    listeners: Listeners, method: str
) -> None:
    before = listeners.invocations()
    target = "example.test:443" if method == "CONNECT" else "/items/1"
    raw = f"{method} {target} HTTP/1.1\r\nHost: example.test:443\r\n\r\n".encode()
    reply = http_exchange(listeners.gateway, raw, check_closed=method == "CONNECT")
    assert reply is not None
    assert reply.status == 501
    assert "GET" in reply.headers["allow"] and "CONNECT" not in reply.headers["allow"]
    if method == "CONNECT":
        assert reply.closed_after  # not left open as a tunnel
    assert listeners.invocations() == before
    assert_clean(listeners)


@pytest.mark.parametrize("port_of", ["control", "gateway"])
def test_compressed_bodies_are_still_decoded(listeners: Listeners, port_of: str) -> None:
    body = gzip.compress(json.dumps({"hello": "gzip"}).encode())
    path = INVOKE_PATH if port_of == "control" else "/items/1"
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
    reply = http_exchange(getattr(listeners, port_of), head.encode() + body)
    assert reply is not None and reply.status == 200, reply
    event = reply.json()["event"]
    got = event if port_of == "control" else json.loads(event["body"])
    assert got == {"hello": "gzip"}


@pytest.mark.parametrize("port_of", ["control", "gateway"])
def test_a_stalled_body_is_answered_408(listeners: Listeners, port_of: str) -> None:
    path = INVOKE_PATH if port_of == "control" else "/items/1"
    raw = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789".encode()
    reply = http_exchange(getattr(listeners, port_of), raw)  # body_timeout_s: 1
    assert reply is not None and reply.status == 408
    assert_clean(listeners)


@pytest.mark.parametrize("port_of", ["control", "gateway"])
def test_a_connection_that_never_finishes_its_head_is_closed(listeners: Listeners, port_of: str) -> None:
    with socket.create_connection(("127.0.0.1", getattr(listeners, port_of)), timeout=HANG_S) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert s.recv(100) == b""  # closed after idle_timeout_s (2); a timeout here raises instead


@pytest.mark.parametrize(("line", "code"), SMTP_CASES, ids=[c for c, _ in SMTP_CASES])
def test_smtp_answers_bad_commands_with_5xx_and_the_session_goes_on(
    listeners: Listeners, line: str, code: str
) -> None:
    before = [b"EHLO fuzz.test"] + ([b"MAIL FROM:<a@example.test>"] if line.startswith("RCPT") else [])
    replies = smtp_session(
        listeners.smtp, [*before, line.encode("utf-8", "surrogateescape"), b"NOOP", b"QUIT"]
    )
    bad, noop, bye = replies[-3:]
    assert (bad[:3], noop[:3], bye[:3]) == (code, "250", "221"), replies
    assert "Error: (" not in bad  # never an exception's name and text
    assert_clean(listeners)
