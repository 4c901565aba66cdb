"""The control-plane aiohttp application: routes for health, readiness, metrics and the Lambda API.

`create_app(plane)` builds it from a `ControlPlane` (what the handlers need from the daemon). The Lambda API
handlers live in their own modules (router/control/invoke.py, router/control/functions.py) and register
themselves through `add_routes(app)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from router.config import Config
    from router.dispatch.dispatcher import Dispatcher

PLANE_KEY: web.AppKey[ControlPlane] = web.AppKey("plane")


@dataclass
class ControlPlane:
    """What the control plane's handlers see of the daemon."""

    config: Config
    dispatcher: Dispatcher
    metrics: Any
    is_ready: Callable[[], bool]
    reload: Callable[[], Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the inspection store


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    plane = request.app[PLANE_KEY]
    if plane.is_ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    plane = request.app[PLANE_KEY]
    body = plane.metrics.render() if plane.metrics is not None else b""
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def create_app(plane: ControlPlane) -> web.Application:
    app = web.Application(client_max_size=plane.config.server.max_body_mb * 1024 * 1024)
    app[PLANE_KEY] = plane
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    from router.control import invoke

    invoke.add_routes(app)
    return app
