"""Function isolation with `router serve` as root: each function runs as a uid of its own and cannot read
the router's environment, config or state, nor another function's code (router/invoker/isolation.py).

Skipped, with the reason, where the router cannot isolate (not root, no mount namespaces); CI runs as root.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from router.invoker import isolation
from tests.conftest import MakeRouter
from tests.support import FUNCTIONS, RouterProcess

PROBLEM = isolation.probe()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROBLEM is not None, reason=f"no isolation here: {PROBLEM}"),
]

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: "${TMP}/state"
functions:
  snoop:  {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/snoop"}
  secret: {runtime: python3.11, handler: app.handler, code: "${TMP}/secret"}
  zipped: {runtime: python3.11, handler: app.handler, code: "${TMP}/zipped.zip"}
"""
SECRET = 'TOKEN = "s3cr3t"\n\n\ndef handler(event, context):\n    return {"ok": True}\n'


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.py", SECRET)
    return buffer.getvalue()


def invoke(router: RouterProcess, function: str, event: dict[str, Any]) -> Any:
    url = f"{router.url}/2015-03-31/functions/{function}/invocations"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def ways_through_tmp() -> set[str]:
    """The entries of /tmp on the way to the fixture functions and the interpreter (a checkout under /tmp)."""
    needed = {Path(os.path.realpath(p)) for p in (FUNCTIONS, sys.prefix, sys.base_prefix)}
    return {p.relative_to("/tmp").parts[0] for p in needed if p.is_relative_to("/tmp")}


async def test_a_function_sees_neither_the_router_nor_other_functions(make_router: MakeRouter) -> None:
    router = await make_router(
        CONFIG,
        files={"secret/app.py": SECRET, "zipped.zip": zipped()},
        env={"ROUTER_SECRET": "do-not-leak"},
    )
    assert router.proc is not None
    assert (await asyncio.to_thread(invoke, router, "zipped", {}))["ok"]  # its ZIP is unpacked into state
    state = router.base_dir / "state"
    unpacked = next((state / "code").iterdir())
    forbidden = [
        f"/proc/{router.proc.pid}/environ",
        str(state / "queue.db"),
        str(state / "code"),
        str(router.config_path),
        str(router.base_dir / "secret" / "app.py"),
        str(router.base_dir / "zipped.zip"),
        str(unpacked / "app.py"),
    ]
    seen = await asyncio.to_thread(invoke, router, "snoop", {"paths": forbidden})
    assert {path: outcome for path, outcome in seen["results"].items() if outcome == "read"} == {}
    assert seen["uid"] != 0 and seen["uid"] >= isolation.UID_BASE and seen["gid"] == seen["uid"]
    assert "app.py" in seen["own_code"]
    # a /tmp of its own: what it wrote, and of the host's /tmp only the way to what it needs (its code, the
    # interpreter) when the checkout itself is under /tmp
    assert set(seen["tmp"]) - ways_through_tmp() == {"snoop-was-here"}, seen["tmp"]
    assert "isolation: each function runs as its own uid" in router.log_text()


async def test_functions_get_uids_of_their_own(make_router: MakeRouter) -> None:
    config = CONFIG.replace(
        "  secret:",
        "  snoop2: {runtime: python3.11, handler: app.handler, code: '${FUNCTIONS}/snoop'}\n  secret:",
    )
    router = await make_router(config, files={"secret/app.py": SECRET, "zipped.zip": zipped()})
    first = await asyncio.to_thread(invoke, router, "snoop", {})
    second = await asyncio.to_thread(invoke, router, "snoop2", {})
    assert first["uid"] != second["uid"]


NETWORK = """
server: {port: "${ROUTER_PORT}"}
state_dir: "${TMP}/state"
functions:
  online:  {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/netprobe"}
  offline: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/netprobe", network: false}
  offline_fresh: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/netprobe", network: false,
                  python_zygote: false}
  offline_node: {runtime: nodejs20.x, handler: index.handler, code: "${FUNCTIONS}/node_echo", network: false}
"""


async def test_a_function_without_network_reaches_only_its_runtime_api(make_router: MakeRouter) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        router = await make_router(NETWORK)
        online = await asyncio.to_thread(invoke, router, "online", {"port": port})
        offline = await asyncio.to_thread(invoke, router, "offline", {"port": port})
        fresh = await asyncio.to_thread(invoke, router, "offline_fresh", {"port": port})
        node = await asyncio.to_thread(invoke, router, "offline_node", {"port": port})
    finally:
        server.close()
    assert online["reached"] == "connected"
    for seen in (
        offline,
        fresh,
    ):  # answered through its Runtime API, yet the router's loopback is out of reach
        assert seen == {"reached": "ConnectionRefusedError", "interfaces": ["lo"]}
    assert node["event"] == {"port": port}  # Node.js reaches its Runtime API in its namespace too
