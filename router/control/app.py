"""The control-plane aiohttp application: health, readiness, metrics and the Lambda API on one port.

`create_app(plane)` builds it from a `ControlPlane` (what the handlers need from the daemon). Routes:

* `GET /healthz` (the process is up), `GET /readyz` (sources started and not draining: `plane.is_ready`),
  `GET /metrics` (Prometheus text from router/metrics.py, plus `router_api_requests_total` by operation
  and status);
* Invoke (router/control/invoke.py) and function management (router/control/functions.py), with versions,
  aliases, event invoke configs, layers, tags and function URLs (one module each);
* the function URLs themselves under `/lambda-url/` (router/control/url_gateway.py; open to all when their
  AuthType is NONE);
* event source mappings (router/control/mappings/api.py);
* the event inspection API under `/inspect/` (router/control/inspect.py), when `extras["inspect"]` is set;
* the web console under `/console/` (router/control/console/);
* `GET /cluster`: the cluster's nodes, shares, queue partitions and backlog (docs/cluster.md), when
  `extras["cluster"]` is set; a single router answers 404 ResourceNotFoundException.

Middlewares, outermost first: `error_middleware` gives each request an `x-amzn-RequestId` and answers every
failure in Lambda's error shape (router/control/errors.py); the request counter; then, when
`server.auth_token` is set, the token check (router/control/auth.py). Request bodies are capped at
`server.max_body_mb` (Invoke payloads have their own 6 MB / 1 MB limits).

`create_runner(plane)` serves the app through router.edge.http's GuardedAppRunner with the server's limits
(`max_url_bytes`, `max_header_bytes`, `max_headers`, `idle_timeout_s`; `body_timeout_s` for bodies):
malformed HTTP gets Lambda's error shape (router.control.errors.refusal) and one rate-limited log line.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router.control.errors import MAX_BODY_KEY, REJECTS_KEY, Handler, error_middleware, render_refusal
from router.control.plane import PLANE_KEY, ControlPlane
from router.edge.http import Guard, GuardedAppRunner, HttpLimits
from router.edge.rejects import RejectLog


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    plane = request.app[PLANE_KEY]
    if plane.is_ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready"}, status=503)


async def cluster(request: web.Request) -> web.Response:
    from router.control.errors import ApiError
    from router.control.plane import CLUSTER
    from router.core.errors import RESOURCE_NOT_FOUND

    status = request.app[PLANE_KEY].extras.get(CLUSTER)
    if status is None:
        raise ApiError(404, RESOURCE_NOT_FOUND, "This router is not in a cluster (no cluster:)")
    return web.json_response(await status())


async def metrics(request: web.Request) -> web.Response:
    from router.metrics import CONTENT_TYPE

    plane = request.app[PLANE_KEY]
    names = request.query.getall("name[]", [])  # only these samples: a poller reading one metric
    body = plane.metrics.render(names) if plane.metrics is not None else b""
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def request_counter(plane: ControlPlane) -> Any:
    """Count API requests by route (e.g. `PUT /2015-03-31/functions/{name}/code`) and status."""
    counter = plane.metrics.counter(
        "router_api_requests_total",
        "Control-plane requests, by operation and status",
        ("operation", "status"),
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        except Exception as e:
            status = getattr(e, "status", 500)
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            counter.labels(f"{request.method} {route}", str(status)).inc()

    return middleware


def create_app(plane: ControlPlane) -> web.Application:
    from router.control import (
        aliases,
        console,
        functions,
        inspect,
        invoke,
        invoke_config,
        layers,
        tags,
        url_gateway,
        urls,
        versions,
    )
    from router.control.auth import auth_middleware
    from router.control.mappings import api as mappings

    max_body = plane.config.server.max_body_mb * 1024 * 1024
    middlewares: list[Any] = [error_middleware]
    if plane.metrics is not None:
        middlewares.append(request_counter(plane))
    if plane.config.server.auth_token:
        middlewares.append(auth_middleware(plane.config.server.auth_token))
    app = web.Application(client_max_size=max_body, middlewares=middlewares)
    app[PLANE_KEY] = plane
    app[MAX_BODY_KEY] = max_body
    app[REJECTS_KEY] = RejectLog("control plane")
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/cluster", cluster)
    invoke.add_routes(app)
    functions.add_routes(app)
    versions.add_routes(app)
    aliases.add_routes(app)
    invoke_config.add_routes(app)
    layers.add_routes(app)
    tags.add_routes(app)
    urls.add_routes(app)
    url_gateway.add_routes(app)
    mappings.add_routes(app)
    inspect.add_routes(app)
    console.add_routes(app)
    return app


def create_runner(plane: ControlPlane) -> web.AppRunner:
    """The runner the daemon serves the control plane with (see the module docstring)."""
    app = create_app(plane)
    guard = Guard(render=render_refusal, rejects=app[REJECTS_KEY], limits=HttpLimits.of(plane.config.server))
    return GuardedAppRunner(app, guard=guard, access_log=None, handle_signals=False)
