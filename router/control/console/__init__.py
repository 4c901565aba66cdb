"""The web console: a page served by the control plane at `/console/`, over the same API (docs/console.md).

Routes:

* `GET /console` (redirects to `/console/`) and `GET /console/`: the page (static/index.html); its script and
  style under `/console/static/`. These files reveal nothing and are open even with `server.auth_token`
  set (router/control/auth.py): a browser cannot send a header when it navigates. The page asks for the
  token once, keeps it in the tab's sessionStorage and sends it as `Authorization: Bearer` on every call.
* `/console/api/...` (router/control/console/api.py, stream.py): JSON and the live feed, behind the token
  like every other API route.

Without `server.auth_token` the console (its page, files and endpoints) answers only clients on loopback
(127.0.0.0/8, ::1, a Unix socket): anyone else gets 403 AccessDeniedException, in Lambda's error shape,
saying to set a token. The rest of the API keeps its own rules.

Everything else the page calls is the existing API: Invoke (`POST /2015-03-31/functions/{name}/invocations`),
the inspection API (`/inspect/...`: invocations, requests, inject, failures, redrive, replay).

The static files ship inside the package (package-data in pyproject.toml): no build step, no CDN, nothing
fetched from elsewhere, so the page works offline.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from router.control.errors import ApiError
from router.control.plane import PLANE_KEY

NOSNIFF = "nosniff"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCESS_DENIED = "AccessDeniedException"
STATIC = Path(__file__).parent / "static"
PAGE = "/console/"
# The page may load only its own files and talk only to this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PAGE)


async def static(request: web.Request) -> web.StreamResponse:
    """A file under static/ (nothing outside it; no listing)."""
    root = STATIC.resolve()
    target = (root / request.match_info["path"]).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        target, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    )


def is_loopback(remote: str | None) -> bool:
    """A peer on this machine: a loopback address, or no address at all (a Unix socket)."""
    if not remote:
        return True
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def local_only(handler: Handler) -> Handler:
    """`handler`, answering 403 to peers that are not on loopback (used when the router has no token)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_loopback(request.remote):
            raise ApiError(
                403,
                ACCESS_DENIED,
                "The console is open without a token only on loopback: set server.auth_token to use it "
                "from another host",
            )
        return await handler(request)

    return guarded


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC / "index.html",
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": NOSNIFF,
            "Referrer-Policy": "no-referrer",
        },
    )


def add_routes(app: web.Application) -> None:
    from router.control.console import api, stream

    app[stream.CLOSING] = asyncio.Event()
    app.on_shutdown.append(stream.on_shutdown)
    # With a token, the auth middleware guards the API; without one, only this machine may use the console.
    guard = (lambda h: h) if app[PLANE_KEY].config.server.auth_token else local_only
    routes: dict[str, Handler] = {
        "/console": redirect,
        PAGE: page,
        "/console/static/{path:.+}": static,
        "/console/api/functions": api.functions,
        "/console/api/history": api.history,
        "/console/api/sources": api.sources,
        "/console/api/templates": api.templates,
        "/console/api/stream": stream.stream,
    }
    for path, handler in routes.items():
        app.router.add_get(path, guard(handler))
