"""One router per state_dir: an exclusive lock on `<state_dir>/router.lock`, held for the router's life.

Everything under state_dir belongs to one router at a time: the async queue, the record, the deployed
functions, the records of what it runs, and the cgroups named after the folder (router/invoker/cgroups.py).
A second router started on the same folder must not touch any of it: before the lock it swept the first
one's instance groups, took over its records and removed its cgroups when it gave up, so every cold start
of the first router failed from then on. Now it stops before touching anything, with one line naming the
folder and the router that holds it.

The lock is `flock` on a file descriptor that no child inherits (O_CLOEXEC; front processes and instances
are started with only the descriptors they are given): the kernel drops it the moment the router's process
ends, however it ends. The keeper (router/invoker/leftovers.py) takes it too before it cleans up after a
router that died, so a router started in that moment waits for the cleanup (`wait_s`) instead of having
its new instances swept by it.

`StateLock.acquire(state_dir, wait_s, holder=...)` returns the held lock or raises `StateDirInUse`;
`release()` drops it (also on garbage collection, as any file descriptor).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

LOCK_FILE = "router.lock"
POLL_S = 0.05


class StateDirInUse(Exception):
    """Another process holds the state_dir's lock. The message is the one line `serve` prints."""


class StateLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path, wait_s: float = 0.0, *, holder: str = "router") -> StateLock:
        """Take the lock, waiting up to `wait_s` for it; then write `holder` and our pid into the file
        (what the next one's error names)."""
        fd = os.open(Path(state_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    who = _holder(fd)
                    os.close(fd)
                    raise StateDirInUse(
                        f"state_dir {Path(state_dir).resolve()} is in use by another {who}; "
                        "give each router its own state_dir"
                    ) from None
                time.sleep(POLL_S)
            except BaseException:
                os.close(fd)
                raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder} {os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the only descriptor of the open file drops the flock

    def __del__(self) -> None:
        self.release()


def _holder(fd: int) -> str:
    """'router (pid 123)' from what the holder wrote; 'process' when it wrote nothing readable yet."""
    try:
        what, _, pid = os.pread(fd, 64, 0).decode().strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return "process"
    return f"{what} (pid {pid})" if what and pid.isdigit() else "process"
