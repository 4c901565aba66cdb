"""Invoker workers, the daemon's side: instances run in worker processes, behind proxies that the pools use
as instances (`invoker.workers: N`; router/invoker/worker.py is the worker's side and the message list).

* `WorkerFactory(config, count)` is an instance factory like InvokerFactory: `await factory(spec,
  init_type, request_id)` starts an instance in the worker that has the fewest live instances and returns a
  `RemoteInstance`; it raises InitFailed (with the call's result) as Instance.start does, and RuntimeError
  when the launch failed for a system reason (the pool's DispatchError). `prepare(specs)` starts the
  workers (and their zygotes) ahead of the first call; `aclose()` ends them, each stopping its instances.
* `RemoteInstance` is what the pool uses of an instance: `alive`, `await invoke(request)`, `await stop()`.
  `alive` turns False with a result whose instance did not survive its call, with a Died message, or when its
  worker is lost. Cancelling `invoke` kills the instance (Cancel), as cancelling a local one does.
* Nothing the daemon promises moves: concurrency is still taken by the dispatcher before a call reaches a
  pool, the pools still choose the instance (warm reuse, provisioned first, cold starts, reaping), results
  still come back whole (metering, REPORT lines and limits are the invoker's own code, in the worker).
* A worker that dies: its calls in flight raise WorkerLost (the pool reports "instance failed"), its
  instances count as dead, and the next launch starts a fresh worker in its place.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import subprocess
import sys
from typing import Any

import msgspec

from router.config import Config
from router.core.errors import FUNCTION_UNHANDLED, RUNTIME_EXIT_ERROR
from router.core.results import InvocationResult
from router.core.spawned import SPAWNED
from router.invoker import outcomes
from router.invoker.types import FunctionSpec, InitFailed, InvokeRequest
from router.invoker.worker import (
    TO_DAEMON,
    Cancel,
    Channel,
    Died,
    InitFailedMsg,
    Invoke,
    LaunchError,
    Prepare,
    Result,
    Settings,
    Start,
    Started,
    Stop,
)
from router.logs import current_format

log = logging.getLogger("router.invoker.workers")

STOP_TIMEOUT_S = 15.0


class WorkerLost(Exception):
    """The worker process running an instance ended."""


class WorkerProcess:
    def __init__(self, index: int, settings: Settings) -> None:
        self.index = index
        self._settings = settings
        self._loop = asyncio.get_running_loop()
        self.instances: dict[int, RemoteInstance] = {}
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.channel = Channel(self._received, self._lost)
        self.alive = False
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            settings = msgspec.json.encode(self._settings).decode()
            argv = [sys.executable, "-m", "router.invoker.worker", str(theirs.fileno()), settings]
            self.proc = _spawn(argv, theirs.fileno())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        await self._loop.create_unix_connection(lambda: self.channel, sock=ours)
        self.alive = True
        log.info("invoker worker %d started (pid %d)", self.index, self.proc.pid)

    @property
    def live_instances(self) -> int:
        return sum(1 for i in self.instances.values() if i.alive)

    def request(self, id: int, message: Any) -> asyncio.Future[Any]:
        """Send `message` about instance `id`; the future resolves with the worker's answer."""
        if not self.alive:
            raise WorkerLost(f"invoker worker {self.index} is gone")
        future = self.pending[id] = self._loop.create_future()
        self.channel.send(message)
        return future

    def _received(self, body: bytes) -> None:
        message = TO_DAEMON.decode(body)
        if isinstance(message, Died):
            instance = self.instances.get(message.id)
            if instance is not None:
                instance.alive = False
            return
        if isinstance(message, Result):
            instance = self.instances.get(message.id)
            if instance is not None:
                instance.alive = message.alive
        future = self.pending.pop(message.id, None)
        if future is not None and not future.done():
            future.set_result(message)

    def _lost(self) -> None:
        if self.alive:  # not closed by aclose: the process died
            log.error("invoker worker %d ended; its instances are gone", self.index)
        self.alive = False
        for instance in self.instances.values():
            instance.alive = False
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerLost(f"invoker worker {self.index} ended"))

    async def aclose(self) -> None:
        """Close the socket: the worker stops its instances and exits (killed if it does not in time)."""
        self.alive = False
        transport = self.channel.transport
        if transport is not None:
            transport.close()
        proc = self.proc
        if proc is not None:
            try:
                await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
            SPAWNED.discard(proc.pid)


def _spawn(argv: list[str], fd: int) -> subprocess.Popen[bytes]:
    # In the daemon's process group (a worker ignores SIGTERM and SIGINT; it ends when its socket closes).
    popen = subprocess.Popen(argv, pass_fds=[fd], stdin=subprocess.DEVNULL)
    SPAWNED.add(popen.pid)  # not a stray for the orphan sweep (router/core/spawned.py)
    return popen


class RemoteInstance:
    def __init__(self, worker: WorkerProcess, id: int, spec: FunctionSpec, pid: int | None) -> None:
        self._worker = worker
        self._id = id
        self.spec = spec
        self.pid = pid
        self.alive = True

    async def invoke(self, request: InvokeRequest) -> InvocationResult:
        if not self.alive:
            return _dead_result(request, self.spec)
        answer = self._worker.request(self._id, Invoke(self._id, request))
        try:
            result: Result = await answer
        except asyncio.CancelledError:
            # As with a local instance: a call cancelled mid-way leaves the instance unknown; it is killed.
            self.alive = False
            if self._worker.alive:
                self._worker.pending.pop(self._id, None)
                self._worker.channel.send(Cancel(self._id))
            raise
        return result.result

    async def stop(self) -> None:
        self.alive = False
        worker = self._worker
        if not worker.alive or worker.instances.pop(self._id, None) is None:
            return
        try:
            await worker.request(self._id, Stop(self._id))
        except WorkerLost:
            pass

    def __repr__(self) -> str:
        return f"<RemoteInstance {self.spec.name} pid={self.pid} worker={self._worker.index}>"


def _stop_unwanted(worker: WorkerProcess, id: int, started: asyncio.Future[Any]) -> None:
    """An instance whose launch was given up on meanwhile: stop it (its Stopped answer goes unread)."""
    if started.cancelled() or started.exception() is not None:
        return
    if isinstance(started.result(), Started) and worker.alive:
        worker.channel.send(Stop(id))


def _dead_result(request: InvokeRequest, spec: FunctionSpec) -> InvocationResult:
    return InvocationResult(
        request_id=request.request_id,
        payload=outcomes.exit_payload(request.request_id, None),
        function_error=FUNCTION_UNHANDLED,
        error_type=RUNTIME_EXIT_ERROR,
        memory_mb=spec.memory_mb,
    )


class WorkerFactory:
    def __init__(self, config: Config, count: int) -> None:
        level, json_format = current_format()
        self._settings = Settings(
            billing=config.billing,
            python_zygote=config.invoker.python_zygote,
            batch=config.invoker.batch_scheduling,
            log_calls=config.invoker.log_calls,
            log_level=level,
            log_json=json_format,
            uvloop=type(asyncio.get_running_loop()).__module__.startswith("uvloop"),
        )
        self._workers: list[WorkerProcess | None] = [None] * count
        self._ids = itertools.count(1)
        self._starting: dict[int, asyncio.Task[WorkerProcess]] = {}
        self._specs: list[FunctionSpec] = []

    async def __call__(self, spec: FunctionSpec, init_type: str, request_id: str) -> RemoteInstance:
        worker = await self._pick()
        id = next(self._ids)
        started = worker.request(id, Start(id, spec, init_type, request_id))
        try:
            answer = await asyncio.shield(started)
        except asyncio.CancelledError:
            # The launch goes on in the worker: the instance is stopped as soon as it is there.
            started.add_done_callback(lambda f: _stop_unwanted(worker, id, f))
            raise
        if isinstance(answer, InitFailedMsg):
            raise InitFailed(answer.result)
        if isinstance(answer, LaunchError):
            raise RuntimeError(answer.message)
        assert isinstance(answer, Started)
        instance = worker.instances[id] = RemoteInstance(worker, id, spec, answer.pid)
        return instance

    async def _pick(self) -> WorkerProcess:
        """The live worker with the fewest live instances. Missing or dead workers are (re)started meanwhile;
        when none is live yet, the first one to come up is taken."""
        starting = [self._start(i) for i, w in enumerate(self._workers) if w is None or not w.alive]
        live = [w for w in self._workers if w is not None and w.alive]
        if live:
            return min(live, key=lambda w: w.live_instances)
        return await asyncio.shield(starting[0])

    def _start(self, index: int) -> asyncio.Task[WorkerProcess]:
        task = self._starting.get(index)
        if task is None:
            task = self._starting[index] = asyncio.ensure_future(self._launch(index))
            task.add_done_callback(lambda t: self._started(index, t))
        return task

    def _started(self, index: int, task: asyncio.Task[WorkerProcess]) -> None:
        self._starting.pop(index, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("invoker worker %d could not be started: %r", index, task.exception())

    async def _launch(self, index: int) -> WorkerProcess:
        old = self._workers[index]
        if old is not None:
            await old.aclose()
        worker = WorkerProcess(index, self._settings)
        await worker.start()
        self._workers[index] = worker
        if self._specs:
            worker.channel.send(Prepare(self._specs))
        return worker

    def prepare(self, specs: list[FunctionSpec]) -> None:
        """The functions to come: every worker is started now (with its zygote, if they want one)."""
        self._specs = list(specs)
        for index, worker in enumerate(self._workers):
            if worker is not None and worker.alive:
                worker.channel.send(Prepare(self._specs))
            else:
                self._start(index)

    async def aclose(self) -> None:
        starting = list(self._starting.values())
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        await asyncio.gather(*(w.aclose() for w in self._workers if w is not None))
