"""An invoker worker: a process of its own that runs instances for the daemon (`invoker.workers`).

Why: one Python thread serving every call is the router's ceiling. With workers, the daemon keeps what must
be one (the Invoke API and the sources, concurrency accounting, pools and their choice of instance, the async
queue, metrics, the inspection record) and each worker runs its share of the instances: their Runtime API
servers, launches, limits, metering and log lines, the per-call work that is most of the CPU. The instances
are the invoker's own `Instance`s, unchanged, so every limit and measure is the same as in the daemon.

The daemon (router/invoker/workers.py) starts `python -m router.invoker.worker FD SETTINGS` with one end of a
Unix socket pair as FD. Messages both ways are msgpack, each framed by a 4-byte big-endian length:

    daemon -> worker   Start(id, spec, init_type, request_id)   Invoke(id, request)   Cancel(id)
                       Stop(id)   Prepare(specs)
    worker -> daemon   Started(id, pid)   InitFailed(id, result)   LaunchError(id, message)
                       Result(id, result, alive)   Stopped(id)   Died(id)

`id` names an instance (the daemon picks it). Every Start is answered by Started, InitFailed or LaunchError;
every Invoke by a Result (`alive`: whether the instance can take another call), unless a Cancel came first
(then the instance is killed, as a cancelled `Instance.invoke` does, and Died follows); every Stop by
Stopped. Died says an instance ended outside a call. When the socket closes (the daemon is gone), the worker
stops every instance and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from router.config import BillingConfig
from router.core.results import InvocationResult
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec, InitFailed, InvokeRequest
from router.invoker.zygote import Zygotes

log = logging.getLogger("router.invoker.worker")

HEADER = struct.Struct(">I")


class Settings(msgspec.Struct, kw_only=True):
    billing: BillingConfig
    python_zygote: bool = True
    batch: bool = True
    log_calls: bool = True
    log_level: str = "info"
    log_json: bool = True
    uvloop: bool = False  # the daemon's own loop


class Start(msgspec.Struct, tag=True):
    id: int
    spec: FunctionSpec
    init_type: str
    request_id: str


class Invoke(msgspec.Struct, tag=True):
    id: int
    request: InvokeRequest


class Cancel(msgspec.Struct, tag=True):
    id: int


class Stop(msgspec.Struct, tag=True):
    id: int


class Prepare(msgspec.Struct, tag=True):
    specs: list[FunctionSpec]


class Started(msgspec.Struct, tag=True):
    id: int
    pid: int | None


class InitFailedMsg(msgspec.Struct, tag="InitFailed"):
    id: int
    result: InvocationResult


class LaunchError(msgspec.Struct, tag=True):
    id: int
    message: str


class Result(msgspec.Struct, tag=True):
    id: int
    result: InvocationResult
    alive: bool


class Stopped(msgspec.Struct, tag=True):
    id: int


class Died(msgspec.Struct, tag=True):
    id: int


ToWorker = Start | Invoke | Cancel | Stop | Prepare
ToDaemon = Started | InitFailedMsg | LaunchError | Result | Stopped | Died


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ is Path:
        return Path(obj)
    raise NotImplementedError(f"cannot decode {typ}")


ENCODE = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
TO_WORKER = msgspec.msgpack.Decoder(ToWorker, dec_hook=_dec_hook)
TO_DAEMON = msgspec.msgpack.Decoder(ToDaemon, dec_hook=_dec_hook)


class Channel(asyncio.Protocol):
    """Length-framed msgpack messages over a stream; `on_message(bytes)` gets each frame's body."""

    def __init__(self, on_message: Callable[[bytes], None], on_close: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_close = on_close
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        start = 0
        while len(buf) - start >= 4:
            (size,) = HEADER.unpack_from(buf, start)
            if len(buf) - start - 4 < size:
                break
            body = bytes(buf[start + 4 : start + 4 + size])
            start += 4 + size
            self._on_message(body)
        if start:
            del buf[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._on_close()

    def send(self, message: Any) -> None:
        if self.transport is not None:
            body = ENCODE(message)
            self.transport.write(HEADER.pack(len(body)) + body)


class Worker:
    """The worker's side: instances by id, and the calls running on them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.zygotes = Zygotes(enabled=settings.python_zygote)
        self.instances: dict[int, Instance] = {}
        self.calls: dict[int, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.channel = Channel(self._received, self._closed)
        self.done = asyncio.get_running_loop().create_future()

    def _received(self, body: bytes) -> None:
        message = TO_WORKER.decode(body)
        match message:
            case Invoke(id=id, request=request):
                self.calls[id] = self._spawn(self._invoke(id, request))
            case Start():
                self._spawn(self._start(message))
            case Cancel(id=id):
                call = self.calls.pop(id, None)
                if call is not None:
                    call.cancel()
            case Stop(id=id):
                self._spawn(self._stop(id))
            case Prepare(specs=specs):
                if any(self.zygotes.wants(spec) for spec in specs):
                    self.zygotes.prestart()

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _start(self, message: Start) -> None:
        s = self.settings
        try:
            instance = await Instance.start(
                message.spec,
                billing=s.billing,
                init_type=message.init_type,
                request_id=message.request_id,
                zygotes=self.zygotes,
                batch=s.batch,
                log_calls=s.log_calls,
            )
        except InitFailed as e:
            self.channel.send(InitFailedMsg(message.id, e.result))
            return
        except Exception as e:
            self.channel.send(LaunchError(message.id, repr(e)))
            return
        self.instances[message.id] = instance
        instance.exited.add_done_callback(lambda _: self._died(message.id))
        self.channel.send(Started(message.id, instance.pid))

    def _died(self, id: int) -> None:
        if id in self.instances and id not in self.calls:
            self.channel.send(Died(id))

    async def _invoke(self, id: int, request: InvokeRequest) -> None:
        instance = self.instances[id]
        try:
            result = await instance.invoke(request)
        except asyncio.CancelledError:
            self.channel.send(Died(id))  # a cancelled invoke kills the instance
            raise
        finally:
            self.calls.pop(id, None)
        self.channel.send(Result(id, result, instance.alive))

    async def _stop(self, id: int) -> None:
        instance = self.instances.pop(id, None)
        if instance is not None:
            await instance.stop()
        self.channel.send(Stopped(id))

    def _closed(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*(i.stop() for i in self.instances.values()), return_exceptions=True)
        await self.zygotes.aclose()


async def serve(fd: int, settings: Settings) -> None:
    worker = Worker(settings)
    sock = socket.socket(fileno=fd)
    await asyncio.get_running_loop().create_unix_connection(lambda: worker.channel, sock=sock)
    try:
        await worker.done
    finally:
        await worker.aclose()


def main(argv: list[str]) -> int:
    from router.logs import setup_logging

    fd, raw = int(argv[0]), argv[1]
    settings = msgspec.json.decode(raw, type=Settings)
    setup_logging(settings.log_level, settings.log_json)
    # The daemon decides when a worker ends (by closing its socket): a signal meant for the daemon's process
    # group must not end a worker before it has stopped its instances.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop_factory = None
    if settings.uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(fd, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
