"""One instance's OS process: spawned in its own session and process group, watched without threads.

* `InstanceProcess.spawn(launch, on_line=..., on_exit=..., confine=plan, on_kill=...)` starts the process with
  stdin from /dev/null and stdout+stderr on one pipe (so their lines keep their relative order), in a new
  session: its process group id is its pid, and every child it makes is killed with it. Before exec the
  child carries out `confine` (runtimes/confine.py: its cgroups, namespaces, uid, and a parent-death signal
  so it dies with the router); when that fails it prints why and exits 126 (a failed init, with the line).
  `on_kill()` is called with every SIGKILL of the group (the instance's cgroup is killed there too).
* Exit is watched through a pidfd on the event loop. When the leader exits, the whole group is SIGKILLed
  before the leader is reaped (while it is a zombie its pid, hence the group id, cannot be reused), then
  `on_exit(returncode)` is called and `exited` resolves.
* Output is read non-blockingly and split into lines for `on_line(bytes)`; `drain()` reads, synchronously,
  everything already in the pipe, so lines printed before the runtime answered are attributed to that call.
  A line longer than `max_line` is cut into pieces.
* `kill(sig)` signals the group; `close()` releases the pipe and pidfd.
* `InstanceProcess.adopt(pid, out_fd, reap=...)` watches a process someone else started: one forked by the
  zygote (router/invoker/zygote.py), which is not our child. A pidfd works on any process; the exit status
  comes from its parent: `reap(done)` must call `done(returncode)` once it is known, and is called only
  after the group was killed (the parent keeps the leader a zombie until then, so its pid stays ours).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

from router.core.spawned import SPAWNED
from router.invoker import procs
from router.invoker.launch import Launch
from router.invoker.runtimes import confine as confinement

MAX_LINE = 16 * 1024
Reap = Callable[[Callable[[int | None], None]], None]


class InstanceProcess:
    def __init__(
        self,
        pid: int,
        reap: Reap,
        out_fd: int,
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        max_line: int,
        on_kill: Callable[[], None] | None = None,
    ) -> None:
        self._pid = pid
        self._on_kill = on_kill
        self._reap = reap
        self._returncode: int | None = None
        self._out_fd: int | None = out_fd
        self._on_line = on_line
        self._on_exit = on_exit
        self._max_line = max_line
        self._partial = b""
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int | None] = self._loop.create_future()
        self._pidfd: int | None = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._exit_ready)
        self._loop.add_reader(out_fd, self._output_ready)

    @classmethod
    def spawn(
        cls,
        launch: Launch,
        *,
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        max_line: int = MAX_LINE,
        confine: dict[str, Any] | None = None,
        on_kill: Callable[[], None] | None = None,
    ) -> InstanceProcess:
        """Raises OSError when the executable cannot be started."""
        read_fd, write_fd = os.pipe()
        plan = {**(confine or {}), "pdeathsig": signal.SIGKILL, "parent": os.getpid()}
        chdir_late = "uid" in plan  # after the mounts and as the function's uid, so the check is its own
        if chdir_late:
            plan["cwd"] = str(launch.cwd)
        try:
            popen = subprocess.Popen(
                launch.argv,
                cwd="/" if chdir_late else launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                close_fds=True,
                preexec_fn=_preexec(plan),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        SPAWNED.add(popen.pid)

        def reap(done: Callable[[int | None], None]) -> None:
            returncode = popen.poll()
            SPAWNED.discard(popen.pid)
            done(returncode)

        return cls(popen.pid, reap, read_fd, on_line, on_exit, max_line, on_kill)

    @classmethod
    def adopt(
        cls,
        pid: int,
        out_fd: int,
        *,
        reap: Reap,
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        max_line: int = MAX_LINE,
        on_kill: Callable[[], None] | None = None,
    ) -> InstanceProcess:
        """Watch `pid`, started elsewhere, whose output is on `out_fd` (taken over: set non-blocking, closed
        with this object). Raises OSError if the process cannot be watched."""
        os.set_blocking(out_fd, False)
        return cls(pid, reap, out_fd, on_line, on_exit, max_line, on_kill)

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._returncode

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.running:
            self._kill_group(sig)

    def _kill_group(self, sig: int) -> None:
        procs.kill_group(self._pid, sig)
        if sig == signal.SIGKILL and self._on_kill is not None:
            self._on_kill()

    # exit ----------------------------------------------------------------------------------------------

    def _exit_ready(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._kill_group(signal.SIGKILL)
        self._reap(self._reaped)

    def _reaped(self, returncode: int | None) -> None:
        self._returncode = returncode
        self.drain()
        if not self.exited.done():
            self.exited.set_result(returncode)
        self._on_exit(returncode)

    # output --------------------------------------------------------------------------------------------

    def _output_ready(self) -> None:
        self._read_once()

    def _read_once(self) -> bool:
        """Read one chunk; False when nothing more is there right now (or ever)."""
        if self._out_fd is None:
            return False
        try:
            data = os.read(self._out_fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._close_output()
            return False
        self._feed(data)
        return True

    def _feed(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._emit(line)
        while len(self._partial) > self._max_line:
            self._on_line(self._partial[: self._max_line])
            self._partial = self._partial[self._max_line :]

    def _emit(self, line: bytes) -> None:
        while len(line) > self._max_line:
            self._on_line(line[: self._max_line])
            line = line[self._max_line :]
        self._on_line(line)

    def drain(self) -> None:
        """Read everything already written, and flush an unterminated last line."""
        while self._read_once():
            pass
        if self._partial:
            line, self._partial = self._partial, b""
            self._emit(line)

    def _close_output(self) -> None:
        if self._out_fd is not None:
            self._loop.remove_reader(self._out_fd)
            os.close(self._out_fd)
            self._out_fd = None
        if self._partial:
            line, self._partial = self._partial, b""
            self._emit(line)

    def close(self) -> None:
        self._close_output()
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


def _preexec(plan: dict[str, Any]) -> Callable[[], None]:
    """Runs in the child between fork and exec: only system calls, nothing that takes a lock."""

    def confine() -> None:
        try:
            confinement.enter(plan)
        except BaseException as e:
            os.write(2, f"router: could not set up the instance: {e}\n".encode())
            os._exit(126)

    return confine
