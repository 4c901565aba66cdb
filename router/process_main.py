"""A front process (router/processes.py): synchronous Invoke on the shared port, and the config's HTTP
gateways (http sources) on theirs, with instances of its own.

`python -m router.process_main --index N --ledger PATH --control-fd FD --handover-fd FD --state-dir DIR
--port PORT`, started by the primary only. It stops on SIGTERM (draining its calls, a second SIGTERM cancels
them) or when the primary's end of the control socket closes (the primary died).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.cli import event_loop_factory
from router.config import Config
from router.config.model import split_qualifier
from router.config.sources.http import Config as HttpSettings
from router.control.catalog import FunctionCatalog
from router.control.errors import ApiError
from router.control.front import Front, _Request
from router.control.names import parse_function_name
from router.control.plane import ControlPlane
from router.core.backends import AcceptedEvent
from router.core.clock import SystemClock
from router.core.ports import SourceContext
from router.core.results import InvocationResult
from router.core.shares import NOTHING, from_wire
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.ledger import Ledger, SharedAccounting
from router.dispatch.registry import FunctionDefinition
from router.dispatch.routing import bind_routes
from router.dispatch.stats import Call
from router.edge.lean import Answer
from router.metrics import Metrics
from router.processes import Holdings, Ready, Results, State, SyncAsk, frame, read_message, send_connection
from router.sources import kind_module

log = logging.getLogger("router.process")

GATEWAY_START_S = 10.0  # a gateway not listening by then is left to the primary
FLUSH_S = 0.002  # finished calls go to the primary in batches at most this old
HOLDINGS_S = 1.0  # how often the calls in flight and instances are reported (when they changed)


@dataclass
class _Gateway:
    key: tuple[Any, ...]  # what it was started from: settings, routes, event formats
    ctx: SourceContext
    task: asyncio.Future[None]


class _Synced:
    """The calls of a front process's gateway routes: the dispatcher's, once caught up with the primary."""

    def __init__(self, process: FrontProcess) -> None:
        self.process = process

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
        process = self.process
        if process.stale:
            await process.sync()
        assert process.dispatcher is not None
        return await process.dispatcher.invoke(
            function, payload, client_context=client_context, trace=trace, source=source, qualifier=qualifier
        )

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
        assert self.process.dispatcher is not None
        return await self.process.dispatcher.enqueue(
            function, payload, trace=trace, source=source, qualifier=qualifier, delay_s=delay_s
        )


class ProcessFront(Front):
    """The lean front of a front process: answers what it can exactly as the primary would, leaves the rest
    to the primary (None from `answer`), catches up with the primary's state when the generation moved."""

    def __init__(self, process: FrontProcess, plane: ControlPlane) -> None:
        super().__init__(plane, None, hand_over=process.hand_over)
        self.process = process

    async def answer(self, request: _Request, transport: asyncio.Transport | None = None) -> Answer | None:
        process = self.process
        if process.stale:
            await process.sync()
        try:
            name = parse_function_name(request.name, request.qualifier).name
        except ApiError:
            name = ""  # answered here: the same 400 as the primary's
        if name and (name in process.leave or name not in process.functions):
            return None
        return await super().answer(request, transport)

    def count(self, alias: bool, status: int, n: int = 1) -> None:
        self.process.answered(alias, status)


class FrontProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        self.index: int = args.index
        self.primary_state = Path(args.state_dir)
        self.own = self.primary_state / "processes" / str(self.index)  # its invoker's state
        self.gateways: dict[str, _Gateway] = {}
        self._gateways_changing: asyncio.Future[None] | None = None
        self.port: int = args.port
        self.ledger = Ledger(Path(args.ledger), self.index)
        self.control = socket.socket(fileno=args.control_fd)
        self.channel = socket.socket(fileno=args.handover_fd)
        self.channel.setblocking(True)
        self.channel.settimeout(10.0)
        self.generation = -1
        self.leave: set[str] = set()  # functions whose calls the primary keeps
        self.dispatcher: Dispatcher | None = None
        self.functions: dict[str, FunctionDefinition] = {}
        self.front: ProcessFront | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._state: asyncio.Future[State] | None = None
        self._syncing: asyncio.Task[None] | None = None
        self._batch = Results()
        self._answers: Counter[tuple[bool, int]] = Counter()  # Invoke answers by (alias route, status)
        self._flush: asyncio.TimerHandle | None = None
        self._stop = asyncio.Event()
        self._stops = 0
        self._forced: asyncio.Future[None] | None = None  # a second stop request's drain without grace

    # -- talking to the primary -----------------------------------------------------------------------------

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        while (message := await read_message(reader)) is not None:
            if isinstance(message, State) and self._state is not None and not self._state.done():
                self._state.set_result(message)
        log.info("front process %d: the primary is gone; stopping", self.index)
        self.request_stop()

    async def _ask(self) -> State:
        assert self._writer is not None
        self._state = asyncio.get_running_loop().create_future()
        self._writer.write(frame(SyncAsk()))
        return await self._state

    @property
    def stale(self) -> bool:
        """Whether the primary's functions, limits or faults changed since the last catch-up."""
        return self.ledger.generation != self.generation

    async def sync(self) -> None:
        """Catch up with the primary (one catch-up at a time; callers meanwhile wait for it)."""
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.ensure_future(self._catch_up())
        await asyncio.shield(self._syncing)

    async def _catch_up(self) -> None:
        state = await self._ask()
        await self.apply(state)
        # The gateways follow in the background: a gateway request may be what is catching up, and a
        # gateway that starts again waits for its requests to finish.
        before = self._gateways_changing
        self._gateways_changing = asyncio.ensure_future(self._then_serve_gateways(before, state))

    async def _then_serve_gateways(self, before: asyncio.Future[None] | None, state: State) -> None:
        if before is not None:
            with contextlib.suppress(Exception):
                await before
        try:
            await self.serve_gateways(state)
        except Exception:
            log.exception(f"front process {self.index}: the gateways could not follow the config")

    async def apply(self, state: State) -> None:
        config = state.config
        dispatcher = self.dispatcher
        assert dispatcher is not None
        dispatcher.config = config
        dispatcher.set_account(config.account)
        dispatcher.set_share(from_wire(state.share))  # a cluster node's share, whole otherwise
        catalog = FunctionCatalog(config, self.primary_state, dispatcher, read_only=True)
        await catalog.start()
        self.functions = dispatcher.functions()
        provisioned = {
            n
            for n, d in self.functions.items()
            if any(v.config.provisioned_concurrency for v in (d, *d.versions.values()))
        }
        self.leave = set(state.faulted) | provisioned
        if self.front is not None:
            self.front.plane.config = config
            self.front.token = config.server.auth_token
        self.generation = state.generation

    # -- the HTTP gateways ----------------------------------------------------------------------------------

    async def serve_gateways(self, state: State) -> None:
        """Serve the config's http sources here too (SO_REUSEPORT), except those the primary serves alone: a
        source with faults in force, one whose routes reach a function the primary keeps (faults, provisioned
        concurrency), one on port 0. A source whose settings, routes or functions' event formats changed
        starts again."""
        config = state.config
        wanted: dict[str, tuple[Any, ...]] = {}
        for name, settings in config.sources.items():
            if not isinstance(settings, HttpSettings) or not settings.port or name in state.faulted_sources:
                continue
            routes = tuple(r for r in config.routes if r.source == name)
            functions = {split_qualifier(f)[0] for r in routes for f in r.functions}
            if functions & self.leave:
                continue
            formats = tuple(
                sorted((f, config.functions[f].event_format) for f in functions if f in config.functions)
            )
            wanted[name] = (settings, routes, formats)
        for name in [n for n, g in self.gateways.items() if wanted.get(n) != g.key]:
            await self._stop_gateway(name)
        for name, key in wanted.items():
            if name not in self.gateways:
                await self._start_gateway(config, name, key)

    async def _start_gateway(self, config: Config, name: str, key: tuple[Any, ...]) -> None:
        assert self.dispatcher is not None
        folder = self.own / "sources" / name
        folder.mkdir(parents=True, exist_ok=True)
        ready = asyncio.Event()
        ctx = SourceContext(
            name=name,
            config=key[0],
            routes=list(bind_routes(config, name, _Synced(self), self.dispatcher.route_hooks())),
            state_dir=folder,
            clock=SystemClock(),
            region=config.account.region,
            account_id=config.account.account_id,
            ready=ready.set,
            base_dir=Path(config.base_dir),
            reuse_port=True,
        )
        task = asyncio.ensure_future(kind_module("http").create(ctx).run())
        # Its routes call through `_Synced`: each call catches up with the primary first, as Invoke does.
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({task, waiter}, timeout=GATEWAY_START_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not ready.is_set():  # it failed (the port), or is slow: the primary serves this gateway alone
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            log.error(f"front process {self.index}: gateway {name} not served here: it did not start")
            return
        self.gateways[name] = _Gateway(key, ctx, task)

    async def _stop_gateway(self, name: str) -> None:
        gateway = self.gateways.pop(name)
        gateway.ctx.stopping.set()
        gateway.task.cancel()  # the source stops listening, lets its calls finish (drain_s), then closes
        with contextlib.suppress(BaseException):
            await gateway.task

    def hand_over(self, transport: asyncio.Transport, data: bytes) -> None:
        """Give the connection to the primary, once what was written to it has gone out."""
        transport.pause_reading()
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(0.005, self.hand_over, transport, data)
            return
        if transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        fd = os.dup(sock.fileno())
        try:
            send_connection(self.channel, fd, data)
        except OSError as e:
            log.error(f"front process {self.index}: a connection could not be handed over: {e}")
        finally:
            os.close(fd)
            transport.abort()

    # -- what goes back to the primary ----------------------------------------------------------------------

    def _soon(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def result(self, function: str, call: Call, result: InvocationResult) -> None:
        self._batch.calls.append((call, result))
        self._soon()

    def accepted(self, event: AcceptedEvent) -> None:
        self._batch.accepted.append(event)
        self._soon()

    def throttle(self, function: str, reason: str) -> None:
        self._batch.throttles.append((function, reason))
        self._soon()

    def answered(self, alias: bool, status: int) -> None:
        self._answers[alias, status] += 1  # sent counted: one counter increment per status in the primary
        self._soon()

    async def _report_holdings(self) -> None:
        sent: dict[str, tuple[int, int, int, int]] = {}
        while True:
            await asyncio.sleep(HOLDINGS_S)
            assert self.dispatcher is not None and self._writer is not None
            now = self.dispatcher.holdings()
            if now != sent:
                self._writer.write(frame(Holdings(now)))
                sent = now

    def flush(self) -> None:
        self._flush = None
        batch, self._batch = self._batch, Results()
        batch.answers = [(alias, status, n) for (alias, status), n in self._answers.items()]
        self._answers.clear()
        if self._writer is not None and (batch.calls or batch.accepted or batch.throttles or batch.answers):
            self._writer.write(frame(batch))

    # -- running --------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stops += 1
        if self._stops > 1 and self.dispatcher is not None:
            self._forced = asyncio.ensure_future(self.dispatcher.drain(0))
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader, self._writer = await asyncio.open_unix_connection(sock=self.control)
        listening = asyncio.ensure_future(self._listen(reader))
        state = await self._ask()
        config: Config = state.config
        own = self.own
        own.mkdir(parents=True, exist_ok=True)
        metrics = Metrics()
        dispatcher = self.dispatcher = Dispatcher(
            config,
            state_dir=own,
            metrics=metrics,
            accounting=SharedAccounting(self.ledger, config.account.concurrency),
        )
        dispatcher.provisioned_share = NOTHING
        dispatcher.on_result.append(self.result)
        dispatcher.on_throttle.append(self.throttle)
        dispatcher.on_accepted.append(self.accepted)
        await self.apply(state)
        await dispatcher.start()
        await self.serve_gateways(state)
        plane = ControlPlane(config=config, dispatcher=dispatcher, metrics=None, is_ready=lambda: True)
        self.front = ProcessFront(self, plane)
        server = config.server
        listener = await loop.create_server(
            self.front.protocol, server.host, self.port, reuse_address=True, reuse_port=True
        )
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        self._writer.write(frame(Ready()))
        holdings = asyncio.ensure_future(self._report_holdings())
        log.info("front process %d listening", self.index, extra={"fields": {"port": self.port}})
        await self._stop.wait()
        holdings.cancel()
        # No new connections from now on (the primary, or a router started after it, takes them); the calls
        # in flight get the drain's grace period.
        listener.close()
        if self._gateways_changing is not None:
            self._gateways_changing.cancel()
        await asyncio.gather(*(self._stop_gateway(name) for name in list(self.gateways)))
        await dispatcher.drain(0 if self._stops > 1 else config.limits.drain_grace_s)
        self.front.close()
        await dispatcher.aclose()
        self.flush()
        with contextlib.suppress(OSError):
            await self._writer.drain()
        self._writer.close()
        listening.cancel()
        self.ledger.close()


def main() -> int:
    from router.invoker.procs import become_subreaper
    from router.logs import setup_logging

    parser = argparse.ArgumentParser(prog="router.process_main")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--handover-fd", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-json", default="1")
    parser.add_argument("--loop", default="auto")
    args = parser.parse_args()
    setup_logging(args.log_level, args.log_json == "1")
    become_subreaper()
    with asyncio.Runner(loop_factory=event_loop_factory(args.loop)) as runner:
        runner.run(FrontProcess(args).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
