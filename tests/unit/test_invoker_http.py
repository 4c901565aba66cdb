"""The Runtime API's HTTP/1.1 protocol and state machine, driven through a fake transport (no sockets)."""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest

from router.invoker import http11
from router.invoker.http11 import Connection, Parked, Request, Response
from router.invoker.runtime_api import MAX_RESPONSE_BYTES, Answer, Event, RuntimeApi


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.writes = 0
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.out += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 6666)}.get(name, default)

    def responses(self) -> list[tuple[int, dict[str, str], bytes]]:
        found, data = [], bytes(self.out)
        while data:
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            found.append((status, headers, rest[:length]))
            data = rest[length:]
        return found


class Recorder:
    """An http11 handler that answers every request at once (or parks it when asked)."""

    def __init__(self, accept: bool = True) -> None:
        self.requests: list[Request] = []
        self._accept = accept
        self.park: asyncio.Future[Response] | None = None

    def accept(self, transport: asyncio.Transport) -> bool:
        return self._accept

    def handle(self, request: Request) -> Response | asyncio.Future[Response]:
        self.requests.append(request)
        if request.path == "/park":
            self.park = asyncio.get_running_loop().create_future()
            return self.park
        return Response(202, b"ok")


def connect(handler: object, max_body: int = 100) -> tuple[Connection, FakeTransport]:
    conn = Connection(handler, max_body)  # type: ignore[arg-type]
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport


async def test_content_length_body_and_keep_alive() -> None:
    handler = Recorder()
    conn, t = connect(handler)
    conn.data_received(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel")
    assert handler.requests == []
    conn.data_received(b"loGET /b HTTP/1.1\r\n\r\n")
    assert [(r.method, r.path, r.body) for r in handler.requests] == [
        ("POST", "/a", b"hello"),
        ("GET", "/b", b""),
    ]
    assert [s for s, _, _ in t.responses()] == [202, 202]
    assert not t.closed


async def test_chunked_body_split_anywhere() -> None:
    handler = Recorder()
    conn, _ = connect(handler)
    raw = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n"
    for i in range(len(raw)):
        conn.data_received(raw[i : i + 1])
    assert handler.requests[0].body == b"hello world"


async def test_expect_continue_is_answered_before_the_body() -> None:
    handler = Recorder()
    conn, t = connect(handler)
    conn.data_received(b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert bytes(t.out) == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.data_received(b"ok")
    assert handler.requests[0].body == b"ok"


async def test_oversized_body_is_discarded_and_flagged() -> None:
    handler = Recorder()
    conn, _ = connect(handler, max_body=10)
    conn.data_received(b"POST /big HTTP/1.1\r\nContent-Length: 25\r\n\r\n" + b"x" * 20)
    assert handler.requests == []
    conn.data_received(b"x" * 5 + b"GET /next HTTP/1.1\r\n\r\n")
    assert [(r.path, r.too_large, r.body) for r in handler.requests] == [
        ("/big", True, b""),
        ("/next", False, b""),
    ]


async def test_oversized_chunked_body_gets_413_and_close() -> None:
    handler = Recorder()
    conn, t = connect(handler, max_body=4)
    conn.data_received(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    assert t.responses()[0][0] == 413
    assert t.closed


async def test_connection_close_and_bad_request() -> None:
    handler = Recorder()
    conn, t = connect(handler)
    conn.data_received(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert t.responses()[0][1]["connection"] == "close" and t.closed
    conn2, t2 = connect(handler)
    conn2.data_received(b"garbage\r\n\r\n")
    assert t2.responses()[0][0] == 400 and t2.closed


async def test_refused_peer_is_aborted() -> None:
    handler = Recorder(accept=False)
    conn, t = connect(handler)
    conn.data_received(b"GET /a HTTP/1.1\r\n\r\n")
    assert t.aborted and handler.requests == []


async def test_parked_request_answers_later_and_holds_the_next_one() -> None:
    handler = Recorder()
    conn, t = connect(handler)
    conn.data_received(b"GET /park HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n")
    assert [r.path for r in handler.requests] == ["/park"]
    assert handler.park is not None
    handler.park.set_result(Response(200, b"event"))
    await asyncio.sleep(0)
    assert [r.path for r in handler.requests] == ["/park", "/after"]
    assert [(s, b) for s, _, b in t.responses()] == [(200, b"event"), (202, b"ok")]


async def test_pipelined_answers_go_out_in_one_write_with_the_next() -> None:
    handler = Recorder()
    conn, t = connect(handler)
    conn.data_received(b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /park HTTP/1.1\r\n\r\n")
    assert [r.path for r in handler.requests] == ["/a", "/park"]
    assert t.writes == 0  # the answer to /a waits for the one to /park
    assert handler.park is not None
    handler.park.set_result(Response(200, b"event"))
    await asyncio.sleep(0)
    assert t.writes == 1 and [(s, b) for s, _, b in t.responses()] == [(202, b"ok"), (200, b"event")]
    conn.data_received(b"GET /b HTTP/1.1\r\n\r\n")  # nothing behind it: answered at once
    assert t.writes == 2


async def test_a_parked_answer_is_written_when_its_result_is_set() -> None:
    parked: list[Parked] = []

    class Handler(Recorder):
        def handle(self, request: Request) -> Response | asyncio.Future[Response]:
            parked.append(Parked(loop=asyncio.get_running_loop()))
            return parked[-1]

    conn, t = connect(Handler())
    conn.data_received(b"GET /next HTTP/1.1\r\n\r\n")
    parked[0].set_result(Response(200, b"now"))
    assert t.responses() == [(200, {"content-type": "application/json", "content-length": "3"}, b"now")]


@pytest.mark.parametrize("allowed", [True, False])
async def test_a_deferred_accept_holds_requests_until_decided(allowed: bool) -> None:
    verdict: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    class Deciding(Recorder):
        def accept(self, transport: asyncio.Transport) -> asyncio.Future[bool]:  # type: ignore[override]
            return verdict

    handler = Deciding()
    conn, t = connect(handler)
    conn.data_received(b"GET /a HTTP/1.1\r\n\r\n")
    assert handler.requests == []
    verdict.set_result(allowed)
    await asyncio.sleep(0)
    assert [r.path for r in handler.requests] == (["/a"] if allowed else [])
    assert t.aborted is not allowed


async def test_dropped_connection_cancels_the_parked_request() -> None:
    handler = Recorder()
    conn, _ = connect(handler)
    conn.data_received(b"GET /park HTTP/1.1\r\n\r\n")
    conn.connection_lost(None)
    assert handler.park is not None and handler.park.cancelled()


# ---------------------------------------------------------------------------------------------------------
# The Runtime API state machine


class ApiHarness:
    def __init__(self) -> None:
        self.ready = 0
        self.init_errors: list[tuple[bytes, str | None]] = []
        self.answers: list[Answer] = []
        self.api = RuntimeApi(
            on_ready=self._ready,
            on_init_error=lambda body, t: self.init_errors.append((body, t)),
            on_answer=self.answers.append,
        )

    def _ready(self) -> None:
        self.ready += 1

    def call(
        self, method: str, path: str, body: bytes = b"", **headers: str
    ) -> Response | asyncio.Future[Response]:
        hdrs = {k.replace("_", "-").lower(): v for k, v in headers.items()}
        return self.api.handle(Request(method, "/2018-06-01/runtime" + path, hdrs, body))


def event(rid: str = "r1", **kw: object) -> Event:
    fields: dict[str, object] = {
        "request_id": rid,
        "payload": b'{"k": 1}',
        "deadline_ms": 1700000000000,
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "trace_id": "Root=1-abc",
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


def error_type(response: Response) -> str:
    return msgspec.json.decode(response.body)["errorType"]


async def test_next_blocks_until_an_event_and_carries_lambda_headers() -> None:
    h = ApiHarness()
    parked = h.call("GET", "/invocation/next")
    assert isinstance(parked, asyncio.Future) and not parked.done() and h.ready == 1
    h.api.deliver(event(client_context='{"custom":{"a":1}}', cognito_identity='{"cognitoIdentityId":"x"}'))
    response = parked.result()
    headers = dict(response.headers)
    assert response.status == 200 and response.body == b'{"k": 1}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "r1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1700000000000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:f")
    assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-abc"
    assert headers["Lambda-Runtime-Client-Context"] == '{"custom":{"a":1}}'
    assert headers["Lambda-Runtime-Cognito-Identity"] == '{"cognitoIdentityId":"x"}'


async def test_event_delivered_before_next_is_returned_at_once() -> None:
    h = ApiHarness()
    h.api.deliver(event())
    response = h.call("GET", "/invocation/next")
    assert isinstance(response, Response) and response.status == 200
    assert "Lambda-Runtime-Client-Context" not in dict(response.headers)


async def test_response_codes_follow_lambda() -> None:
    h = ApiHarness()
    h.api.deliver(event())
    h.call("GET", "/invocation/next")
    wrong = h.call("POST", "/invocation/nope/response", b"{}")
    assert isinstance(wrong, Response) and wrong.status == 400 and error_type(wrong) == "InvalidRequestID"
    early_next = h.call("GET", "/invocation/next")
    assert isinstance(early_next, Response) and early_next.status == 403
    ok = h.call("POST", "/invocation/r1/response", b'"hi"')
    assert isinstance(ok, Response) and ok.status == 202
    again = h.call("POST", "/invocation/r1/error", b"{}")
    assert (
        isinstance(again, Response) and again.status == 403 and error_type(again) == "InvalidStateTransition"
    )
    assert [(a.kind, a.request_id, a.body) for a in h.answers] == [("response", "r1", b'"hi"')]


async def test_error_answer_carries_the_header_type() -> None:
    h = ApiHarness()
    h.api.deliver(event())
    h.call("GET", "/invocation/next")
    h.call(
        "POST", "/invocation/r1/error", b'{"errorType":"X"}', lambda_runtime_function_error_type="Custom.X"
    )
    assert (h.answers[0].kind, h.answers[0].error_type) == ("error", "Custom.X")


async def test_too_large_response_is_413_and_reported() -> None:
    h = ApiHarness()
    h.api.deliver(event())
    h.call("GET", "/invocation/next")
    response = h.api.handle(
        Request("POST", "/2018-06-01/runtime/invocation/r1/response", {}, b"", too_large=True)
    )
    assert isinstance(response, Response) and response.status == 413
    assert str(MAX_RESPONSE_BYTES) in msgspec.json.decode(response.body)["errorMessage"]
    assert h.answers[0].kind == "too_large"


async def test_init_error_only_during_init() -> None:
    h = ApiHarness()
    first = h.call(
        "POST",
        "/init/error",
        b'{"errorType":"Runtime.ImportModuleError"}',
        lambda_runtime_function_error_type="T",
    )
    assert isinstance(first, Response) and first.status == 202
    assert h.init_errors == [(b'{"errorType":"Runtime.ImportModuleError"}', "T")]
    later = h.call("POST", "/init/error", b"{}")
    assert isinstance(later, Response) and later.status == 403


async def test_unknown_routes_and_methods() -> None:
    h = ApiHarness()
    assert h.api.handle(Request("GET", "/elsewhere", {}, b"")).status == 404  # type: ignore[union-attr]
    assert h.call("POST", "/invocation/next").status == 405  # type: ignore[union-attr]
    assert h.call("GET", "/invocation/r1/response").status == 405  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/invocation/r1", "/invocation/r1/other", "/init/errors"])
async def test_malformed_paths_are_404(path: str) -> None:
    h = ApiHarness()
    assert h.call("POST", path).status == 404  # type: ignore[union-attr]


PLAIN_HEADS = [
    "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0",
    "POST /2018-06-01/runtime/invocation/a-1/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nContent-Length: 13",
    "POST /x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5",
    "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 007",
    # near misses: the general parse decides
    "POST /x HTTP/1.1\r\nHost:  h \r\nContent-Length: 5",
    "POST /x HTTP/1.1\r\nhost: h\r\nContent-Length: 5",
    "POST /x HTTP/1.0\r\nHost: h\r\nContent-Length: 5",
    "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5",
    "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close",
    "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5 ",
    "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: ²",
]


@pytest.mark.parametrize("raw", PLAIN_HEADS)
def test_the_plain_head_parses_as_the_general_parse_does(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bootstraps' own heads (request line, Host, Content-Length) take one regular expression; what it
    gives must be what the general parse gives."""

    def parsed() -> object:
        try:
            head = http11._parse_head(raw)
        except http11._BadRequest as e:
            return e.status
        return (head.request.method, head.request.path, head.request.headers, head.keep_alive, head.length)

    quick = parsed()
    monkeypatch.setattr(http11, "_PLAIN", re.compile(r"(?!)"))  # matches nothing: the general parse
    assert quick == parsed()


def test_a_fixed_response_renders_as_any_other() -> None:
    from router.invoker.runtime_api import ACCEPTED

    same = Response(ACCEPTED.status, ACCEPTED.body, list(ACCEPTED.headers), ACCEPTED.content_type)
    assert http11.render(ACCEPTED, True) == http11.render(same, True)
    assert http11.render(ACCEPTED, False) == http11.render(same, False)  # not kept: closes the connection


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/2018-06-01/runtime/invocation/next", None),  # parked: the future
        ("POST", "/2018-06-01/runtime/invocation/next", 405),
        ("POST", "/2018-06-01/runtime/invocation/r-1/response", 202),
        ("POST", "/2018-06-01/runtime/invocation/other/response", 400),
        ("POST", "/2018-06-01/runtime/invocation//response", 400),
        ("POST", "/2018-06-01/runtime/invocation/a/b/response", 404),
        ("GET", "/2018-06-01/runtime/invocation/r-1/response", 405),
        ("POST", "/2018-06-01/runtime/invocation/r-1/error", 202),
        ("POST", "/2018-06-01/runtimex/invocation/r-1/response", 404),  # was taken as an answer
        ("POST", "/2018-06-01/runtime/init/error/x", 404),
    ],
)
async def test_the_routes_of_every_call(method: str, path: str, status: int | None) -> None:
    """The routes of the two requests of every call, and their near misses."""
    api = RuntimeApi(on_answer=lambda answer: None, on_ready=lambda: None, on_init_error=lambda *a: None)
    api.deliver(Event(request_id="r-1", payload=b"{}", deadline_ms=0, function_arn="arn", trace_id="t"))
    first = api.handle(Request("GET", "/2018-06-01/runtime/invocation/next", {}))
    assert isinstance(first, Response) and first.status == 200  # r-1 is now the call in flight
    answer = api.handle(Request(method, path, {}))
    if status is None:
        assert isinstance(answer, asyncio.Future) or answer.status == 403
    else:
        assert isinstance(answer, Response) and answer.status == status
