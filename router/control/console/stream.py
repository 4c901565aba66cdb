"""`GET /console/api/stream`: the console's live feed, as server-sent events (`text/event-stream`).

Query (all optional): `after` (a cursor: only invocations recorded after it; `Last-Event-ID` works the
same, so a reconnecting client misses nothing the record still holds), `backlog` (how many of the newest
recorded invocations to send first, default 100, 0 to 1000), `function`, `source`, `outcome` (only those),
`interval_s` (how often `stats` comes, default 2, 0.2 to 60).

Events, each `event: <name>` and one line of JSON `data`:

* `hello`, first: `{"cursor", "inspect": bool, "step_s", "fields"}` (`inspect` false: inspect.enabled is
  off, no invocation will come);
* `invocation` (with `id: <seq>`), oldest first: the inspection API's view of one invocation without its
  event and result (open it with `GET /inspect/requests/{id}`), plus `report`: its REPORT line as the
  call's log printed it (router/control/console/reports.py keeps the latest calls'; for older ones it is
  rebuilt in the same format from the recorded figures); null for invocations that did not run
  (loop-stopped, throttled);
* `stats`, every `interval_s`: `{"time", "account", "functions": {name: FunctionStats}, "opened",
  "points": {name: point}}`, the dispatcher's live numbers and the open history bucket's point per
  function (router/dispatch/history.py; `fields` of `hello` names its members).

The stream ends when the client goes away or the control plane shuts down (the app's on_shutdown).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from aiohttp import web

from router.control.console.api import console_port
from router.control.console.reports import ReportLines, report_in
from router.control.errors import invalid_parameter, query_number
from router.control.plane import INSPECTION, PLANE_KEY, Inspection
from router.core.backends import Invocation
from router.core.results import InvocationResult
from router.dispatch.history import FIELDS
from router.invoker.metering import report_line
from router.record.views import ERROR, SUCCESS, view

CLOSING: web.AppKey[asyncio.Event] = web.AppKey("console_closing", asyncio.Event)
MAX_BACKLOG = 1000
_encode = msgspec.json.Encoder().encode


def report_of(i: Invocation, reports: ReportLines) -> str | None:
    """The REPORT line of a recorded invocation (None when it did not run)."""
    if i.outcome not in (SUCCESS, ERROR):
        return None
    found = reports.line(i.request_id, i.time) or report_in(i.log)
    if found is not None:
        return found
    figures = InvocationResult(
        request_id=i.request_id, payload=b"", duration_ms=i.duration_ms, billed_ms=i.billed_ms,
        init_ms=i.init_ms, memory_mb=i.memory_mb, max_memory_mb=i.max_memory_mb,
    )  # fmt: skip
    return report_line(figures)


def summary(i: Invocation, reports: ReportLines) -> dict[str, Any]:
    doc = view(i)
    del doc["event"], doc["result"]
    doc["report"] = report_of(i, reports)
    return doc


def frame(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + _encode(data) + b"\n\n"


class Feed:
    """One client's stream: what it asked for, and where it is in the record."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        plane = request.app[PLANE_KEY]
        self.dispatcher = plane.dispatcher
        self.inspection: Inspection | None = plane.extras.get(INSPECTION)
        port = console_port(request)
        self.history = port.history
        self.reports = port.reports
        self.function = request.query.get("function")
        self.source = request.query.get("source")
        self.outcome = request.query.get("outcome")
        self.backlog = int(query_number(request, "backlog", 100, 0, MAX_BACKLOG))
        self.interval_s = query_number(request, "interval_s", 2.0, 0.2, 60.0)
        resume = request.query.get("after", request.headers.get("Last-Event-ID"))
        if resume is not None and not (resume.isascii() and resume.isdigit()):
            raise invalid_parameter(f"after: expected a whole number, got {resume!r}")
        self.after = int(resume) if resume is not None else None

    def stats(self) -> dict[str, Any]:
        stats = self.dispatcher.stats()
        points = self.history.current(stats)  # first: it may close a bucket that has ended (`opened` moves)
        return {
            "time": time.time(),
            "account": msgspec.to_builtins(stats.account),
            "functions": msgspec.to_builtins(stats.functions),
            "opened": self.history.opened,
            "points": points,
        }

    async def first(self) -> tuple[int, list[Invocation]]:
        """The cursor to follow from, and the backlog to send before."""
        if self.inspection is None:
            return 0, []
        store = self.inspection.store
        cursor = store.cursor if self.after is None else self.after
        if self.backlog == 0:
            return cursor, []
        after = self.after or 0
        found = await store.recent(self.function, after=after, limit=self.backlog, source=self.source)
        return (found[-1].seq if found else cursor), found

    def wanted(self, i: Invocation) -> bool:
        return self.outcome is None or i.outcome == self.outcome


async def stream(request: web.Request) -> web.StreamResponse:
    feed = Feed(request)
    closing = request.app[CLOSING]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    cursor, backlog = await feed.first()
    hello = {"cursor": cursor, "inspect": feed.inspection is not None, "step_s": feed.history.step_s,
             "fields": list(FIELDS)}  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        await response.write(frame("hello", hello))
        await _send(response, feed, backlog)
        next_stats = 0.0
        while not closing.is_set():
            if loop.time() >= next_stats:
                await response.write(frame("stats", feed.stats()))
                next_stats = loop.time() + feed.interval_s
            wait_s = max(0.0, next_stats - loop.time())
            found: list[Invocation] = []
            if feed.inspection is not None:
                found = await feed.inspection.store.since(feed.function, cursor, wait_s, feed.source)
            if found:
                cursor = found[-1].seq
                await _send(response, feed, found)
            else:  # nothing within the interval, or the record closed (shutdown): wait out the interval
                await _until(closing, next_stats - loop.time())
    except (ConnectionError, RuntimeError):  # the client went away (RuntimeError: the record closed)
        pass
    return response


async def _send(response: web.StreamResponse, feed: Feed, found: list[Invocation]) -> None:
    for i in found:
        if feed.wanted(i):
            await response.write(frame("invocation", summary(i, feed.reports), i.seq))


async def _until(event: asyncio.Event, timeout_s: float) -> None:
    if timeout_s <= 0:
        return
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        pass


async def on_shutdown(app: web.Application) -> None:
    """The control plane stops: every live feed ends (aiohttp waits for handlers before closing)."""
    app[CLOSING].set()
