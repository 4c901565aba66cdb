"""The console without a token answers only peers on this machine (router/control/console/__init__.py), and
serves nothing outside its static folder."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from router.control.console import ACCESS_DENIED, is_loopback, local_only, static
from router.control.errors import error_middleware


def test_loopback_peers() -> None:
    for local in ("127.0.0.1", "127.8.0.3", "::1", None, ""):
        assert is_loopback(local), local
    for remote in ("10.0.0.5", "192.168.1.2", "::ffff:10.0.0.5", "fe80::1%eth0", "garbage"):
        assert not is_loopback(remote), remote


@web.middleware
async def peer_from_header(request: web.Request, handler: Any) -> web.StreamResponse:
    """Stands in for a peer on another host: the request as aiohttp would see it from X-Peer's address."""
    return await handler(request.clone(remote=request.headers.get("X-Peer", request.remote)))


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="console")


async def client() -> TestClient[Any, Any]:
    app = web.Application(middlewares=[error_middleware, peer_from_header])
    app.router.add_get("/console/", local_only(ok))
    app.router.add_get("/console/static/{path:.+}", static)
    made = TestClient(TestServer(app, host="127.0.0.1"))
    await made.start_server()
    return made


async def test_only_loopback_peers_pass_the_guard() -> None:
    async with await client() as c:
        assert await (await c.get("/console/")).text() == "console"
        assert (await c.get("/console/", headers={"X-Peer": "::1"})).status == 200
        far = await c.get("/console/", headers={"X-Peer": "10.0.0.5"})
        assert far.status == 403 and far.headers["X-Amzn-ErrorType"] == ACCESS_DENIED
        assert "server.auth_token" in (await far.json())["message"]


async def test_static_files_stay_inside_their_folder() -> None:
    async with await client() as c:
        page = await c.get("/console/static/js/app.js")
        assert page.status == 200 and "javascript" in page.headers["Content-Type"]
        for path in ("/console/static/../__init__.py", "/console/static/%2e%2e/__init__.py",
                     "/console/static/js", "/console/static/nope.js"):  # fmt: skip
            r = await c.get(path, allow_redirects=False)
            assert r.status == 404, (path, r.status)
