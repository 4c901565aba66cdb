"""HTTP gateway source (`kind: http`): API Gateway-style routes to functions, answered synchronously.

The source listens on its own host:port (port 0 picks a free one; `port` then holds the bound one). A
connection starts on the lean path (router/sources/http/lean.py: plain HTTP/1.1 requests parsed by hand);
the first request it does not take hands the connection to aiohttp's low-level server for good. Both call
`answer`, the same steps for every request:

1. a request id is made and sent back on every reply (`apigw-requestid` for 2.0, `x-amzn-RequestId` for 1.0,
   or `request_id_header`);
2. with `cors`, a preflight (OPTIONS + Origin + Access-Control-Request-Method) is answered at once;
3. a method the gateway never serves (CONNECT, TRACE, WebDAV's, anything but GET, POST, PUT, PATCH, DELETE,
   HEAD, OPTIONS) is 501 with Allow, before any route is looked at, and the connection is closed; an
   `Expect` other than 100-continue is 417;
   a Content-Length over `max_body_mb` is 413 before anything is read, a longer streamed body too;
4. the route table (router/sources/http/routes.py) picks the routes matching method and path (without the
   leading `/<stage>` of a named stage, which the URL must carry), most specific first; none gives 404, a
   path that exists under other methods 405 with Allow;
5. for each candidate in order, the event is built (API Gateway 2.0 or 1.0, or, for a route whose function
   takes CloudEvents and a request that is one, that CloudEvent) and the route's filter asked; the first
   route that takes it is invoked synchronously; if every filter says no, 404;
6. the result, or the dispatch error, becomes the reply (router/sources/http_response.py), CORS headers added.

Malformed input never reaches a route (router.edge, docs/hardening.md): the server is a GuardedServer, so a
request aiohttp cannot parse gets 400/414/431/505 as `{"message": ...}`; the body is read by
router.edge.bodies.read_body (408 past `body_timeout_s`, 413 past `max_body_mb` before or after decoding a
gzip/deflate Content-Encoding, 400 when it does not decode, 415 for another coding). Each refusal is one
rate-limited log line, never a traceback.

The gateway waits `timeout_s` (API Gateway's integration timeout) for a result, then answers 504 while the
call runs on to its end, as on AWS. A dispatch error never reaches the function: 429 when throttled, 503 when
shutting down. On close (the daemon cancels `run`) the listener stops first, calls in flight get up to
`drain_s` to end and be answered, those still running then answer 503 (the dispatcher's own drain settles
the calls themselves), and open connections are closed. Nothing here is acknowledged to anyone but the
HTTP client, so there is nothing to redeliver.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from router.config.sources.http import Config
from router.core import timefmt
from router.core.envelope import Envelope, encoder
from router.core.errors import DispatchError
from router.core.trace import HEADER as TRACE_HEADER
from router.edge.bodies import BodyRefused, content_coding, read_body
from router.edge.http import Guard, GuardedServer, HttpLimits
from router.edge.rejects import RejectLog
from router.shapes import apigateway
from router.sources.http.cors import apply_cors, check_cors, is_preflight, preflight_reply
from router.sources.http.events import (
    ApiSettings,
    CloudEventRejected,
    RequestFacts,
    api_id_for,
    gateway_event,
    incoming_cloudevent,
    new_request_id,
    stage_path,
)
from router.sources.http.lean import GatewayFront, GatewayRequest
from router.sources.http.response import Reply, error_reply, reply_for_dispatch_error, reply_for_result
from router.sources.http.routes import Candidate, RouteKey, RouteTable, parse_route_key

if TYPE_CHECKING:
    from aiohttp import web

    from router.config import Config as RouterConfig
    from router.core.ports import RoutePort, SourceContext
    from router.core.results import InvocationResult

log = logging.getLogger("router.sources.http")

STAGE = re.compile(r"^(\$default|[A-Za-z0-9_-]{1,128})\Z")
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
CLOSE_TIMEOUT_S = 1.0
SERVED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
ALLOW = ", ".join(sorted(SERVED_METHODS))


def check_routes(config: RouterConfig, source: str, problems: list[str]) -> None:
    """Route keys parse, one function per route, no route hidden behind an unfiltered one with its key."""
    taken: dict[str, int] = {}
    for i, r in enumerate(config.routes):
        if r.source != source or r.http is None:
            continue
        key = parse_route_key(r.http.method, r.http.path)
        if isinstance(key, str):
            problems.append(f"routes[{i}].http: {key}")
            continue
        if len(r.functions) != 1:
            problems.append(
                f"routes[{i}].function: an http route answers with one function's result, "
                f"got {len(r.functions)} functions"
            )
        if key.text in taken:
            problems.append(
                f"routes[{i}].http: route key {key.text!r} is already taken by routes[{taken[key.text]}], "
                "which has no filter, so this route is never used"
            )
        elif r.filter is None and r.enabled:
            taken[key.text] = i


def build_table(routes: list[RoutePort]) -> RouteTable:
    entries: list[tuple[RouteKey, Any]] = []
    for route in routes:
        http = route.settings.http
        key = parse_route_key(http.method, http.path) if http is not None else parse_route_key("ANY", "")
        if isinstance(key, str):
            raise ValueError(f"route to {route.function}: {key}")
        entries.append((key, route))
    return RouteTable(entries)


class HttpSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.version = self.config.payload_version
        self.table = build_table(ctx.routes)
        self.api = ApiSettings(
            api_id=self.config.api_id or api_id_for(ctx.name),
            stage=self.config.stage,
            account_id=ctx.account_id,
            region=ctx.region,
            stage_variables=dict(self.config.stage_variables),
            binary_media_types=tuple(self.config.binary_media_types),
        )
        self.max_bytes = int(self.config.max_body_mb * 1024 * 1024)
        self.rejects = RejectLog(f"http source {ctx.name}")
        self.port: int | None = None  # the bound port, once listening
        self._runner: web.BaseRunner | None = None
        self._listener: asyncio.Server | None = None
        self._front: GatewayFront | None = None
        self._inflight: set[asyncio.Task[InvocationResult | Exception]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """The API's base URL: a named stage is its first path segment, as on AWS."""
        stage = "" if self.api.stage == "$default" else f"/{self.api.stage}"
        return f"http://{self.config.host}:{self.port}{stage}"

    async def run(self) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()  # kept: each get_running_loop() is a getpid() on 3.11
        limits = HttpLimits.of(self.config)
        guard = Guard(render=self._render_refusal, rejects=self.rejects, limits=limits)
        server = GuardedServer(self._handle, guard=guard, access_log=None, **limits.handler_args())
        # By the time aclose() cleans up, every call has its answer: connections only finish writing.
        self._runner = web.ServerRunner(server, shutdown_timeout=CLOSE_TIMEOUT_S)
        await self._runner.setup()
        assert self._runner.server is not None
        # Connections start on the lean path (router/sources/http/lean.py); aiohttp's server takes the rest.
        self._front = GatewayFront(self, self._runner.server, limits)
        try:
            self._listener = await self._loop.create_server(
                self._front.protocol,
                self.config.host,
                self.config.port,
                reuse_address=True,
                reuse_port=self.ctx.reuse_port or None,
            )
            sockets = self._listener.sockets
            self.port = sockets[0].getsockname()[1] if sockets else self.config.port
            log.info("http source %s listening on %s (%d routes)", self.ctx.name, self.url, len(self.table))
            self.ctx.ready()
            await asyncio.Event().wait()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, give calls in flight drain_s to be answered (then 503), close connections."""
        if self._closed:
            return
        self._closed = True
        if self._runner is None:
            return
        if self._listener is not None:
            self._listener.close()
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=self.config.drain_s)
            for task in late:
                task.cancel()  # the dispatcher's drain settles the call itself; its client gets 503
        if self._front is not None:
            await self._front.settle(CLOSE_TIMEOUT_S)
            self._front.close()
        await self._runner.cleanup()

    # -----------------------------------------------------------------------------------------------------
    # One request

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """aiohttp's handler, for the requests the lean path (router/sources/http/lean.py) leaves to it."""
        from aiohttp import web

        reply = await self.answer(request)
        # A list of pairs: aiohttp makes its own CIMultiDict of whatever it is given.
        response = web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        if request.method == "CONNECT":
            response.force_close()  # aiohttp would keep a CONNECT's connection open as a tunnel
        return response

    async def answer(self, request: web.BaseRequest | GatewayRequest) -> Reply:
        """The reply to one request, on either path, its request id header included."""
        request_id = new_request_id(self.version)
        try:
            reply = await self._reply(request, request_id)
        except Exception:
            log.exception("http source %s: request %s failed", self.ctx.name, request_id)
            reply = error_reply(500)
        reply.headers.append((self.config.request_id_header_name, request_id))
        return reply

    def _render_refusal(self, status: int, reason: str) -> web.Response:
        """The answer to a request refused before it was parsed (router.edge.http)."""
        from aiohttp import web

        reply = error_reply(status)
        reply.headers.append((self.config.request_id_header_name, new_request_id(self.version)))
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    async def _reply(self, request: web.BaseRequest | GatewayRequest, request_id: str) -> Reply:
        cors = self.config.cors
        origin = request.headers.get("Origin")
        if cors is not None:
            wanted = request.headers.get("Access-Control-Request-Method")
            if is_preflight(request.method, origin, wanted):
                assert origin is not None and wanted is not None
                return preflight_reply(
                    cors, origin, wanted, request.headers.get("Access-Control-Request-Headers")
                )
        reply = await self._routed(request, request_id)
        if cors is not None:
            apply_cors(cors, reply, origin)
        return reply

    async def _routed(self, request: web.BaseRequest | GatewayRequest, request_id: str) -> Reply:
        if request.method not in SERVED_METHODS:
            self.rejects.refused(request.remote, 501, f"method {request.method} is not served")
            return error_reply(501, headers=[("Allow", ALLOW)])
        expect = request.headers.get("Expect")
        if expect is not None and expect.lower() != "100-continue":
            self.rejects.refused(request.remote, 417, f"unknown Expect {expect[:50]!r}")
            return error_reply(417)  # RFC 9110 10.1.1, as the control plane (aiohttp's web.Application)
        length = request.content_length
        if length is not None and length > self.max_bytes:
            return error_reply(413)
        raw_path, _, raw_query = request.raw_path.partition("?")
        route_path = stage_path(raw_path, self.api.stage)
        if route_path is None:
            return error_reply(404)
        resolution = self.table.resolve(request.method, route_path)
        if not resolution.candidates:
            if resolution.allow:
                return error_reply(405, headers=[("Allow", ", ".join(resolution.allow))])
            return error_reply(404)
        if isinstance(request, GatewayRequest):  # its body is in, within max_body_mb
            facts = request.facts(request_id, raw_path, raw_query, request.body)
        else:
            try:
                body = await self._read_body(request)
            except BodyRefused as e:
                self.rejects.refused(request.remote, e.status, e.reason)
                return error_reply(e.status)
            facts = RequestFacts.of(request, request_id, raw_path, raw_query, body, self.port or 0)
        for candidate in resolution.candidates:
            try:
                chosen = self._event(candidate, facts)
            except CloudEventRejected as e:
                return error_reply(e.status, str(e))
            if chosen is not None:
                route, envelope, payload = chosen
                return await self._invoke(route, envelope, payload, request_id)
        return error_reply(404)

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        """The body, decoded; BodyRefused past max_body_mb or body_timeout_s, or when it does not decode."""
        content_coding(request.headers)  # an unsupported coding is refused before 100 Continue
        if request.version == (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
            # The low-level server leaves this to us; without it curl waits a second before any body > 1 KB.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
        return await read_body(request, limit=self.max_bytes, timeout_s=self.config.body_timeout_s)

    def _event(self, candidate: Candidate, facts: RequestFacts) -> tuple[RoutePort, Envelope, bytes] | None:
        """(route, envelope, payload) when the candidate's filter takes the request, else None."""
        route: RoutePort = candidate.route
        if route.event_format == "cloudevents":
            cloudevent = incoming_cloudevent(facts)
            if cloudevent is not None:
                envelope = self._cloudevent_envelope(cloudevent, facts)
                return (route, envelope, encoder.encode(cloudevent)) if route.matches(envelope) else None
        envelope = self._apigateway_envelope(candidate, facts)
        if not route.matches(envelope):
            return None
        return route, envelope, route.render([envelope])

    def _apigateway_envelope(self, candidate: Candidate, facts: RequestFacts) -> Envelope:
        event = gateway_event(facts, self.version, candidate.key.text, candidate.path_params, self.api)
        return apigateway.envelope(
            event, source_name=self.ctx.name, trace=_trace(facts), meta={"version": self.version}
        )

    def _cloudevent_envelope(self, cloudevent: dict[str, Any], facts: RequestFacts) -> Envelope:
        return Envelope(
            id=cloudevent["id"],
            source=cloudevent["source"],
            type=cloudevent["type"],
            time=cloudevent.get("time") or timefmt.iso_ms(facts.time),
            kind="http",
            source_name=self.ctx.name,
            record=cloudevent,
            subject=cloudevent.get("subject"),
            datacontenttype=cloudevent.get("datacontenttype") or "application/json",
            trace=_trace(facts),
            meta={"cloudevent": True},
        )

    async def _invoke(self, route: RoutePort, envelope: Envelope, payload: bytes, request_id: str) -> Reply:
        if self._closed:
            return error_reply(503)
        loop = self._loop or asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(self._call(route, payload, envelope.trace, waiter))
        self._inflight.add(task)
        timer = loop.call_later(self.config.timeout_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
        if not task.done():
            log.warning(
                "request %s: %s did not answer within %gs", request_id, route.function, self.config.timeout_s
            )
            return error_reply(504)
        if task.cancelled():
            return error_reply(503)  # closing, and the call did not end within drain_s
        outcome = task.result()
        if isinstance(outcome, DispatchError):
            log.info("request %s: %s not invoked: %s", request_id, route.function, outcome.code)
            return reply_for_dispatch_error(outcome)
        if isinstance(outcome, Exception):
            raise outcome
        return reply_for_result(outcome, self.version)

    async def _call(
        self, route: RoutePort, payload: bytes, trace: str | None, waiter: asyncio.Future[None]
    ) -> InvocationResult | Exception:
        """The call, in a task of its own (it runs on after a 504). It wakes the request's waiter itself as
        it ends: a done callback, or asyncio.wait, would take extra turns of the event loop per request."""
        try:
            return await route.invoke(payload, trace=trace)
        except DispatchError as e:
            return e
        except Exception as e:
            log.error("http source %s: invocation failed", self.ctx.name, exc_info=e)
            return e
        finally:
            task = asyncio.current_task(self._loop)  # with the loop: no get_running_loop (a getpid on 3.11)
            if task is not None:
                self._inflight.discard(task)
            _wake(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _trace(facts: RequestFacts) -> str | None:
    """The incoming trace (loop protection, router/trace.py): X-Amzn-Trace-Id, as AWS SDKs send it."""
    return facts.header(TRACE_HEADER)


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    if not STAGE.match(settings.stage):
        problems.append(f"{where}.stage: {settings.stage!r} is not a stage name (letters, digits, '-', '_')")
    if settings.request_id_header and not TOKEN.match(settings.request_id_header):
        problems.append(f"{where}.request_id_header: {settings.request_id_header!r} is not a header name")
    if settings.cors is not None:
        check_cors(settings.cors, f"{where}.cors", problems)
    name = where.split(".", 1)[1]
    check_routes(config, name, problems)


def create(ctx: SourceContext) -> HttpSource:
    return HttpSource(ctx)
