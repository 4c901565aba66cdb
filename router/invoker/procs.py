"""What the invoker reads from /proc and how it kills: process trees, memory, socket owners, groups.

Every function here is synchronous, non-blocking (procfs reads are served from kernel memory) and tolerant of
processes vanishing between two reads: a process that is gone simply does not count.

* `tree(pid)`: the pid and all its descendants (through /proc/PID/task/TID/children).
* `rss_bytes(pids)`: resident set, summed; `peak_bytes(pids)`: VmHWM, summed (an upper bound of the group's
  peak when several processes peaked at different times); `reset_peaks(pids)` writes 5 to clear_refs so the
  next `peak_bytes` covers one call only.
* `socket_owner_in(pids, local, remote)`: whether the TCP socket local->remote belongs to one of pids; the
  Runtime API uses it to refuse connections that do not come from the instance's own processes. A socket
  of another network namespace (`network: false`) is looked up in the first pid's /proc/PID/net/tcp.
* `kill_group(pgid, sig)`: os.killpg, ignoring a group that is already gone.
* `become_subreaper()`: orphaned descendants of instances (double forks) become the router's children
  instead of init's, so they stay findable; `orphans(known)` reaps those that exited and returns the live
  ones (every child of ours not in `known`: the children the router started itself, router/core/spawned.py).
* `Tree(root)`: the same readings for one instance, cheaper on the warm path: the leader's `children`,
  `status` and `clear_refs` files stay open and are re-read with pread (no path lookup, no open/close), and
  its thread list is only listed when it has more than one thread (the link count of /proc/PID/task is
  2 + threads). Three descriptors per instance; `close()` releases them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import struct

PAGE = os.sysconf("SC_PAGE_SIZE")
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37

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
        pids.extend(_children(pids[i]))
        i += 1
    return pids


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            found.extend(int(c) for c in _read(f"/proc/{pid}/task/{tid}/children", 65536).split())
        except (OSError, ValueError):
            continue
    return found


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(_read(f"/proc/{pid}/statm", 256).split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def _hwm(status: bytes) -> int:
    start = status.index(b"VmHWM:") + 6
    return int(status[start : status.index(b"kB", start)]) * 1024


def peak_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += _hwm(_read(f"/proc/{pid}/status"))
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


class Tree:
    """The process tree of one instance, rooted at its leader, with the leader's files kept open."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._fds: dict[str, int] = {}
        self._closed = False

    def _fd(self, name: str, flags: int = os.O_RDONLY) -> int:
        fd = self._fds.get(name)
        if fd is None:
            if self._closed:
                raise ProcessLookupError(self.root)
            fd = self._fds[name] = os.open(f"/proc/{self.root}/{name}", flags | os.O_CLOEXEC)
        return fd

    def _root_children(self) -> list[int]:
        try:
            threads = os.stat(f"/proc/{self.root}/task").st_nlink - 2
            if threads != 1:
                return _children(self.root)
            return [int(c) for c in os.pread(self._fd(f"task/{self.root}/children"), 65536, 0).split()]
        except (OSError, ValueError):
            return []

    def members(self) -> list[int]:
        """The leader and all its descendants (empty once the leader is gone)."""
        if self._closed:
            return []
        pids = [self.root, *self._root_children()]
        i = 1
        while i < len(pids):
            pids.extend(_children(pids[i]))
            i += 1
        return pids

    def reset_peaks(self, pids: list[int]) -> None:
        others = [p for p in pids if p != self.root]
        if len(others) < len(pids):
            try:
                os.write(self._fd("clear_refs", os.O_WRONLY), b"5")
            except OSError:
                pass
        reset_peaks(others)

    def peak_bytes(self, pids: list[int]) -> int:
        others = [p for p in pids if p != self.root]
        total = peak_bytes(others)
        if len(others) < len(pids):
            try:
                total += _hwm(os.pread(self._fd("status"), 4096, 0))
            except (OSError, ValueError):
                pass
        return total

    def close(self) -> None:
        self._closed = True
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def become_subreaper() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def is_subreaper() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    return bool(libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value)


def _state(pid: int) -> bytes:
    try:
        return _read(f"/proc/{pid}/stat", 1024).rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return b""


def orphans(known: set[int]) -> list[int]:
    """Reap our children that we did not start and that exited; return those still running."""
    live = []
    for pid in _children(os.getpid()):
        if pid in known:
            continue
        if _state(pid) == b"Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        elif _state(pid):
            live.append(pid)
    return live


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


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
_DIAG_REQUEST = struct.Struct("=IHHII BBBBI HH16s16sIII")  # nlmsghdr + inet_diag_req_v2
_INODE_AT = 16 + 4 + 48 + 16  # nlmsghdr, then inet_diag_msg: 4 bytes, sockid, 4 u32, then idiag_inode


def socket_inode(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The inode of the IPv4 TCP socket whose local end is `local` and remote end is `remote`.

    Asked of the kernel with one sock_diag (netlink) lookup; /proc/net/tcp, which the kernel writes out
    in full on every read (milliseconds with a few hundred sockets), only where netlink is not allowed."""
    try:
        return _diag_inode(local, remote)
    except OSError:
        return _proc_net_tcp_inode(local, remote)


def _diag_inode(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    request = _DIAG_REQUEST.pack(
        _DIAG_REQUEST.size, SOCK_DIAG_BY_FAMILY, 1, 1, 0,  # length, type, NLM_F_REQUEST, seq, port id
        socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF,  # family, protocol, ext, pad, any state
        socket.htons(local[1]), socket.htons(remote[1]),
        socket.inet_aton(local[0]), socket.inet_aton(remote[0]),
        0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE,  # interface, cookie: none
    )  # fmt: skip
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(1.0)
        sock.sendto(request, (0, 0))
        reply = sock.recv(65536)
    kind = struct.unpack_from("=H", reply, 4)[0]
    if kind == NLMSG_ERROR:
        (error,) = struct.unpack_from("=i", reply, 16)
        if error in (0, -errno.ENOENT):
            return None
        raise OSError(-error, os.strerror(-error))
    if kind != SOCK_DIAG_BY_FAMILY or len(reply) < _INODE_AT + 4:
        raise OSError(errno.EPROTO, f"unexpected sock_diag reply type {kind}")
    return int(struct.unpack_from("=I", reply, _INODE_AT)[0])


def _proc_net_tcp_inode(
    local: tuple[str, int], remote: tuple[str, int], table: str = "/proc/net/tcp"
) -> int | None:
    want_local, want_remote = _hex_addr(local), _hex_addr(remote)
    try:
        with open(table, "rb") as f:
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
    if inode is None and pids:
        # Not in our network namespace: an instance with `network: false` has its own (the table of its
        # leader's namespace is small: its loopback holds nothing but its Runtime API).
        inode = _proc_net_tcp_inode(local, remote, f"/proc/{pids[0]}/net/tcp")
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
