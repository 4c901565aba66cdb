"""An unmodified AWS Lambda Powertools app behind the HTTP gateway on a named stage, through `router serve`.

Fixture function: tests/functions/powertools_api (APIGatewayHttpResolver for payload 2.0,
APIGatewayRestResolver for 1.0). On AWS a named stage is the first segment of the URL; Powertools strips it
from `rawPath` again before routing, so an event without it would make the app answer its own 404.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.support import free_port

pytestmark = pytest.mark.integration


def config(version: str) -> str:
    return f"""
server: {{port: "${{ROUTER_PORT}}"}}
functions:
  items: {{runtime: python3.11, handler: app.handler, code: "${{FUNCTIONS}}/powertools_api", timeout_s: 10}}
sources:
  api: {{kind: http, port: "${{HTTP_PORT}}", payload_version: "{version}", stage: prod}}
routes:
  - {{source: api, function: items, http: {{method: GET, path: "/items/{{id}}"}}}}
"""


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("version", ["2.0", "1.0"])
async def test_powertools_resolver_routes_on_a_named_stage(make_router: Any, version: str) -> None:
    port = free_port()
    await make_router(config(version), env={"HTTP_PORT": str(port)})
    status, body = await get(f"http://127.0.0.1:{port}/prod/items/42")
    assert status == 200, body
    assert body["id"] == "42" and body["path"] == "/items/42" and body["stage"] == "prod"
    assert body["version"] == version  # APIGatewayProxyEvent.version reads the event's top-level field
    if version == "2.0":
        assert body["rawPath"] == "/prod/items/42"
    else:
        assert body["contextPath"] == "/prod/items/42"
    status, body = await get(f"http://127.0.0.1:{port}/items/42")
    assert (status, body) == (404, {"message": "Not Found"})  # outside the stage: the gateway's own 404
