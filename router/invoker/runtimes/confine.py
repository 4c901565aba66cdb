"""What a new instance does to itself between fork and the function's first instruction (stdlib only).

The router computes a plan (router/invoker/containment.py) and the child carries it out while still
root: in a process the zygote forked (runtimes/python_zygote.py imports this module before it forks) and
in a process the router spawns (`preexec_fn` of subprocess, after setsid and before exec). In order:

1. `cgroups`: join each group by writing our pid into its `cgroup.procs` (so every limit applies before any
   code of the function runs, and everything we start is in the group too);
2. `netns_fd`: join that network namespace (`network: false`: only a loopback, router/invoker/netns.py);
   `mounts`: a private mount namespace, then each operation in order (`hide` a folder under an empty
   read-only tmpfs, or a file under /dev/null; `bind` a needed path back, read-only, inside what was hidden;
   `tmp`: a private writable tmpfs; `proc`: /proc mounted again with hidepid=2, so only our own uid's
   processes are visible), then every hiding tmpfs is made read-only (after the mount points in it);
3. `uid`/`gid`: no supplementary groups, then the function's gid and uid, and no_new_privs (no setuid
   binary can raise them again);
4. `pdeathsig`: the signal we get when our parent dies (after the uid change, which clears it), and exit
   at once if the parent is already gone (`parent` is its pid);
5. `cwd`.

Errors: `enter` raises OSError naming the step; the caller prints it on the instance's output and exits,
so the router reports a failed init with that line in the log.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
HIDDEN = MS_NOSUID | MS_NODEV | MS_NOEXEC

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encoded = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    _check(_libc.mount(*encoded[:3], ctypes.c_ulong(flags), encoded[3]), f"mount {target}")


def enter(plan: dict[str, Any]) -> None:
    for path in plan.get("cgroups", ()):
        _join(path)
    if plan.get("netns_fd") is not None:
        join_network(plan["netns_fd"])
    mounts = plan.get("mounts")
    if mounts is not None:
        _namespace(mounts)
    uid = plan.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(plan["gid"])
        os.setuid(uid)
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    signal_number = plan.get("pdeathsig")
    if signal_number:
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0), "pdeathsig")
        if os.getppid() != plan["parent"]:
            os._exit(1)  # the router died while we were starting
    if plan.get("cwd"):
        os.chdir(plan["cwd"])


def _join(procs_file: str) -> None:
    fd = os.open(procs_file, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(os.getpid()).encode())
    except OSError as e:
        raise OSError(e.errno, f"joining {procs_file}: {e.strerror}") from None
    finally:
        os.close(fd)


def join_network(netns_fd: int) -> None:
    """Enter the network namespace made for us (`network: false`, router/invoker/netns.py)."""
    _check(_libc.setns(netns_fd, CLONE_NEWNET), "setns")


def _namespace(operations: list[list[Any]]) -> None:
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount reaches the host
    # Opened now, in our own namespace (a mount of the old one cannot be bound here), before any hiding.
    sources = {
        op[1]: os.open(op[1], os.O_PATH | os.O_CLOEXEC) for op in operations if op[0] in ("bind", "bind_rw")
    }
    sealed = []
    for op in operations:
        kind, path = op[0], op[1] if len(op) > 1 else "/proc"
        if kind == "hide":
            if _hide(path):
                sealed.append(path)
        elif kind == "bind":
            _bind(sources[path], path)
        elif kind == "bind_rw":
            _bind(sources[path], path, writable=True)
        elif kind == "tmp":
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={op[2]}m")
        elif kind == "proc":
            _mount("proc", "/proc", "proc", HIDDEN, "hidepid=2")
    for path in reversed(sealed):  # read-only once the mount points of what is bound back are made
        _mount(None, path, None, MS_REMOUNT | MS_RDONLY | HIDDEN)
    for fd in sources.values():
        os.close(fd)


def _hide(path: str) -> bool:
    """Cover a folder with an empty tmpfs (True), or a file with /dev/null; a missing path stays missing."""
    if os.path.isdir(path) and not os.path.islink(path):
        _mount("tmpfs", path, "tmpfs", HIDDEN, "mode=0755,size=64k")
        return True
    if os.path.lexists(path):
        _mount("/dev/null", path, None, MS_BIND)
    return False


def _bind(source: int, path: str, writable: bool = False) -> None:
    if os.path.isdir(f"/proc/self/fd/{source}"):
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    _mount(f"/proc/self/fd/{source}", path, None, MS_BIND | MS_REC)
    readonly = 0 if writable else MS_RDONLY
    _mount(None, path, None, MS_REMOUNT | MS_BIND | readonly | MS_NOSUID | MS_NODEV)
