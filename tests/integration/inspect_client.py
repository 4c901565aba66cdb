"""A small client of the router's inspection API, as a user's own integration tests would write one.

inspector = Inspector(router.url)
cursor = await inspector.cursor()
... trigger something (write a file, send a mail, produce a record) ...
hit = await inspector.wait("resize", {"event": {"Records": {"s3": {"object": {"key": ["a.jpg"]}}}}},
                           after=cursor)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import aiohttp


class InspectError(AssertionError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class Inspector:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _call(self, method: str, path: str, body: Any = None, within_s: float = 60) -> Any:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within_s)) as session:
            async with session.request(method, f"{self.url}{path}", json=body) as response:
                data = await response.json(content_type=None)
                if response.status >= 300:
                    raise InspectError(response.status, data)
                return data

    async def cursor(self) -> int:
        return int((await self._call("GET", "/inspect/cursor"))["cursor"])

    async def invocations(self, function: str | None = None, *, after: int = 0, **query: Any) -> list[Any]:
        path = f"/inspect/functions/{function}/invocations" if function else "/inspect/invocations"
        params = "&".join(f"{k}={v}" for k, v in {"after": after, **query}.items())
        return list((await self._call("GET", f"{path}?{params}"))["invocations"])

    async def wait(
        self, function: str | None, pattern: Any = None, *, after: int | None = None, timeout_s: float = 20
    ) -> dict[str, Any]:
        path = f"/inspect/functions/{function}/wait" if function else "/inspect/wait"
        body: dict[str, Any] = {"timeout_s": timeout_s}
        if pattern is not None:
            body["pattern"] = pattern
        if after is not None:
            body["after"] = after
        found = await self._call("POST", path, body, within_s=timeout_s + 10)
        return dict(found["invocation"])

    async def inject(self, source: str, **body: Any) -> dict[str, Any]:
        return dict(await self._call("POST", f"/inspect/sources/{source}/inject", body))

    async def failures(self, function: str | None = None) -> list[dict[str, Any]]:
        path = f"/inspect/functions/{function}/failures" if function else "/inspect/failures"
        return list((await self._call("GET", path))["destinations"])

    async def wait_count(
        self, function: str | None, count: int, pattern: Any = None, *, after: int, timeout_s: float = 30
    ) -> list[dict[str, Any]]:
        """The first `count` invocations after the cursor matching the pattern."""
        found = []
        for _ in range(count):
            hit = await self.wait(function, pattern, after=after, timeout_s=timeout_s)
            found.append(hit)
            after = hit["seq"]
        return found

    async def request(self, request_id: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"/inspect/requests/{request_id}"))

    async def replay(self, **plan: Any) -> dict[str, Any]:
        return dict(await self._call("POST", "/inspect/replay", plan, within_s=600))

    async def redrive(self, **body: Any) -> dict[str, Any]:
        return dict(await self._call("POST", "/inspect/redrive", body, within_s=600))

    async def faults(self, **body: Any) -> dict[str, Any]:
        """GET the faults in force; with a body, PUT it first."""
        if body:
            return dict(await self._call("PUT", "/inspect/faults", body))
        return dict(await self._call("GET", "/inspect/faults"))

    async def metric(self, name: str, **labels: str) -> float:
        """The value of one Prometheus sample (0 when absent)."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            if line.startswith(f"{name}{{{want}}}") or (not labels and line.startswith(f"{name} ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def invoke(
    url: str,
    function: str,
    payload: Any,
    *,
    kind: str = "RequestResponse",
    trace: str = "",
    log: bool = False,
) -> Any:
    """Lambda Invoke through the router (blocking; call with asyncio.to_thread). With `log`, the answer is
    `{"body", "log" (base64, X-Amz-Log-Result), "request_id", "function_error"}`."""
    headers = {"X-Amz-Invocation-Type": kind, "Content-Type": "application/json"}
    if trace:
        headers["X-Amzn-Trace-Id"] = trace
    if log:
        headers["X-Amz-Log-Type"] = "Tail"
    request = urllib.request.Request(
        f"{url}/2015-03-31/functions/{function}/invocations", json.dumps(payload).encode(), headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            decoded = json.loads(body) if body else None
            if not log:
                return decoded
            h = response.headers
            return {
                "body": decoded,
                "log": h.get("X-Amz-Log-Result", ""),
                "request_id": h.get("x-amzn-RequestId"),
                "function_error": h.get("X-Amz-Function-Error"),
            }
    except urllib.error.HTTPError as e:
        with e:  # an HTTPError holds the open response: close it, don't leave the socket to the GC
            raise InspectError(e.code, f"{e.headers.get('x-amzn-ErrorType')}: {e.read().decode()}") from None
