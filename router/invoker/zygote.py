"""Python zygotes: a pre-started interpreter that forks Python instances in about a millisecond.

A fresh Python instance costs an interpreter start and the bootstrap's imports (tens of milliseconds). A
zygote (runtimes/python_zygote.py) has paid for those once; each instance is a fork of it, set up as a fresh
instance would be (own session and process group, exactly the function's environment, the code folder as
working directory, stdout and stderr on the invoker's pipe, its own Runtime API address, its memory limit),
then running the same bootstrap. The invoker watches it as any instance: a pidfd for its exit (pidfds work
on processes that are not our children), the group kill, the memory sampler; its exit status comes from the
zygote, which keeps it a zombie until the invoker has killed the rest of its group.

Contract:

* `Zygotes(enabled=True)` is the router's policy, one per dispatcher (or test). `await zygotes.spawn(spec,
  plan, on_line=..., on_exit=...)` returns an `InstanceProcess` forked from the zygote, or None when the
  caller must start a fresh interpreter instead: zygotes off (`enabled`, or the function's own
  `python_zygote`), a function a fork cannot serve exactly (`launch.zygote_unfit`), or any failure of the
  zygote (it is then stopped, and started again on a later call, after a back-off if it keeps failing).
* The zygote is started on first use (`prestart()` starts it ahead). One zygote serves every python3.X
  runtime: they all run the router's own interpreter.
* `await zygotes.aclose()` stops the zygote. Instances forked from it live on; when the zygote dies before
  them (killed from outside), their exit status becomes unknown (reported as None).
* The zygote dies with the router: its parent-death signal is SIGTERM, on which (as on end of file of its
  control socket) it SIGKILLs the process group of every instance it forked, then exits. Its instances
  get no parent-death signal of their own: the zygote dying alone must not take them with it.
"""

from __future__ import annotations

import array
import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

from router.core.spawned import SPAWNED
from router.invoker import launch, procs
from router.invoker.process import InstanceProcess
from router.invoker.runtimes import confine as confinement
from router.invoker.types import FunctionSpec

log = logging.getLogger("router.invoker.zygote")

START_TIMEOUT_S = 10.0
FORK_TIMEOUT_S = 2.0
RETRY_AFTER_S = (1.0, 5.0, 30.0)  # back-off after consecutive failures
MAX_MESSAGE = 1 << 16


class ZygoteError(Exception):
    pass


class Zygote:
    """One zygote process and its control socket."""

    def __init__(self, popen: subprocess.Popen[bytes], ctrl: socket.socket, output: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._popen = popen
        self._ctrl = ctrl
        self._output: int | None = output
        self._pidfd: int | None = os.pidfd_open(popen.pid)
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._exited: asyncio.Future[None] = self._loop.create_future()
        self._forks: dict[int, asyncio.Future[int]] = {}
        self._statuses: dict[int, asyncio.Future[int | None]] = {}
        self._next_id = 0
        self.alive = True
        self._loop.add_reader(ctrl.fileno(), self._readable)
        self._loop.add_reader(self._pidfd, self._died)
        self._loop.add_reader(output, self._log_output)

    @classmethod
    async def start(cls) -> Zygote:
        zygote = cls(*_spawn())
        try:
            await asyncio.wait_for(asyncio.shield(zygote._ready), START_TIMEOUT_S)
        except BaseException:
            zygote.close()
            raise
        log.info("python zygote %d started", zygote.pid)
        return zygote

    @property
    def pid(self) -> int:
        return self._popen.pid

    async def fork(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        out_fd: int,
        confine: dict[str, Any] | None = None,
    ) -> int:
        """Fork an instance; returns its pid. The caller keeps `out_fd` (the zygote gets a copy).

        What the instance is (argv, environment, confinement) goes in a memfd the child reads itself: the
        zygote never holds one function's environment in memory that the next fork would inherit."""
        if not self.alive:
            raise ZygoteError("the zygote is not running")
        self._next_id += 1
        request_id = self._next_id
        confine = dict(confine or {})
        netns = confine.pop("netns_fd", None)  # a descriptor of ours: it travels as one (the third)
        spec = json.dumps({"argv": argv, "env": env, "cwd": cwd, "confine": confine}).encode()
        spec_fd = os.memfd_create("instance", os.MFD_CLOEXEC)
        reply = self._forks[request_id] = self._loop.create_future()
        try:
            os.write(spec_fd, spec)
            fds = array.array("i", [out_fd, spec_fd] + ([netns] if netns is not None else []))
            message = json.dumps({"op": "fork", "id": request_id}).encode()
            self._ctrl.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            os.close(spec_fd)
            spec_fd = -1
            pid = await asyncio.wait_for(asyncio.shield(reply), FORK_TIMEOUT_S)
        except (OSError, TimeoutError) as e:
            raise ZygoteError(f"fork request failed: {e!r}") from None
        finally:
            self._forks.pop(request_id, None)
            if spec_fd >= 0:
                os.close(spec_fd)
        return pid

    def reap_when_exited(self, pid: int, done: Callable[[int | None], None]) -> None:
        """Call done(exit status) once the zygote reported it (None if the zygote died first), then let the
        zygote reap the zombie."""
        status = self._statuses.get(pid)

        def finish(fut: asyncio.Future[int | None]) -> None:
            self._statuses.pop(pid, None)
            done(fut.result())
            self._send({"op": "reap", "pid": pid})

        if status is None:
            done(None)
        elif status.done():
            finish(status)
        else:
            status.add_done_callback(finish)

    # ------------------------------------------------------------------------------------------------------

    def _send(self, message: dict[str, object]) -> None:
        if self.alive:
            try:
                self._ctrl.send(json.dumps(message).encode())
            except OSError:
                self._died()

    def _readable(self) -> None:
        while True:
            try:
                data = self._ctrl.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._died()
                return
            self._handle(json.loads(data))

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("ready"):
            if not self._ready.done():
                self._ready.set_result(None)
        elif "exit" in message:
            status = self._statuses.get(message["exit"])
            if status is not None and not status.done():
                status.set_result(message["status"])
        else:
            reply = self._forks.get(message.get("id", -1))
            pid = message.get("pid")
            if isinstance(pid, int):
                # Before anything else is read: the child's exit report may be the very next message.
                self._statuses[pid] = self._loop.create_future()
            if reply is not None and not reply.done():
                if isinstance(pid, int):
                    reply.set_result(pid)
                else:
                    reply.set_exception(ZygoteError(str(message.get("error"))))
            elif isinstance(pid, int):
                # Nobody waits for it any more (the launch was cancelled, or timed out): end it.
                procs.kill_group(pid, signal.SIGKILL)
                self.reap_when_exited(pid, lambda _: None)

    def _log_output(self) -> None:
        try:
            data = os.read(self._output, 65536) if self._output is not None else b""
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_output()
            return
        for line in data.decode("utf-8", "replace").splitlines():
            log.warning("python zygote %d: %s", self._popen.pid, line)

    def _close_output(self) -> None:
        if self._output is not None:
            self._loop.remove_reader(self._output)
            os.close(self._output)
            self._output = None

    def _died(self) -> None:
        """The zygote exited (or its socket broke): fail what waits on it, reap it."""
        if self.alive:
            self.alive = False
            self._loop.remove_reader(self._ctrl.fileno())
            self._ctrl.close()
            for reply in self._forks.values():
                if not reply.done():
                    reply.set_exception(ZygoteError("the zygote exited"))
            for status in self._statuses.values():
                if not status.done():
                    status.set_result(None)  # its children now belong to init: their status is lost
            if not self._ready.done():
                self._ready.set_exception(ZygoteError(f"the zygote exited: {self._popen.poll()}"))
                self._ready.exception()  # retrieved: start() may have stopped waiting
        if self._popen.poll() is None:
            return  # still exiting: the pidfd reader calls again
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        SPAWNED.discard(self._popen.pid)
        self._log_output()
        self._close_output()
        if self._popen.returncode not in (0, -signal.SIGKILL):
            log.warning("python zygote %d exited with %s", self._popen.pid, self._popen.returncode)
        if not self._exited.done():
            self._exited.set_result(None)

    def close(self) -> None:
        """Stop the zygote (its instances live on); `wait_closed()` waits until it is reaped."""
        if self._popen.poll() is None:
            self._popen.kill()
        self._died()

    async def wait_closed(self, limit_s: float = 5.0) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), limit_s)
        except TimeoutError:
            log.error("python zygote %d did not exit after SIGKILL", self._popen.pid)


def _spawn() -> tuple[subprocess.Popen[bytes], socket.socket, int]:
    """The zygote process, our end of its control socket, and the read end of its output pipe."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    read_fd, write_fd = os.pipe()
    # SIGTERM when the router dies: the zygote then kills the instances it forked, and exits.
    plan = {"pdeathsig": signal.SIGTERM, "parent": os.getpid()}
    try:
        popen = subprocess.Popen(
            [*launch.PYTHON_COMMAND, "--zygote", str(theirs.fileno())],
            env=launch.zygote_environment(),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
            preexec_fn=lambda: confinement.enter(plan),
        )
    except BaseException:
        ours.close()
        os.close(read_fd)
        raise
    finally:
        theirs.close()
        os.close(write_fd)
    ours.setblocking(False)
    os.set_blocking(read_fd, False)
    SPAWNED.add(popen.pid)
    return popen, ours, read_fd


class Zygotes:
    """Lazily started, restarted when it dies, bypassed when it cannot help."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._zygote: Zygote | None = None
        self._starting: asyncio.Task[Zygote] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        self.forks = 0  # instances forked (for tests and benchmarks)
        self.fallbacks = 0  # spawns that fell back to a fresh interpreter after a zygote failure

    def wants(self, spec: FunctionSpec) -> bool:
        wanted = spec.python_zygote if spec.python_zygote is not None else self.enabled
        return wanted and not self._closed and launch.zygote_unfit(spec) is None

    @property
    def pid(self) -> int | None:
        """The running zygote's pid, if any."""
        return self._zygote.pid if self._zygote is not None and self._zygote.alive else None

    def prestart(self) -> None:
        """Start the zygote now, in the background, rather than on the first cold start."""
        if not self._closed and self.pid is None and self._starting is None:
            self._starting = asyncio.ensure_future(Zygote.start())
            self._starting.add_done_callback(self._started)

    async def spawn(
        self,
        spec: FunctionSpec,
        plan: launch.Launch,
        *,
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        confine: dict[str, Any] | None = None,
        on_kill: Callable[[], None] | None = None,
    ) -> InstanceProcess | None:
        """An instance forked from the zygote, or None: start a fresh interpreter instead. The child
        carries out `confine` (runtimes/confine.py) before anything of the function runs."""
        if not self.wants(spec) or time.monotonic() < self._retry_at:
            return None
        if not plan.cwd.is_dir():
            return None  # a fresh start reports it as the runtime's launch error
        try:
            zygote = await self._running()
        except (OSError, ZygoteError, TimeoutError, ValueError) as e:
            self._failed(f"could not start: {e!r}")
            return None
        argv = plan.argv[len(launch.PYTHON_COMMAND) :]
        read_fd, write_fd = os.pipe()
        try:
            pid = await zygote.fork(argv, plan.env, str(plan.cwd), write_fd, confine)
        except ZygoteError as e:
            os.close(read_fd)
            self._failed(str(e), zygote)
            return None
        finally:
            os.close(write_fd)
        try:
            process = InstanceProcess.adopt(
                pid,
                read_fd,
                reap=lambda done: zygote.reap_when_exited(pid, done),
                on_line=on_line,
                on_exit=on_exit,
                on_kill=on_kill,
            )
        except OSError as e:  # cannot be watched: end it (the zygote keeps it a zombie until reaped)
            os.close(read_fd)
            procs.kill_group(pid, signal.SIGKILL)
            zygote.reap_when_exited(pid, lambda _: None)
            self._failed(f"lost instance {pid}: {e!r}")
            return None
        self._failures = 0
        self.forks += 1
        return process

    async def _running(self) -> Zygote:
        if self._zygote is not None and self._zygote.alive:
            return self._zygote
        self.prestart()
        assert self._starting is not None
        return await asyncio.shield(self._starting)

    def _started(self, task: asyncio.Task[Zygote]) -> None:
        if self._closed:
            return  # aclose() stops it if it started
        self._starting = None
        if not task.cancelled() and task.exception() is None:  # a failure is spawn()'s to report
            self._zygote = task.result()

    def _failed(self, why: str, zygote: Zygote | None = None) -> None:
        self.fallbacks += 1
        delay = RETRY_AFTER_S[min(self._failures, len(RETRY_AFTER_S) - 1)]
        self._failures += 1
        self._retry_at = time.monotonic() + delay
        log.warning("python zygote: %s; starting a fresh interpreter (zygote retried in %g s)", why, delay)
        if zygote is not None:
            zygote.close()

    async def aclose(self) -> None:
        self._closed = True
        zygotes = [self._zygote] if self._zygote is not None else []
        self._zygote = None
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            await asyncio.wait([starting])
            if not starting.cancelled() and starting.exception() is None:
                zygotes.append(starting.result())
        for zygote in zygotes:
            zygote.close()
            await zygote.wait_closed()
