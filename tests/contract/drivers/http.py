"""The HTTP driver: an event is one request `GET /contract/<key>` to the gateway.

Acknowledged = the client got a 2xx (the reply carries the function's result, so it comes only after it).
A refusal is the caller's to retry, as HTTP works: the gateway answers 429 and the driver sends again.
Nothing is stored, so a restart has nothing to deliver again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.contract.drivers.base import Event, KindDriver


class HttpDriver(KindDriver):
    kind = "http"
    name = "http"
    pushed = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url = ""
        self.session: aiohttp.ClientSession | None = None
        self.sending: list[asyncio.Task[int]] = []

    def source_yaml(self) -> str:
        return "port: 0\ndrain_s: 1"

    def route_yaml(self) -> str:
        return 'http: {method: GET, path: "/contract/{key}"}'

    async def started(self, source: Any) -> None:
        self.url = source.url
        if self.session is None:
            self.session = aiohttp.ClientSession()

    async def produce(self) -> Event:
        return self._send(self.token())

    def _send(self, key: str) -> Event:
        task = asyncio.create_task(self._get(f"{self.url}/contract/{key}"))
        self.sending.append(task)
        return Event(key, task)

    async def _get(self, url: str) -> int:
        assert self.session is not None
        async with self.session.get(url) as response:
            await response.read()
            return response.status

    def keys(self, event: Any) -> list[str]:
        return [event["rawPath"].rpartition("/")[2]]

    async def acknowledged(self, event: Event) -> bool:
        return bool(event.handle.done() and 200 <= event.handle.result() < 300)

    async def retry(self, event: Event) -> Event:
        status = await event.handle
        assert status == 429, f"a throttled request is answered 429, got {status}"
        return self._send(event.key)

    async def close(self) -> None:
        await asyncio.gather(*self.sending, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
