"""The Runtime API against malformed requests from a runtime: 4xx answers, never an exception in the daemon.

In process (router.invoker.http11 with a RuntimeApi, fed through a fake transport in random pieces, as the
unit tests of tests/unit/test_invoker_http.py do): every answer is a well-formed response with a status the
Runtime API uses and, for errors, Lambda's `{"errorMessage", "errorType"}` body; nothing raises out of the
protocol. Through a running router: a custom runtime (tests/functions/runtime_fuzz) sends its own Runtime
API malformed requests while an event is in flight, gets a 4xx for each, and the call still succeeds.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.invoker.http11 import serve
from router.invoker.runtime_api import MAX_RESPONSE_BYTES, Event, RuntimeApi
from tests.fuzz.strategies import http_requests
from tests.unit.test_invoker_http import FakeTransport

PREFIX = "/2018-06-01/runtime"
PATHS = [f"{PREFIX}/invocation/next", f"{PREFIX}/invocation/rid-1/response", f"{PREFIX}/init/error", "/"]
STATUSES = {200, 202, 400, 403, 404, 405, 413, 431}
CORPUS = [
    b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n",  # negative chunk size
    b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n" + b"a" * 5000,  # 64 GB chunk
    b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",  # no CRLF after data
    b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 100_000,  # endless size line
    b"POST /r HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n0123456789",
    b"POST /r HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /r HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",  # a head over 64 KB, in one piece
]


async def feed(pieces: list[bytes]) -> FakeTransport:
    api = RuntimeApi(on_ready=lambda: None, on_init_error=lambda body, kind: None, on_answer=lambda a: None)
    api.deliver(Event(request_id="rid-1", payload=b"{}", deadline_ms=0, function_arn="arn", trace_id="t"))
    connection: Any = serve(api, max_body=MAX_RESPONSE_BYTES)()
    transport = FakeTransport()
    connection.connection_made(transport)
    for piece in pieces:
        connection.data_received(piece)
        await asyncio.sleep(0)
    connection.connection_lost(None)
    return transport


def check(transport: FakeTransport) -> None:
    for status, headers, body in transport.responses():
        assert status in STATUSES, (status, body)
        assert int(headers["content-length"]) == len(body)
        if status >= 400:
            assert set(json.loads(body)) == {"errorMessage", "errorType"}


def test_corpus_gets_4xx_in_bounded_memory() -> None:
    for raw in CORPUS:
        transport = asyncio.run(feed([raw]))
        statuses = [status for status, _, _ in transport.responses()]
        assert len(statuses) == 1 and 400 <= statuses[0] < 500 and transport.closed, (raw[:80], statuses)


@st.composite
def pieces(draw: st.DrawFn) -> list[bytes]:
    data = b"".join(draw(st.lists(http_requests(PATHS), min_size=1, max_size=3)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(pieces())
def test_generated_requests_get_runtime_api_answers(parts: list[bytes]) -> None:
    check(asyncio.run(feed(parts)))


async def test_a_runtime_sending_garbage_gets_4xx_and_its_call_succeeds(make_router: Any) -> None:
    router = await make_router(
        """
server: {port: "${ROUTER_PORT}"}
functions:
  fuzz: {runtime: provided, handler: none.handler, code: "${FUNCTIONS}/runtime_fuzz", timeout_s: 60}
"""
    )
    n = 200
    result = await asyncio.to_thread(_invoke, router.url, {"n": n})
    assert result["sent"] == n and result["unanswered"] == 0, result
    assert all(400 <= int(status) < 500 for status in result["statuses"]), result
    second = await asyncio.to_thread(_invoke, router.url, {"n": 1})  # the same instance goes on
    assert second["unanswered"] == 0
    log = router.log_text()
    assert "Traceback" not in log and '"level":"error"' not in log


def _invoke(url: str, event: dict[str, Any]) -> Any:
    import urllib.request

    request = urllib.request.Request(
        f"{url}/2015-03-31/functions/fuzz/invocations", data=json.dumps(event).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as r:
        assert r.headers.get("X-Amz-Function-Error") is None
        return json.loads(r.read())
