"""The web console: a page served by the control plane at `/console/`, over the same API (docs/console.md).

Routes:

* `GET /console` (redirects to `/console/`) and `GET /console/`: the page (static/index.html); its script and
  style under `/console/static/`. These files reveal nothing and are open even with `server.auth_token`
  set (router/control/auth.py): a browser cannot send a header when it navigates. The page asks for the
  token once, keeps it in the tab's sessionStorage and sends it as `Authorization: Bearer` on every call.
* `/console/api/...` (router/control/console/api.py, stream.py): JSON and the live feed, behind the token
  like every other API route.

Everything else the page calls is the existing API: Invoke (`POST /2015-03-31/functions/{name}/invocations`),
the inspection API (`/inspect/...`: invocations, requests, inject, failures, redrive, replay).

The static files ship inside the package (package-data in pyproject.toml): no build step, no CDN, nothing
fetched from elsewhere, so the page works offline.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PAGE = "/console/"
# The page may load only its own files and talk only to this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PAGE)


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC / "index.html",
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def add_routes(app: web.Application) -> None:
    from router.control.console import api, stream

    app[stream.CLOSING] = asyncio.Event()
    app.on_shutdown.append(stream.on_shutdown)
    app.router.add_get("/console", redirect)
    app.router.add_get(PAGE, page)
    app.router.add_static("/console/static", STATIC)
    app.router.add_get("/console/api/functions", api.functions)
    app.router.add_get("/console/api/history", api.history)
    app.router.add_get("/console/api/sources", api.sources)
    app.router.add_get("/console/api/templates", api.templates)
    app.router.add_get("/console/api/stream", stream.stream)
