"""Generated malformed input against every listener of a running router (hypothesis).

For each generated request: an answer in the listener's own protocol (a well-formed HTTP reply, or an SMTP
reply code), never a 500 (which would be the router failing, not the client), and, once all are sent, no
traceback or ERROR line in the log and the daemon still healthy, its memory grown by less than 100 MB.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import Listeners, assert_clean
from tests.fuzz.corpus import INVOKE_PATH
from tests.fuzz.strategies import SMTP_LINES, http_requests
from tests.fuzz.wire import http_exchange, smtp_session

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
CONTROL_PATHS = [INVOKE_PATH, "/invoke/echo", "/2015-03-31/functions", "/healthz", "/inspect/invocations"]
GATEWAY_PATHS = ["/", "/items/1", "/a/b/c"]
SMTP_REPLY = re.compile(r"^[245]\d\d[ -]")


def rss_kb(listeners: Listeners) -> int:
    assert listeners.router.proc is not None
    with open(f"/proc/{listeners.router.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_control_plane_fuzz(listeners: Listeners) -> None:
    before = rss_kb(listeners)

    @FUZZ
    @given(http_requests(CONTROL_PATHS))
    def one(raw: bytes) -> None:
        reply = http_exchange(listeners.control, raw)
        if reply is not None:
            assert reply.status != 500, (raw[:300], reply.body[:300])
            if reply.status >= 400:
                assert reply.headers.get("x-amzn-errortype")
                assert raw.startswith(b"HEAD ") or reply.json()["Type"] in ("User", "Service")

    one()
    assert_clean(listeners)
    assert rss_kb(listeners) - before < 100 * 1024


def test_gateway_fuzz(listeners: Listeners) -> None:
    before = rss_kb(listeners)

    @FUZZ
    @given(http_requests(GATEWAY_PATHS))
    def one(raw: bytes) -> None:
        reply = http_exchange(listeners.gateway, raw)
        if reply is not None:
            assert reply.status != 500, (raw[:300], reply.body[:300])
            assert reply.headers.get("apigw-requestid")
            if reply.status >= 400 and not raw.startswith(b"HEAD "):
                assert set(reply.json()) == {"message"}

    one()
    assert_clean(listeners)
    assert rss_kb(listeners) - before < 100 * 1024


def test_smtp_fuzz(listeners: Listeners) -> None:
    @FUZZ
    @given(st.lists(SMTP_LINES, min_size=1, max_size=4))
    def one(lines: list[str]) -> None:
        sent = [b"EHLO fuzz.test"] + [
            line.replace("\r", " ").replace("\n", " ").encode("utf-8", "surrogateescape") for line in lines
        ]
        replies = smtp_session(listeners.smtp, [*sent, b"NOOP"])
        assert replies[0].startswith("220")
        for reply in replies[1:]:
            assert SMTP_REPLY.match(reply), replies
            assert "Error: (" not in reply, replies  # never an exception's name and text

    one()
    assert_clean(listeners)
