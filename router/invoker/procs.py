"""What the invoker reads from /proc and how it kills: process trees, memory, socket owners, groups.

Every function here is synchronous, non-blocking (procfs reads are served from kernel memory) and tolerant of
processes vanishing between two reads: a process that is gone simply does not count.

* `tree(pid)`: the pid and all its descendants (through /proc/PID/task/TID/children).
* `rss_bytes(pids)`: resident set, summed; `peak_bytes(pids)`: VmHWM, summed (an upper bound of the group's
  peak when several processes peaked at different times); `reset_peaks(pids)` writes 5 to clear_refs so the
  next `peak_bytes` covers one call only.
* `socket_owner_in(pids, local, remote)`: whether the TCP socket local->remote belongs to one of pids; the
  Runtime API uses it to refuse connections that do not come from the instance's own processes.
* `kill_group(pgid, sig)`: os.killpg, ignoring a group that is already gone.
"""

from __future__ import annotations

import os
import signal
import socket
import struct

PAGE = os.sysconf("SC_PAGE_SIZE")

# These run on every call of the warm path: raw os.open/os.read, no file objects.


def _read(path: str, size: int = 4096) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def tree(root: int) -> list[int]:
    pids = [root]
    i = 0
    while i < len(pids):
        pid = pids[i]
        i += 1
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                pids.extend(int(c) for c in _read(f"/proc/{pid}/task/{tid}/children", 65536).split())
            except (OSError, ValueError):
                continue
    return pids


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(_read(f"/proc/{pid}/statm", 256).split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def peak_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = _read(f"/proc/{pid}/status")
            start = status.index(b"VmHWM:") + 6
            total += int(status[start : status.index(b"kB", start)]) * 1024
        except (OSError, ValueError):
            continue
    return total


def reset_peaks(pids: list[int]) -> None:
    for pid in pids:
        try:
            fd = os.open(f"/proc/{pid}/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, b"5")
        except OSError:
            pass
        finally:
            os.close(fd)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _hex_addr(addr: tuple[str, int]) -> bytes:
    # /proc/net/tcp prints an IPv4 address as the hex of its 32-bit value in host byte order.
    packed = socket.inet_aton(addr[0])
    (value,) = struct.unpack("=I", packed)
    return f"{value:08X}:{addr[1]:04X}".encode()


def socket_inode(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The inode of the IPv4 TCP socket whose local end is `local` and remote end is `remote`."""
    want_local, want_remote = _hex_addr(local), _hex_addr(remote)
    try:
        with open("/proc/net/tcp", "rb") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want_local and fields[2] == want_remote:
                    return int(fields[9])
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return None


def socket_owner_in(pids: list[int], local: tuple[str, int], remote: tuple[str, int]) -> bool:
    inode = socket_inode(local, remote)
    if inode is None:
        return False
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    return True
            except OSError:
                continue
    return False
