"""One instance's OS process: spawned in its own session and process group, watched without threads.

* `InstanceProcess.spawn(launch, on_line=..., on_exit=...)` starts the process with stdin from /dev/null and
  stdout+stderr on one pipe (so their lines keep their relative order), in a new session: its process group
  id is its pid, and every child it makes is killed with it.
* Exit is watched through a pidfd on the event loop. When the leader exits, the whole group is SIGKILLed
  before the leader is reaped (while it is a zombie its pid, hence the group id, cannot be reused), then
  `on_exit(returncode)` is called and `exited` resolves.
* Output is read non-blockingly and split into lines for `on_line(bytes)`; `drain()` reads, synchronously,
  everything already in the pipe, so lines printed before the runtime answered are attributed to that call.
  A line longer than `max_line` is cut into pieces.
* `kill(sig)` signals the group; `close()` releases the pipe and pidfd.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable

from router.invoker import procs
from router.invoker.launch import Launch

MAX_LINE = 16 * 1024


class InstanceProcess:
    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        out_fd: int,
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        max_line: int,
    ) -> None:
        self._popen = popen
        self._out_fd: int | None = out_fd
        self._on_line = on_line
        self._on_exit = on_exit
        self._max_line = max_line
        self._partial = b""
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int | None] = self._loop.create_future()
        self._pidfd: int | None = os.pidfd_open(popen.pid)
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
    ) -> InstanceProcess:
        """Raises OSError when the executable cannot be started."""
        read_fd, write_fd = os.pipe()
        try:
            popen = subprocess.Popen(
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        return cls(popen, read_fd, on_line, on_exit, max_line)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.running:
            procs.kill_group(self._popen.pid, sig)

    # exit ----------------------------------------------------------------------------------------------

    def _exit_ready(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        procs.kill_group(self._popen.pid, signal.SIGKILL)
        returncode = self._popen.poll()
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
