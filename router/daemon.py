"""The daemon: builds every part from the config, owns every task, stops in order.

`Daemon(config, backends=None)` is an async context manager. Entering it creates the state folder, the
metrics registry, the dispatcher (with the config's functions), the control plane and one supervised task
per source, all in one TaskGroup. `backends` (router/core/backends.py) are the implementations of the seams
a cluster shares: the async queue goes to the dispatcher, the inspection record to the control plane, the
source seams to every source; by default today's (`router.backends.local`). `await daemon.wait()` returns
once `request_stop()` was called (SIGTERM/SIGINT in `serve`).
Leaving it stops in order:

1. readiness goes false, sources are cancelled (each closes its listener/consumer and settles nothing more);
2. the dispatcher drains: no new calls, in-flight calls finish up to `limits.drain_grace_s`, queued async
   events stay on disk for the next start;
3. the control plane stops, then every instance and client is closed.

A second stop request skips the grace period. `reload(new_config)` applies a changed config without a
restart: functions are replaced through the dispatcher (new calls go to new instances), sources whose
settings or routes changed are restarted, removed ones stopped, added ones started. With
`invoker.hot_reload` (the default) a code watcher (router/control/codewatch.py) replaces a config function's
instances when its code folder changes; it is restarted with every reload. A source that fails is
logged and restarted with backoff; the daemon never goes down with a source or an instance.

Ports: at start, a port that cannot be bound (taken, not allowed, no such address) is a `StartError` naming
the part and the address (`sources.api: cannot listen on 127.0.0.1:8080: address already in use`); for a
source it stops the daemon and `wait()` raises it, so `serve` exits 2. A source started later (a reload)
or one that loses its listener after it was ready is retried with backoff instead, with one log line per
attempt: failures from the environment (OSError) never log a traceback, and any other failure logs its
traceback once, not on every repeat.

Event source mappings created through the Lambda API (router/control/mappings/) run as sources too, named
`esm-<uuid>`, each with its one route: the control plane asks for them through a port the daemon implements
(router/mapped_sources.py), and a reload of the config file leaves them alone. They do not hold /readyz back
(the API reports their State instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from router import backends as local_backends
from router.config import Config, RouteConfig, split_qualifier
from router.control.app import create_runner
from router.control.catalog import FunctionCatalog
from router.control.codewatch import CodeWatcher
from router.control.console.port import CONSOLE, ConsolePort
from router.control.console.reports import ReportLines
from router.control.front import Front
from router.control.mappings.port import MappedSource
from router.control.mappings.registry import MappingRegistry
from router.control.plane import ControlPlane
from router.core.backends import Backends, InvocationRecord
from router.core.clock import Clock, SystemClock
from router.core.errors import ConfigError
from router.core.ports import RoutePort, SourceContext
from router.core.retry import Backoff
from router.core.state_lock import StateDirInUse, StateLock
from router.core.writes import WriteJournal
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.history import History
from router.dispatch.ledger import Ledger, SharedAccounting
from router.dispatch.registry import journal_folder
from router.dispatch.routing import Calls, bind_routes
from router.mapped_sources import MappedSources, ResultNotes
from router.metrics import Metrics
from router.processes import FrontProcesses
from router.sources import kind_module

if TYPE_CHECKING:
    from router.cluster.node import ClusterNode

log = logging.getLogger("router.daemon")

# Sections a reload cannot change: the running ones are kept until the next restart.
RESTART_KEYS = ("server", "state_dir", "account", "billing", "limits", "inspect", "aws", "record", "invoker")
BIND_ERRNOS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)
# How long a start waits for the state_dir's lock: long enough for the keeper of a router that just died to
# clean up after it (router/invoker/leftovers.py), short enough to fail fast beside a running router.
STATE_LOCK_WAIT_S = 5.0


class StartError(Exception):
    """A part could not start (a port that cannot be bound). Its message is the one line `serve` prints."""


def listen_problem(part: str, host: str, port: int, e: OSError) -> str:
    reason = os.strerror(e.errno).lower() if e.errno else str(e)
    return f"{part}: cannot listen on {host}:{port}: {reason}"


def _is_bind_error(settings: Any, e: BaseException) -> bool:
    """An OSError of binding the source's own port (only sources with a `port` listen)."""
    return (
        isinstance(e, OSError) and e.errno in BIND_ERRNOS and isinstance(getattr(settings, "port", None), int)
    )


@dataclass
class SourceHandle:
    name: str
    settings: Any
    routes: list[RouteConfig]
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = 0.0  # wall clock of the current run's start (the console's source states)
    restarts: int = 0  # runs that ended or failed and were started again
    last_error: str | None = None
    last_error_at: float | None = None


class Daemon:
    def __init__(
        self, config: Config, *, clock: Clock | None = None, backends: Backends | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.state_dir = config.state_path
        inspect = config.inspect
        self.backends = backends or local_backends.local(
            self.state_dir,
            record=config.record,
            ring_size=inspect.ring_size,
            max_payload_bytes=inspect.max_payload_kb * 1024,
        )
        self.cluster: ClusterNode | None = None  # with a `cluster:` section (docs/cluster.md)
        if config.cluster is not None and backends is None:
            from router.cluster.node import ClusterNode

            self.cluster = ClusterNode(config)
            self.cluster.bind_metrics(self.metrics)
            self.backends = dataclasses.replace(
                self.backends, queue=self.cluster.queue, sources=self.cluster.sources()
            )
        self.dispatcher: Dispatcher | None = None
        self.catalog: FunctionCatalog | None = None
        self.sources: dict[str, SourceHandle] = {}
        self.contexts: dict[str, SourceContext] = {}  # running sources, for the inspection API's inject
        self.inspect: InvocationRecord | None = None
        self.control_port: int | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._runner: web.AppRunner | None = None
        self._front: Front | None = None
        self._listener: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._stops = 0
        self._forced = asyncio.Event()  # a second stop request: no more grace
        self._draining = False
        self._reload_lock = asyncio.Lock()
        self.start_error: StartError | None = None  # a source's port could not be bound at start
        self._code_watch: asyncio.Task[None] | None = None
        self.writes = WriteJournal(journal_folder(self.state_dir))  # loop protection (docs/loops.md)
        self.mappings: MappingRegistry | None = None
        self.mapped = MappedSources(
            start=self._start_mapped,
            stop=self._stop_source,
            handle=self.sources.get,
            lock=self._reload_lock,
            sources_dir=self.state_dir / "sources",
        )
        self._mapped_task: asyncio.Task[None] | None = None
        self._history_task: asyncio.Task[None] | None = None
        # server.processes > 1: the other front processes and the ledger that counts their calls
        # (router/processes.py).
        self.ledger: Ledger | None = None
        self.processes: FrontProcesses | None = None
        self._state_lock: StateLock | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> Daemon:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Before anything under state_dir is touched: one router per folder (router/core/state_lock.py).
        try:
            self._state_lock = await asyncio.to_thread(StateLock.acquire, self.state_dir, STATE_LOCK_WAIT_S)
        except StateDirInUse as e:
            raise StartError(str(e)) from None
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            await self._start()
        except BaseException as e:
            try:
                await self._shutdown()
                await self._tg.__aexit__(type(e), e, e.__traceback__)
            finally:
                self._state_lock.release()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._shutdown()
            assert self._tg is not None
            await self._tg.__aexit__(*exc)
        finally:
            if self._state_lock is not None:
                self._state_lock.release()

    async def _start(self) -> None:
        self.writes.reset()
        accounting = None
        processes = self.config.server.process_count
        if processes > 1:
            self.ledger = Ledger.create(processes)
            accounting = SharedAccounting(self.ledger, self.config.account.concurrency)
        self.dispatcher = Dispatcher(
            self.config,
            state_dir=self.state_dir,
            clock=self.clock,
            metrics=self.metrics,
            queue=self.backends.queue,
            accounting=accounting,
        )
        if self.ledger is not None:
            self.dispatcher.on_change.append(self.ledger.bump)
        if self.cluster is not None:  # no call is admitted before this node has joined
            await self.cluster.start(self.dispatcher.set_share, self.dispatcher.accounting.fits)
        # The catalog (control plane) merges the config's functions with those deployed through the API
        # (persisted under state_dir) and is the only caller of dispatcher.set_functions.
        self.catalog = FunctionCatalog(self.config, self.state_dir, self.dispatcher)
        await self.catalog.start()
        self._watch_code()
        await self.dispatcher.start()
        self.mappings = MappingRegistry(self.config, self.state_dir, self.catalog, self.mapped)
        plane = ControlPlane(
            config=self.config,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            is_ready=self.is_ready,
            catalog=self.catalog,
            extras={**await self._inspection(), CONSOLE: self._console(), **self._cluster_status()},
            mappings=self.mappings,
        )
        self._runner = create_runner(plane)
        await self._runner.setup()
        # The port is served by the front (router/control/front.py): Invoke on its lean path, the rest by
        # the app through the runner's server.
        assert self._runner.server is not None
        self._front = Front(plane, self._runner.server)
        server = self.config.server
        try:
            self._listener = await asyncio.get_running_loop().create_server(
                self._front.protocol, server.host, server.port, reuse_address=True, reuse_port=processes > 1
            )
        except OSError as e:
            raise StartError(listen_problem("server", server.host, server.port, e)) from None
        self.control_port = int(self._listener.sockets[0].getsockname()[1])
        if self.ledger is not None:
            self.processes = FrontProcesses(
                processes=processes,
                ledger=self.ledger,
                dispatcher=self.dispatcher,
                front=self._front,
                config=lambda: self.config,
                state_dir=self.state_dir,
                port=self.control_port,
            )
            try:
                await self.processes.start()
            except RuntimeError as e:
                raise StartError(str(e)) from None
        for name in self.config.sources:
            self._start_source(name, at_start=True)
        assert self._tg is not None
        self._mapped_task = self._tg.create_task(self.mapped.run(), name="event-source-mappings")
        await self.mappings.start()
        log.info(
            "router started",
            extra={
                "fields": {
                    "control_port": self.control_port,
                    "functions": len(self.config.functions),
                    "sources": len(self.config.sources),
                }
            },
        )

    def _console(self) -> ConsolePort:
        """The console's view of the daemon: the dispatcher's last hour (sampled by a task), the sources."""
        assert self.dispatcher is not None and self._tg is not None
        history, reports = History(self.dispatcher.stats, clock=self.clock), ReportLines()
        self.dispatcher.on_result.extend((history.record, reports.record))
        self._history_task = self._tg.create_task(history.run(), name="history")
        return ConsolePort(
            history=history,
            handles=lambda: self.sources,
            contexts=lambda: self.contexts,
            is_mapping=self.mapped.owns,
            reports=reports,
        )

    def _watch_code(self) -> None:
        """(Re)start hot reload of the config functions' code folders, as the current config says."""
        assert self._tg is not None and self.catalog is not None
        if self._code_watch is not None:
            self._code_watch.cancel()
            self._code_watch = None
        if self.config.invoker.hot_reload:
            watcher = CodeWatcher(self.catalog)
            self._code_watch = self._tg.create_task(self._run_code_watch(watcher), name="code-watch")

    @staticmethod
    async def _run_code_watch(watcher: CodeWatcher) -> None:
        try:
            await watcher.run()
        except Exception:  # hot reload is a convenience: the daemon runs on without it
            log.exception("hot reload: the code watcher failed; code changes now need a reload")

    async def _inspection(self) -> dict[str, Any]:
        """The inspection record, fed by the dispatcher, for the control plane (none when inspect is off)."""
        from router.control.plane import INSPECTION, Inspection

        settings = self.config.inspect
        if not settings.enabled or self.dispatcher is None:
            return {}
        store = self.backends.record
        await store.open()
        store.attach(self.dispatcher)
        bind = getattr(store, "bind_metrics", None)  # the durable record's own counters
        if bind is not None:
            bind(self.metrics)
        self.inspect = store
        inspection = Inspection(store=store, sources=lambda: self.contexts, config=lambda: self.config)
        return {INSPECTION: inspection}

    def _cluster_status(self) -> dict[str, Any]:
        from router.control.plane import CLUSTER

        return {CLUSTER: self.cluster.status} if self.cluster is not None else {}

    def is_ready(self) -> bool:
        if self.cluster is not None and not self.cluster.joined():
            return False
        if self.processes is not None and not self.processes.started:
            return False  # not before every front process listens
        return not self._draining and all(
            h.ready.is_set() for n, h in self.sources.items() if not self.mapped.owns(n)
        )

    def request_stop(self) -> None:
        self._stops += 1
        if self._stops > 1:
            log.warning("second stop request: skipping the drain grace period")
            self._forced.set()
            if self.processes is not None:
                self.processes.force()
        self._stop.set()

    async def wait(self) -> None:
        """Until a stop is requested; raises StartError when a source could not bind its port at start."""
        await self._stop.wait()
        if self.start_error is not None:
            raise self.start_error

    async def _shutdown(self) -> None:
        if self._draining:
            return
        self._draining = True
        if self._code_watch is not None:
            self._code_watch.cancel()
        log.info("stopping: sources")
        if self._mapped_task is not None:
            self._mapped_task.cancel()
        if self._history_task is not None:
            self._history_task.cancel()
        await asyncio.gather(*(self._stop_source(n) for n in list(self.sources)))
        # The front processes drain their calls meanwhile; their last results are recorded here.
        others = asyncio.ensure_future(self.processes.stop()) if self.processes is not None else None
        if self.dispatcher is not None:
            grace = 0.0 if self._stops > 1 else self.config.limits.drain_grace_s
            log.info("stopping: draining in-flight calls", extra={"fields": {"grace_s": grace}})
            await self._drain(grace)
        if others is not None:
            await others
        if self.inspect is not None:
            self.inspect.close()  # long polls of the inspection API return now
        if self._listener is not None:
            self._listener.close()
        if self._front is not None:
            self._front.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.dispatcher is not None:
            await self.dispatcher.aclose()
        if self.inspect is not None:
            await self.inspect.aclose()  # what the last calls recorded is written
        if self.cluster is not None:  # after the drain: the others take over this node's share now
            await self.cluster.aclose()
        if self.ledger is not None:
            self.ledger.remove()
        log.info("stopped")

    async def _drain(self, grace: float) -> None:
        """Drain the dispatcher; a second stop request during the grace period cancels what still runs."""
        assert self.dispatcher is not None
        drain = asyncio.ensure_future(self.dispatcher.drain(grace))
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            await asyncio.wait({drain, forced}, return_when=asyncio.FIRST_COMPLETED)
            if not drain.done():
                await self.dispatcher.drain(0)  # cancels in-flight calls now; the first drain then ends
            await drain
        finally:
            forced.cancel()

    # -- sources --------------------------------------------------------------------------------------

    def _routes_for(self, config: Config, name: str) -> list[RouteConfig]:
        return [r for r in config.routes if r.source == name]

    def _start_source(self, name: str, *, at_start: bool = False) -> None:
        settings = self.config.sources[name]
        # Routes are bound now, from the config this source starts with: a reload may replace self.config
        # before the task first runs.
        routes = bind_routes(self.config, name, self._calls(settings))
        self._launch(
            SourceHandle(name=name, settings=settings, routes=self._routes_for(self.config, name)),
            routes,
            at_start,
        )

    def _start_mapped(self, name: str, mapped: MappedSource) -> None:
        """Start the source of an event source mapping: its settings and its one route."""
        config = msgspec.structs.replace(self.config, sources={name: mapped.settings}, routes=[mapped.route])
        routes = bind_routes(config, name, self._calls(mapped.settings))
        self._launch(SourceHandle(name=name, settings=mapped.settings, routes=[mapped.route]), routes)

    def _launch(self, handle: SourceHandle, routes: Sequence[RoutePort], at_start: bool = False) -> None:
        assert self._tg is not None
        self.sources[handle.name] = handle
        task = self._supervise(handle, routes, at_start)
        handle.task = self._tg.create_task(task, name=f"source:{handle.name}")

    def _calls(self, settings: Any) -> Calls:
        """The dispatcher, noting each call's outcome for sources that are event source mappings on Lambda."""
        assert self.dispatcher is not None
        traits = settings.traits
        if traits.waits_for_result and (traits.stream or traits.batched):
            return ResultNotes(self.dispatcher, self.mapped.notes)
        return self.dispatcher

    async def _stop_source(self, name: str) -> None:
        handle = self.sources.pop(name, None)
        ctx = self.contexts.pop(name, None)
        if ctx is not None:
            ctx.stopping.set()
        if handle is None or handle.task is None:
            return
        handle.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handle.task

    async def _supervise(self, handle: SourceHandle, routes: Sequence[RoutePort], at_start: bool) -> None:
        """Run one source; on failure log it, close it and start it again with backoff (see the module
        docstring for a port that cannot be bound)."""
        # A source that ran well for a minute before failing is restarted at the shortest delay again.
        backoff = Backoff(0.5, 30.0, healthy_s=60.0)
        kind = handle.settings.kind_name()
        ctx = self._source_context(handle, routes)
        self.contexts[handle.name] = ctx
        last_failure = ""
        while True:
            handle.started_at = self.clock.time()
            try:
                await self._run_source(kind, ctx)
                delay = backoff.next(self.clock.monotonic())
                fields = {"source": handle.name, "retry_in_s": delay}
                log.warning("source ended; restarting", extra={"fields": fields})
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if at_start and not handle.ready.is_set() and _is_bind_error(handle.settings, e):
                    assert isinstance(e, OSError)
                    settings = handle.settings
                    problem = listen_problem(f"sources.{handle.name}", settings.host, settings.port, e)
                    self.start_error = StartError(problem)
                    self.request_stop()
                    return
                delay = backoff.next(self.clock.monotonic())
                last_failure = self._log_failure(handle, e, delay, last_failure)
                handle.last_error, handle.last_error_at = last_failure, self.clock.time()
            handle.restarts += 1
            await self.clock.sleep(delay)

    @staticmethod
    def _log_failure(handle: SourceHandle, e: Exception, retry_in_s: float, last: str) -> str:
        """One line per failed attempt; a traceback only for the first of a run of the same non-OSError."""
        if isinstance(e, OSError) and _is_bind_error(handle.settings, e):
            settings = handle.settings
            text = listen_problem(f"sources.{handle.name}", settings.host, settings.port, e)
        else:
            text = f"{type(e).__name__}: {e}"
        traceback = not isinstance(e, OSError) and text != last
        log.error(
            f"source failed; restarting in {retry_in_s:g}s: {text}",
            exc_info=e if traceback else None,
            extra={"fields": {"source": handle.name, "retry_in_s": retry_in_s}},
        )
        return text

    def _source_context(self, handle: SourceHandle, routes: Sequence[RoutePort]) -> SourceContext:
        assert self.dispatcher is not None
        state = self.state_dir / "sources" / handle.name
        state.mkdir(parents=True, exist_ok=True)
        return SourceContext(
            name=handle.name,
            config=handle.settings,
            routes=list(routes),
            state_dir=state,
            clock=self.clock,
            region=self.config.account.region,
            account_id=self.config.account.account_id,
            metrics=self.metrics,
            ready=handle.ready.set,
            base_dir=Path(self.config.base_dir),
            settled=getattr(self.dispatcher, "settled", None),
            backends=self.backends.sources,
            writes=self.writes,
            reuse_port=self.config.server.process_count > 1,  # front processes serve the gateway too
        )

    @staticmethod
    async def _run_source(kind: str, ctx: SourceContext) -> None:
        source = kind_module(kind).create(ctx)
        try:
            await source.run()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(source.aclose())

    # -- reload ---------------------------------------------------------------------------------------

    async def reload(self, new: Config) -> None:
        """Apply a validated config. Server, state_dir and account settings need a restart (logged)."""
        async with self._reload_lock:
            old = self.config
            for key in RESTART_KEYS:
                if getattr(old, key) != getattr(new, key):
                    log.warning(f"reload: '{key}' changed; it takes effect at the next restart")
            new = _keep(new, old, (*RESTART_KEYS, "base_dir"))
            self.config = new
            assert self.catalog is not None and self.mappings is not None
            await self.catalog.reload(new)  # config functions replaced, API-deployed ones kept
            self._watch_code()  # the folders to watch may have changed
            await self.mappings.reload(new)  # the `aws:` section may have moved; mappings are kept
            assert self.dispatcher is not None
            self.dispatcher.configure_faults(new)  # faults set at run time end with a reload
            # Routes bind a function by name; only its event format is baked into the bound route.
            reformatted = {
                n
                for n in new.functions
                if n in old.functions and old.functions[n].event_format != new.functions[n].event_format
            }
            for name in [n for n in self.sources if not self.mapped.owns(n)]:
                if name not in new.sources:
                    log.info("reload: source removed", extra={"fields": {"source": name}})
                    await self._stop_source(name)
                elif (
                    new.sources[name] != old.sources[name]
                    or self._routes_for(new, name) != self._routes_for(old, name)
                    or any(
                        split_qualifier(f)[0] in reformatted
                        for r in self._routes_for(new, name)
                        for f in r.functions
                    )
                ):
                    log.info("reload: source changed", extra={"fields": {"source": name}})
                    await self._stop_source(name)
                    self._start_source(name)
            for name in new.sources:
                if name not in self.sources:
                    log.info("reload: source added", extra={"fields": {"source": name}})
                    self._start_source(name)
            log.info(
                "reload: applied",
                extra={"fields": {"functions": len(new.functions), "sources": len(new.sources)}},
            )

    async def reload_from(self, path: str | Path) -> bool:
        """SIGHUP: load and check the file; on problems log every one and keep the running config."""
        from router.validate import load_config

        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as e:
            for p in e.problems:
                log.error(f"reload rejected: {p}")
            log.error("reload rejected: keeping the running config")
            return False
        await self.reload(new)
        return True


def _keep(new: Config, old: Config, keys: tuple[str, ...]) -> Config:
    return msgspec.structs.replace(new, **{k: getattr(old, k) for k in keys})
