"""`network: false`: a network namespace with nothing in it but a loopback, and the instance's Runtime API
listening inside it.

`isolated_listener() -> (listener, netns_fd)` makes the namespace on a short-lived thread of its own (a
network namespace belongs to a thread: the event loop's thread and the executor's pooled threads never
change theirs): unshare(CLONE_NEWNET), bring `lo` up, listen on 127.0.0.1 (a free port), and open
/proc/thread-self/ns/net. The instance joins the namespace (setns, runtimes/confine.py) before anything of
the function runs: 127.0.0.1 is then its own loopback, where only its Runtime API listens, and no other
address is reachable. The router accepts on the listener as on any other (a socket keeps the namespace it
was made in) and checks peers through /proc/PID/net/tcp of the instance (router/invoker/procs.py). Needs
root (CAP_SYS_ADMIN); raises OSError otherwise.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
IFREQ = struct.Struct("16sH22x")  # struct ifreq: the name, then ifr_flags in the union


def isolated_listener() -> tuple[socket.socket, int]:
    made: list[tuple[socket.socket, int]] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            made.append(_make())
        except BaseException as e:
            failed.append(e)

    thread = threading.Thread(target=make, name="router-netns")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def _make() -> tuple[socket.socket, int]:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"cannot make a network namespace: {os.strerror(error)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        flags = IFREQ.unpack(fcntl.ioctl(control, SIOCGIFFLAGS, IFREQ.pack(b"lo", 0)))[1]
        fcntl.ioctl(control, SIOCSIFFLAGS, IFREQ.pack(b"lo", flags | IFF_UP))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        netns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        listener.close()
        raise
    return listener, netns
