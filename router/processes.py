"""Front processes: the Invoke API (and the config's HTTP gateways) served by `server.processes` processes on
the same ports, the primary and `processes - 1` others (router/process_main.py), so that synchronous calls
use more than one core.

How the work is split:

* Every process listens on the control port with SO_REUSEPORT; the kernel spreads connections over them.
* A front process answers synchronous Invoke itself, on the lean path of router/control/front.py, with
  instances of its own. It reads the functions from the primary's state_dir (read only) and the config from
  the primary, and keeps its invoker's own state (cgroups, the keeper of its instances) under
  `<state_dir>/processes/<n>/`.
* Everything else on a connection (the management and inspection APIs, Event and DryRun invokes, the
  console, calls of a function with provisioned concurrency or injected faults, a name it does not know) is
  handed to the primary with the connection itself: its file descriptor and the bytes not yet answered go
  over a Unix socket (SCM_RIGHTS) and the primary serves it from there on as if it had accepted it.
* Concurrency is counted across processes in a shared ledger (router/dispatch/ledger.py): account and
  reserved concurrency stay exact, a throttle is a throttle wherever the call lands.
* The primary bumps the ledger's generation whenever functions, limits or faults change; a front process
  asks for the primary's state (`State`) and re-reads the functions before its next call.
* Each finished call goes back to the primary in batches (`Results`): the primary counts it in its
  metrics, the invocation record, `router tail` and the console as one of its own. Each second a front
  process also reports its calls in flight and instances by function (`Holdings`), which the primary adds
  into its stats (the gauges, the console).
* A front process that dies is replaced (its ledger row zeroed first: its calls died with it); it dies
  with the primary (its control socket closes), and its instances with it (its keeper).

Messages on the control socket are msgpack, each with a 4-byte big-endian length.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from router.config import Config
from router.control.front import Front
from router.core.backends import AcceptedEvent
from router.core.results import InvocationResult
from router.core.shares import to_wire
from router.core.spawned import SPAWNED
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.ledger import Ledger
from router.dispatch.stats import Call
from router.logs import JsonFormatter

log = logging.getLogger("router.processes")

CHUNK = 32 * 1024  # hand-over bytes per packet
LENGTH = struct.Struct("!I")
START_TIMEOUT_S = 60.0
RESPAWN_S = (1.0, 30.0)  # first wait before replacing a dead front process, and the most


class Ready(msgspec.Struct, tag=True):
    """Front process -> primary: listening."""


class SyncAsk(msgspec.Struct, tag=True):
    """Front process -> primary: send me your state."""


class State(msgspec.Struct, tag=True):
    """Primary -> front process: the config in force and the functions whose calls the primary keeps."""

    generation: int
    config: Config
    faulted: list[str]
    share: list[Any]  # in a cluster, this node's share of the limits (router.core.shares.to_wire)
    faulted_sources: list[str] = []  # their gateways are served by the primary alone


class Results(msgspec.Struct, tag=True):
    """Front process -> primary: finished calls, throttles and Invoke API answers since the last batch."""

    calls: list[tuple[Call, InvocationResult]] = []
    accepted: list[AcceptedEvent] = []  # events the front process's gateways delivered (the record's)
    throttles: list[tuple[str, str]] = []  # (function, reason)
    answers: list[tuple[bool, int, int]] = []  # (alias route?, status, how many)


class Holdings(msgspec.Struct, tag=True):
    """Front process -> primary, each second when it changed: its calls in flight and instances by function
    (calls in flight, idle, busy, launching), which the primary adds into its stats (metrics, console)."""

    counts: dict[str, tuple[int, int, int, int]]


Message = Ready | SyncAsk | State | Results | Holdings
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def frame(message: Message) -> bytes:
    body = _encoder.encode(message)
    return LENGTH.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """The next message, or None at the end of the stream."""
    try:
        head = await reader.readexactly(LENGTH.size)
        return _decoder.decode(await reader.readexactly(LENGTH.unpack(head)[0]))
    except asyncio.IncompleteReadError:
        return None


def send_connection(channel: socket.socket, fd: int, data: bytes) -> None:
    """Hand a connection over: its descriptor with the length of `data`, then `data` in packets."""
    first = struct.pack("!Q", len(data)) + data[:CHUNK]
    socket.send_fds(channel, [first], [fd])
    for at in range(CHUNK, len(data), CHUNK):
        channel.send(data[at : at + CHUNK])


class _Child:
    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.handover: socket.socket | None = None
        self.ready = asyncio.Event()
        self.pending: tuple[int, int, bytearray] | None = None  # a hand-over being received: fd, length, data
        self.holdings: dict[str, tuple[int, int, int, int]] = {}
        self.failures = 0


class FrontProcesses:
    """The primary's side: starts the front processes, answers them, adopts their hand-overs."""

    def __init__(
        self,
        *,
        processes: int,
        ledger: Ledger,
        dispatcher: Dispatcher,
        front: Front,
        config: Callable[[], Config],
        state_dir: Path,
        port: int,
    ) -> None:
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.front = front
        self.config = config
        self.state_dir = state_dir
        self.port = port
        self.children = [_Child(i) for i in range(1, processes)]
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._stopped = asyncio.Event()
        self.started = False  # every front process listened once (the router is ready from then on)
        self._failed = asyncio.Event()  # one exited while the router was starting: it cannot start

    async def start(self) -> None:
        for child in self.children:
            self._spawn(child)
        waits = {asyncio.ensure_future(c.ready.wait()) for c in self.children}
        failed = asyncio.ensure_future(self._failed.wait())
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        while waits and not failed.done():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            done, _ = await asyncio.wait({*waits, failed}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            waits -= done
        for w in (*waits, failed):
            w.cancel()
        late = [c.index for c in self.children if not c.ready.is_set()]
        if late:
            raise RuntimeError(f"front process(es) {late} did not start; see the log above")
        self.started = True
        log.info("front processes started", extra={"fields": {"processes": len(self.children) + 1}})

    def _spawn(self, child: _Child) -> None:
        task = asyncio.ensure_future(self._run(child))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, child: _Child) -> None:
        """Run one front process to its end; replace it if it died while the router runs."""
        loop = asyncio.get_running_loop()
        control, control_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        handover, handover_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = logging.getLogger()
        json_logs = any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
        uvloop = type(loop).__module__.startswith("uvloop")
        try:
            child.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "router.process_main",
                "--index", str(child.index), "--ledger", str(self.ledger.path),
                "--control-fd", str(control_child.fileno()), "--handover-fd", str(handover_child.fileno()),
                "--state-dir", str(self.state_dir), "--port", str(self.port),
                "--log-level", logging.getLevelName(root.level).lower(),
                "--log-json", "1" if json_logs else "0",
                "--loop", "uvloop" if uvloop else "asyncio",
                pass_fds=(control_child.fileno(), handover_child.fileno()),
            )  # fmt: skip
            SPAWNED.add(child.process.pid)  # not a stray for the orphan sweep (router/core/spawned.py)
        finally:
            control_child.close()
            handover_child.close()
        reader, child.writer = await asyncio.open_unix_connection(sock=control)
        handover.setblocking(False)
        child.handover = handover
        loop.add_reader(handover.fileno(), self._receive, child)
        try:
            while (message := await read_message(reader)) is not None:
                self._handle(child, message)
        except (OSError, msgspec.DecodeError) as e:
            log.error(f"front process {child.index}: control channel failed: {e}")
        finally:
            loop.remove_reader(handover.fileno())
            handover.close()
            child.writer.close()
            code = await child.process.wait()
            SPAWNED.discard(child.process.pid)
            self.ledger.clear(child.index)  # the calls it held ended with it
            child.holdings = {}
            self._sum_holdings()
            if child.pending is not None:
                os.close(child.pending[0])
                child.pending = None
        if self._stopping:
            return
        if not self.started:
            log.error(f"front process {child.index} exited while starting (code {code})")
            self._failed.set()
            return
        child.failures += 1
        wait = min(RESPAWN_S[0] * 2 ** (child.failures - 1), RESPAWN_S[1])
        log.error(
            f"front process {child.index} exited (code {code}); starting another in {wait:g}s",
            extra={"fields": {"process": child.index, "code": code}},
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), wait)
        if not self._stopping:
            child.ready.clear()
            self._spawn(child)

    def _handle(self, child: _Child, message: Message) -> None:
        if isinstance(message, Results):
            for call, result in message.calls:
                self.dispatcher.record_remote(call, result)
            for event in message.accepted:
                self.dispatcher.accepted_remote(event)
            for function, reason in message.throttles:
                self.dispatcher.throttled(function, reason)
            for alias, status, count in message.answers:
                self.front.count(alias, status, count)
        elif isinstance(message, SyncAsk):
            generation = self.ledger.generation  # read first: a change while answering shows as newer
            faults = self.dispatcher.faults
            share = to_wire(self.dispatcher.accounting.share)
            state = State(generation, self.config(), faults.functions(), share, faults.sources())
            assert child.writer is not None
            child.writer.write(frame(state))
        elif isinstance(message, Holdings):
            child.holdings = message.counts
            self._sum_holdings()
        elif isinstance(message, Ready):
            child.ready.set()
            child.failures = 0

    def _sum_holdings(self) -> None:
        total: dict[str, tuple[int, int, int, int]] = {}
        for child in self.children:
            for name, counts in child.holdings.items():
                before = total.get(name, (0, 0, 0, 0))
                total[name] = (
                    before[0] + counts[0],
                    before[1] + counts[1],
                    before[2] + counts[2],
                    before[3] + counts[3],
                )
        self.dispatcher.elsewhere = total

    def _receive(self, child: _Child) -> None:
        """Hand-over packets from a front process: a connection's descriptor, then its unanswered bytes."""
        channel = child.handover
        assert channel is not None
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(channel, 8 + CHUNK, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.error(f"front process {child.index}: hand-over channel failed: {e}")
                return
            if not data and not fds:
                return
            if fds:
                (length,) = struct.unpack("!Q", data[:8])
                child.pending = (fds[0], length, bytearray(data[8:]))
            elif child.pending is not None:
                child.pending[2].extend(data)
            if child.pending is not None and len(child.pending[2]) >= child.pending[1]:
                fd, _, buffered = child.pending
                child.pending = None
                task = asyncio.ensure_future(self._adopt(fd, bytes(buffered)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _adopt(self, fd: int, data: bytes) -> None:
        """Serve a handed-over connection here, from the bytes the front process had read."""
        sock = socket.socket(fileno=fd)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: self.front.protocol(data), sock)
        except OSError as e:
            log.warning(f"a handed-over connection could not be served: {e}")
            sock.close()

    async def stop(self) -> None:
        """Stop the front processes: each drains its calls (limits.drain_grace_s) and exits."""
        self._stopping = True
        self._stopped.set()
        for child in self.children:
            if child.process is not None and child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.terminate()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def force(self) -> None:
        """A second stop request: the front processes skip their grace period too."""
        for child in self.children:
            if child.process is not None and child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.terminate()
