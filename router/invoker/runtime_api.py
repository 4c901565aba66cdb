"""The Lambda Runtime API (2018-06-01) for one instance, on its own loopback port.

Endpoints, status codes and bodies as Lambda (and the Runtime Interface Emulator) answer them:

* `GET  /2018-06-01/runtime/invocation/next`: blocks until an event is delivered; 200 with the event as body
  and the headers Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn, -Trace-Id, and
  -Client-Context / -Cognito-Identity when the call has them. The first call marks the end of init.
  Asking again while an event is unanswered is refused (403 InvalidStateTransition).
* `POST /2018-06-01/runtime/invocation/{id}/response`: 202; 400 InvalidRequestID for an id that is not the
  event in flight; 403 InvalidStateTransition for an id already answered; 413 RequestEntityTooLarge past
  6 MB (the call then fails with Function.ResponseSizeTooLarge).
* `POST /2018-06-01/runtime/invocation/{id}/error`: same codes; errorType from the body, else from the
  Lambda-Runtime-Function-Error-Type header.
* `POST /2018-06-01/runtime/init/error`: 202 during init, 403 after it.

One listener per instance (for the router's own runtimes, the same API on a Unix socket as well:
`start(unix=True)`), and (by default) every connection is checked to come from a process of the
instance's own tree (TCP: the socket's owner through sock_diag; Unix: SO_PEERCRED), so no instance can
take another's events; a connection made before the owner knows the instance's pid (a zygote fork) waits
unread until `launched()` is called. An event is written to a runtime waiting in /next the moment it is
delivered (http11.Parked). Outcomes go to the owner through three callbacks: `on_ready()`,
`on_init_error(body, error_type)`, `on_answer(answer)`.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import contextlib
import logging
import os
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Callable

import msgspec

from router.core.errors import (
    FUNCTION_RESPONSE_TOO_LARGE,
    RAPI_INVALID_REQUEST_ID,
    RAPI_INVALID_STATE_TRANSITION,
    RAPI_METHOD_NOT_ALLOWED,
    RAPI_NOT_FOUND,
    RAPI_REQUEST_ENTITY_TOO_LARGE,
)
from router.invoker import http11, procs
from router.invoker.http11 import Parked, Request, Response, serve
from router.invoker.outcomes import End

PREFIX = "/2018-06-01/runtime"
NEXT_PATH = PREFIX + "/invocation/next"
INVOCATION_PREFIX = PREFIX + "/invocation/"
INIT_ERROR_PATH = PREFIX + "/init/error"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # Lambda's limit as the emulator spells it: 6291556
ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"

# The last path segment of an answer, as the kind of ending it reports.
_ANSWERS = {"response": End.RESPONSE, "error": End.ERROR}

log = logging.getLogger("router.invoker")
_json = msgspec.json.Encoder()


class Event(msgspec.Struct, kw_only=True):
    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None


class Answer(msgspec.Struct, kw_only=True):
    kind: End  # RESPONSE, ERROR or TOO_LARGE
    request_id: str
    body: bytes
    error_type: str | None = None
    at: float = 0.0  # time.perf_counter() when the answer arrived


def _status(status: int, error_type: str, message: str) -> Response:
    return Response(status, _json.encode({"errorMessage": message, "errorType": error_type}))


ACCEPTED = http11.fixed(Response(202, b'{"status":"OK"}'))


class RuntimeApi:
    def __init__(
        self,
        *,
        on_ready: Callable[[], None],
        on_init_error: Callable[[bytes, str | None], None],
        on_answer: Callable[[Answer], None],
        pids: Callable[[], list[int]] | None = None,
    ) -> None:
        self._on_ready = on_ready
        self._on_init_error = on_init_error
        self._on_answer = on_answer
        self._pids = pids  # None: accept any local connection
        self._server: asyncio.Server | None = None
        self._unix: asyncio.AbstractServer | None = None
        self.unix_path: str | None = None  # the Unix socket, when started with unix=True
        self._transports: set[asyncio.Transport] = set()
        self._undecided: list[tuple[asyncio.Transport, asyncio.Future[bool]]] = []
        self._initialized = False
        self._pending: Event | None = None
        self._parked: asyncio.Future[Response] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # start()'s (get_running_loop is a getpid() each)
        self._current: str | None = None
        self._answered: str | None = None

    async def start(
        self, host: str = "127.0.0.1", sock: socket.socket | None = None, *, unix: bool = False
    ) -> str:
        """Open the listener (or serve on `sock`, already listening: one inside an instance's own network
        namespace, router/invoker/netns.py); returns the `host:port` for AWS_LAMBDA_RUNTIME_API. With `unix`,
        the same API is also served on a Unix socket in `socket_dir()`: the router's own bootstraps use it
        (no TCP stack on each of the two messages of a call), `provided` ones keep TCP."""
        loop = self._loop = asyncio.get_running_loop()
        protocol = serve(self, max_body=MAX_RESPONSE_BYTES)
        if sock is None:
            # Bound here, not by create_server(host, 0): that resolves the host with getaddrinfo in the
            # loop's thread pool, a hand-off to another thread and back on every cold start.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, 0))
                sock.listen(16)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
        self._server = await loop.create_server(protocol, sock=sock, backlog=16)
        port = self._server.sockets[0].getsockname()[1]
        if unix:
            path = os.path.join(socket_dir(), f"{port}.sock")
            protocol = serve(self, max_body=MAX_RESPONSE_BYTES)
            self._unix = await loop.create_unix_server(protocol, path, backlog=16)
            os.chmod(path, 0o666)  # who may use it is decided per connection (SO_PEERCRED), as for TCP
            self.unix_path = path
        return f"{host}:{port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._unix is not None:
            self._unix.close()
            self._unix = None
            if self.unix_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.unix_path)
        for t in list(self._transports):
            t.abort()
        self._transports.clear()
        for _, verdict in self._undecided:
            verdict.cancel()
        self._undecided.clear()
        if self._parked is not None and not self._parked.done():
            self._parked.cancel()

    @property
    def current(self) -> str | None:
        return self._current

    def deliver(self, event: Event) -> None:
        """Hand an event to the runtime: at once if it waits in /next, else on its next /next."""
        self._pending = event
        if self._parked is not None and not self._parked.done():
            parked, self._parked = self._parked, None
            parked.set_result(self._take())

    def withdraw(self) -> None:
        """Forget the event in flight (the call ended without an answer: timeout, kill)."""
        self._pending = None
        self._current = None

    # http11.Handler ----------------------------------------------------------------------------------------

    def accept(self, transport: asyncio.Transport) -> bool | asyncio.Future[bool]:
        if self._pids is not None:
            pids = self._pids()
            if not pids:
                # The process is still being launched (a zygote fork answers after the child may have
                # connected): decide in launched().
                verdict = asyncio.get_running_loop().create_future()
                self._undecided.append((transport, verdict))
                self._transports.add(transport)
                return verdict
            if not self._owned(transport, pids):
                return False
        self._transports.add(transport)
        return True

    def launched(self) -> None:
        """The instance's process is known: decide on the connections that came before it was."""
        undecided, self._undecided = self._undecided, []
        for transport, verdict in undecided:
            if not verdict.done():
                owned = self._pids is None or self._owned(transport, self._pids())
                if not owned:
                    self._transports.discard(transport)
                verdict.set_result(owned)

    def _owned(self, transport: asyncio.Transport, pids: list[int]) -> bool:
        peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        if isinstance(local, (str, bytes)):  # the Unix socket: the kernel says who connected
            sock = transport.get_extra_info("socket")
            pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            if pid in pids:
                return True
        elif procs.socket_owner_in(pids, peer, local):
            return True
        log.warning("runtime API: refused a connection from %s: not a process of this instance", peer)
        return False

    def handle(self, request: Request) -> Response | asyncio.Future[Response]:
        path, method = request.path, request.method
        if path == NEXT_PATH:  # every call: the request for the next event
            return self._next() if method == "GET" else self._not_allowed(request)
        if not path.startswith(PREFIX):
            return _status(404, RAPI_NOT_FOUND, f"no route {method} {path}")
        if method != "POST":
            return self._not_allowed(request)
        if path.startswith(INVOCATION_PREFIX):  # every call: its answer, /invocation/{id}/response or /error
            request_id, _, ending = path[len(INVOCATION_PREFIX) :].partition("/")
            kind = _ANSWERS.get(ending)
            if kind is not None:
                return self._answer(request_id, kind, request)
        elif path == INIT_ERROR_PATH:
            return self._init_error(request)
        return _status(404, RAPI_NOT_FOUND, f"no route {method} {path}")

    # routes ------------------------------------------------------------------------------------------------

    def _not_allowed(self, request: Request) -> Response:
        return _status(405, RAPI_METHOD_NOT_ALLOWED, f"{request.method} not allowed on {request.path}")

    def _next(self) -> Response | asyncio.Future[Response]:
        if self._current is not None:
            return _status(
                403, RAPI_INVALID_STATE_TRANSITION, f"invocation {self._current} has not been answered yet"
            )
        if not self._initialized:
            self._initialized = True
            self._on_ready()
        if self._pending is not None:
            return self._take()
        self._parked = Parked(loop=self._loop or asyncio.get_running_loop())
        return self._parked

    def _take(self) -> Response:
        event, self._pending = self._pending, None
        assert event is not None
        self._current = event.request_id
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", event.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(event.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", event.function_arn),
            ("Lambda-Runtime-Trace-Id", event.trace_id),
        ]
        if event.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", event.client_context))
        if event.cognito_identity is not None:
            headers.append(("Lambda-Runtime-Cognito-Identity", event.cognito_identity))
        return Response(200, event.payload, headers)

    def _init_error(self, request: Request) -> Response:
        if self._initialized:
            return _status(403, RAPI_INVALID_STATE_TRANSITION, "init error after init finished")
        self._initialized = True
        self._on_init_error(request.body, request.headers.get(ERROR_TYPE_HEADER))
        return ACCEPTED

    def _answer(self, request_id: str, kind: End, request: Request) -> Response:
        if request_id != self._current:
            if request_id == self._answered:
                return _status(
                    403, RAPI_INVALID_STATE_TRANSITION, f"invocation {request_id} already answered"
                )
            return _status(400, RAPI_INVALID_REQUEST_ID, "Invalid request ID")
        self._current, self._answered = None, request_id
        at = time.perf_counter()
        if request.too_large:
            self._on_answer(Answer(kind=End.TOO_LARGE, request_id=request_id, body=b"", at=at))
            return _status(
                413,
                RAPI_REQUEST_ENTITY_TOO_LARGE,
                f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            )
        error_type = request.headers.get(ERROR_TYPE_HEADER) if kind is End.ERROR else None
        self._on_answer(
            Answer(kind=kind, request_id=request_id, body=request.body, error_type=error_type, at=at)
        )
        return ACCEPTED


_SOCKET_DIR: str | None = None


def socket_dir() -> str:
    """This process's folder for the instances' Unix sockets (world-traversable: instances may run under
    other users; SO_PEERCRED decides), created once and removed at exit."""
    global _SOCKET_DIR
    if _SOCKET_DIR is None:
        # Not under /tmp: an isolated instance gets a private /tmp (router/invoker/isolation.py); /run is
        # where root keeps sockets, and what is in it stays visible to instances.
        run = "/run" if os.geteuid() == 0 and os.access("/run", os.W_OK) else None
        _SOCKET_DIR = tempfile.mkdtemp(prefix="router-rapi-", dir=run)
        os.chmod(_SOCKET_DIR, 0o755)
        atexit.register(shutil.rmtree, _SOCKET_DIR, ignore_errors=True)
    return _SOCKET_DIR


def too_large_payload(request_id: str) -> bytes:
    limit = MAX_RESPONSE_BYTES
    return _json.encode(
        {
            "errorMessage": f"Response payload size exceeded maximum allowed payload size ({limit} bytes).",
            "errorType": FUNCTION_RESPONSE_TOO_LARGE,
            "requestId": request_id,
        }
    )


def new_trace_id() -> str:
    """An X-Ray style trace header for a call that came without one."""
    noise = os.urandom(20).hex()
    return f"Root=1-{int(time.time()):08x}-{noise[:24]};Parent={noise[24:]};Sampled=0"


def client_context_header(b64: str | None) -> str | None:
    """X-Amz-Client-Context is base64 JSON; the runtime gets the JSON itself (as is, if it is not base64)."""
    if b64 is None:
        return None
    try:
        text = base64.b64decode(b64, validate=True).decode()
        msgspec.json.decode(text)
        return text
    except (binascii.Error, UnicodeDecodeError, msgspec.DecodeError):
        return b64
