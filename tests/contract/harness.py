"""What the contract suite runs a source in: a recording function behind real route ports, and the source
built through the real registry from config text through the real loader.

* `FakeFunction` is the `calls` object (router.dispatch.routing.Calls) behind the route ports: it records
  every invoke/enqueue with the payload, the envelopes it was rendered from (when the route rendered it) and
  the keys of the native events in it (read by the kind's driver), and answers like a function that
  succeeded. `refuse(n)` makes the next n calls raise `Throttled` (a dispatch error: nothing ran); `hold()`
  makes the calls after those wait until `release()`, so a test can look at the source mid-call.
* `RecordingPort` is a real `BoundRoute` (router.dispatch.routing.bind_routes) that notes what it rendered.
* `Harness` builds the config text for a driver, parses it with `router.validate.parse_config`, creates the
  source with `router.sources.kind_module(kind).create(ctx)` and runs it the way the daemon does: a task
  running `run()`, `ctx.ready()` awaited, stop = `ctx.stopping` set then the task cancelled, then `aclose()`.
  `start()` again runs a fresh source on the same state folder (a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from router.core.envelope import Envelope
from router.core.errors import REASON_ACCOUNT, Throttled
from router.core.ports import Source, SourceContext
from router.core.results import InvocationResult
from router.dispatch.routing import BoundRoute, bind_routes
from router.sources import kind_module
from router.validate import parse_config

if TYPE_CHECKING:
    from tests.contract.drivers.base import Event, KindDriver

SOURCE = "src"  # the source's name in every contract config
FUNCTION = "fn"
WAIT_S = 30.0  # a hang guard on every wait (the per-test timeout is 120 s), not a timing assertion
ANSWER = b'{"statusCode": 200, "body": "ok"}'  # a success for every kind (the HTTP gateway replies 200)


async def until(check: Callable[[], Any], what: str | Callable[[], str]) -> None:
    """Poll `check` (sync or async) every 20 ms until true; fail naming `what` after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.02)


@dataclass
class Call:
    """One call a route made: `state` is refused, held (waiting for release) or accepted."""

    method: str  # invoke | enqueue
    payload: bytes
    envelopes: list[Envelope]  # what the route rendered the payload from; [] for natively rendered payloads
    keys: list[str]  # the native events in the payload, as the driver identifies them
    state: str = "new"
    request_id: str = ""
    unreadable: str = ""  # why the driver could not read the payload (it is not the kind's shape)


class FakeFunction:
    """The function every route of the source reaches (see the module docstring)."""

    def __init__(self, keys: Callable[[Any], list[str]], event_format: str) -> None:
        self._keys = keys
        self._format = event_format
        self.calls: list[Call] = []
        self.rendered: dict[bytes, list[Envelope]] = {}
        self._refuse = 0
        self._gate: asyncio.Event | None = None

    def refuse(self, n: int) -> None:
        self._refuse = n

    def hold(self) -> None:
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def keys_in(self, payload: bytes) -> list[str]:
        """The driver's keys of the events in a payload, in the route's event format."""
        event = msgspec.json.decode(payload)
        if self._format == "aws":
            return self._keys(event)
        events = event if isinstance(event, list) else [event]  # structured CloudEvents, or a batch of them
        return [key for ce in events for key in self._keys(ce["data"])]

    async def _take(self, method: str, payload: bytes) -> Call:
        call = Call(
            method, payload, self.rendered.get(payload, []), [], request_id=f"req-{len(self.calls) + 1}"
        )
        try:
            call.keys = self.keys_in(payload)
        except Exception as e:  # shown by summary() when a wait fails
            call.unreadable = f"{e!r} in {payload[:300]!r}"
        self.calls.append(call)
        if self._refuse:
            self._refuse -= 1
            call.state = "refused"
            raise Throttled("contract: refused", reason=REASON_ACCOUNT)
        if self._gate is not None and not self._gate.is_set():
            call.state = "held"
            await self._gate.wait()
        call.state = "accepted"
        return call

    async def invoke(
        self,
        function: str,
        payload: bytes,
        *,
        client_context: str | None = None,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
    ) -> InvocationResult:
        call = await self._take("invoke", payload)
        return InvocationResult(request_id=call.request_id, payload=ANSWER)

    async def enqueue(
        self,
        function: str,
        payload: bytes,
        *,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
        delay_s: float = 0.0,
    ) -> str:
        return (await self._take("enqueue", payload)).request_id

    # -- what the tests read ------------------------------------------------------------------------------

    def with_key(self, key: str, state: str, since: int = 0) -> list[Call]:
        return [c for c in self.calls[since:] if key in c.keys and c.state == state]

    def summary(self) -> str:
        shown = [f"{c.method} {c.keys or c.unreadable} {c.state}" for c in self.calls]
        return "calls so far: " + ("; ".join(shown) or "none")


@dataclass
class RecordingPort(BoundRoute):
    """A real bound route that notes the envelopes of each payload it renders, for the FakeFunction."""

    recorder: FakeFunction | None = field(default=None, kw_only=True)

    def render(self, envelopes: Sequence[Envelope]) -> bytes:
        payload = super().render(envelopes)
        if self.recorder is not None:
            self.recorder.rendered[payload] = list(envelopes)
        return payload


class Harness:
    """One source of a driver's kind, started, stopped and restarted on one state folder."""

    def __init__(self, driver: KindDriver, tmp_path: Path) -> None:
        self.driver = driver
        self.base_dir = tmp_path
        self.state_dir = tmp_path / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        driver.state_dir = self.state_dir
        self.function: FakeFunction | None = None
        self.ctx: SourceContext | None = None
        self.source: Source | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def fn(self) -> FakeFunction:
        assert self.function is not None, "start the source first"
        return self.function

    def config_text(self, event_format: str) -> str:
        d = self.driver
        settings = "".join(f"\n    {line}" for line in d.source_yaml().strip().splitlines())
        route = "".join(f"\n    {line}" for line in d.route_yaml().strip().splitlines())
        return f"""
functions:
  {FUNCTION}: {{runtime: python3.11, handler: app.handler, code: "{d.functions_dir}/echo"}}
sources:
  {SOURCE}:
    kind: {d.kind}{settings}
routes:
  - source: {SOURCE}
    function: {FUNCTION}
    event_format: {event_format}{route}
"""

    async def start(self, event_format: str = "aws") -> None:
        """Run a fresh source (same state folder, same recording function) until it says it is ready."""
        config = parse_config(self.config_text(event_format), base_dir=self.base_dir)
        if self.function is None:
            self.function = FakeFunction(self.driver.keys, event_format)
        ports = [
            RecordingPort(**{f.name: getattr(r, f.name) for f in fields(r)}, recorder=self.fn)
            for r in bind_routes(config, SOURCE, self.fn)
        ]
        ready = asyncio.Event()
        self.ctx = SourceContext(
            name=SOURCE,
            config=config.sources[SOURCE],
            routes=list(ports),
            state_dir=self.state_dir,
            clock=self.driver.clock,
            ready=ready.set,
            base_dir=self.base_dir,
            region=config.account.region,
            account_id=config.account.account_id,
        )
        self.source = kind_module(self.driver.kind).create(self.ctx)
        self.task = asyncio.create_task(self.source.run(), name=f"contract:{self.driver.name}")
        await self._wait_ready(ready)
        await self.driver.started(self.source)

    async def _wait_ready(self, ready: asyncio.Event) -> None:
        assert self.task is not None
        waiter = asyncio.ensure_future(ready.wait())
        done, _ = await asyncio.wait([self.task, waiter], timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self.task in done:
                self.task.result()  # raise what ended run()
                raise AssertionError("run() returned before the source was ready")
            raise AssertionError(f"source not ready within {WAIT_S}s")

    async def stop(self) -> None:
        """As the daemon stops a source: ctx.stopping, cancel run(), then aclose(). Bounded (a hang guard)."""
        assert self.ctx is not None and self.task is not None and self.source is not None
        self.ctx.stopping.set()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, WAIT_S)
        await asyncio.wait_for(self.source.aclose(), WAIT_S)
        self.task = None

    async def close(self) -> None:
        """Teardown: release held calls, stop the source if it runs, release the driver's clients."""
        if self.function is not None:
            self.function.release()
        if self.task is not None:
            await self.stop()
        await self.driver.close()

    async def produce_delivered(self) -> Event:
        """Produce one event and wait until the function accepted it and the source acknowledged it."""
        event = await self.driver.produce()
        await until(
            lambda: self.fn.with_key(event.key, "accepted"), lambda: f"{event.key}: {self.fn.summary()}"
        )
        await until(lambda: self.driver.acknowledged(event), f"{event.key} acknowledged")
        return event
