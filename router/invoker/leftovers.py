"""What a router would leave running if it died, written down so it can be killed: at once by the keeper,
or by the next start on the same state_dir.

Records are small JSON files in `<state_dir>/run/`, each written whole (to a temporary name, then renamed):

* `router.json`: the router (pid, start time, boot id) and its cgroup folders (router/invoker/cgroups.py);
* `group-<pgid>.json`: one per instance process group (its leader's pid is the pgid), with the leader's
  start time, written when the instance is launched and removed once its group is dead;
* `stray-<pid>.json`: a process the router did not start that became its child (the router is a child
  subreaper, so double-forked descendants of instances are reparented to it, not to init).

`clean(state_dir)` kills what the records name and removes the records: every process in the recorded
cgroups (then the groups), every recorded process group whose leader is the recorded process or gone (while
any member lives, the kernel does not reuse a group's id, so a group without its leader is still ours), and
every stray that is still the recorded process. Records of another boot are dropped unread. If the recorded
router is still running (another router on the same state_dir) nothing is touched.

The keeper: `python -m router.invoker.leftovers STATE_DIR`, started by the router in a session of its own
with its stdin on a pipe only the router holds. A router that stops cleanly writes `STOPPED` before it
closes the pipe, and the keeper just exits. End of file without it (the router died, however) makes it
take the state_dir's lock (router/core/state_lock.py, which the router held until its end), run
`clean(STATE_DIR)` and exit: instances and everything they started die within moments of the router. If a
new router took the lock first, the keeper leaves everything to it: that router cleaned up at its start,
and what runs under the folder's cgroups now is its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from router.core.state_lock import StateDirInUse, StateLock
from router.invoker import cgroups

log = logging.getLogger("router.invoker.leftovers")

ROUTER = "router.json"
KEEPER_LOCK_WAIT_S = 2.0  # the lock goes with the router's process: its end of file can come a moment sooner
STOPPED = b"stopped\n"  # what a router that stops cleanly writes to the keeper: nothing is left to clean


def run_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "run"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _write(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(record).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class Records:
    """The records of one running router."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = run_dir(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._boot = boot_id()

    def router(self, cgroup_dirs: list[Path]) -> None:
        pid = os.getpid()
        record = {
            "pid": pid,
            "start": start_time(pid),
            "boot": self._boot,
            "cgroups": [str(d) for d in cgroup_dirs],
        }
        _write(self.dir / ROUTER, record)

    def group(self, pgid: int) -> None:
        _write(self.dir / f"group-{pgid}.json", {"pgid": pgid, "start": start_time(pgid), "boot": self._boot})

    def group_gone(self, pgid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / f"group-{pgid}.json").unlink()

    def stray(self, pid: int) -> bool:
        """Record a stray once; True if it was new."""
        path = self.dir / f"stray-{pid}.json"
        if path.exists():
            return False
        _write(path, {"pid": pid, "start": start_time(pid), "boot": self._boot})
        return True

    def strays(self) -> list[int]:
        return [int(p.stem.split("-", 1)[1]) for p in self.dir.glob("stray-*.json")]

    def stray_gone(self, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / f"stray-{pid}.json").unlink()

    def close(self) -> None:
        """The router stopped cleanly: nothing is left to kill."""
        for path in self.dir.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def clean(state_dir: Path, *, patience_s: float = 2.0, router_gone: bool = False) -> int:
    """Kill and remove what the records of a previous life name; returns how many things were killed.
    `router_gone`: the caller knows the recorded router is dead (the keeper), so it is not checked."""
    folder = run_dir(state_dir)
    if not folder.is_dir():
        return 0
    router = _read(folder / ROUTER) or {}
    if not router_gone and router.get("pid") not in (None, os.getpid()) and _same_process(router):
        log.error(
            "another router (pid %s) is running on %s: its instances are left alone", router["pid"], state_dir
        )
        return 0
    killed = 0
    for path in sorted(folder.glob("*.json")):
        record = _read(path)
        if record is not None and record.get("boot") == boot_id():
            killed += _kill_record(path.name, record)
    dirs = (
        [Path(d) for d in router.get("cgroups", []) if isinstance(d, str)]
        if router.get("boot") == boot_id()
        else []
    )
    killed += _sweep(dirs, patience_s)
    for path in folder.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return killed


def _same_process(record: dict[str, Any]) -> bool:
    """The recorded process is still running (a zombie, dead but not yet reaped, is not)."""
    pid, start = record.get("pid"), record.get("start")
    return (
        isinstance(pid, int)
        and record.get("boot") == boot_id()
        and start is not None
        and start_time(pid) == start
        and not _zombie(pid)
    )


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _kill_record(name: str, record: dict[str, Any]) -> int:
    if name.startswith("group-") and isinstance(record.get("pgid"), int):
        pgid = record["pgid"]
        leader = start_time(pgid)
        if leader is None or leader == record.get("start"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                return 1
    elif name.startswith("stray-") and _same_process(record):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(record["pid"], signal.SIGKILL)
            return 1
    return 0


def _sweep(router_dirs: list[Path], patience_s: float) -> int:
    """Kill everything in these router cgroups and remove them, waiting up to patience_s for exits."""
    existing = [d for d in router_dirs if d.is_dir()]
    if not existing:
        return 0
    groups = {g.name for d in existing for g in d.iterdir() if g.is_dir()}
    deadline = time.monotonic() + patience_s
    while cgroups.sweep_dirs(existing) and time.monotonic() < deadline:
        time.sleep(0.01)
    for d in existing:
        with contextlib.suppress(OSError):
            d.rmdir()
    return len(groups)


def keep(state_dir: Path) -> None:
    """The keeper's life: wait for the router's end, then clean up after it."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the router's end ends us
    said = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(0, 4096):
            said += chunk
    if STOPPED in said:
        return
    try:
        lock = StateLock.acquire(state_dir, KEEPER_LOCK_WAIT_S, holder="keeper")
    except StateDirInUse:
        return  # a new router holds the folder and cleaned up after the old one itself
    except OSError:
        lock = None  # the folder is gone or unreadable: clean what the records name all the same
    try:
        killed = clean(state_dir, router_gone=True)
    finally:
        if lock is not None:
            lock.release()
    if killed:
        print(f"router keeper: the router is gone; killed {killed} of its leftovers", file=sys.stderr)


if __name__ == "__main__":
    keep(Path(sys.argv[1]))
