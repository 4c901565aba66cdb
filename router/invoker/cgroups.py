"""Kernel resource limits for instances: one cgroup per instance, cgroup v2 or v1, detected at start.

Layout. In each hierarchy the router uses, under the daemon's own cgroup (whatever limits the daemon runs
under still apply to its instances), one group per router, `router-<12 hex of the state_dir's path>` (so a
restart on the same state_dir finds the group of its previous life by name), and in it one group per
instance. `detect(state_dir)` finds, for each feature, the hierarchy that provides it:

    feature                        cgroup v2                                   cgroup v1
    memory limit (no swap)         memory.max, memory.swap.max                 memory.limit_in_bytes, memsw
    peak memory, OOM kills         memory.peak (reset per call), memory.events memory.max_usage_in_bytes,
                                                                               memory.oom_control
    CPU quota                      cpu.max                                     cpu.cfs_quota_us / _period_us
    CPU time used                  cpu.stat usage_usec (no controller needed)  cpuacct.usage
    process count                  pids.max, pids.events                       pids.max, pids.events
    freeze                         cgroup.freeze (no controller needed)        freezer.state
    kill every member              cgroup.kill (no controller needed)          freeze, SIGKILL each, thaw

v2 is preferred feature by feature: on a hybrid machine (v1 controllers, and v2 mounted beside them with no
controllers of its own) memory, CPU quota and pids come from v1, while freezing, killing and CPU time come
from v2 (v2's freeze and thaw take microseconds; v1's take hundreds). A controller of v2 is used only if
it can be enabled for the router's group (`cgroup.subtree_control`, which the kernel refuses in a group
that has processes of its own, unless it is the root).

Contract:

* `detect(state_dir) -> (Cgroups | None, why)`: `why` is one line for the log (what is in force, or why
  nothing is). Nothing is created but the router's group.
* one instance's group: router/invoker/instance_cgroup.py (`InstanceGroup.create(cgroups, memory_mb)`).
* `cgroups.sweep()` kills and removes every instance group (at start: leftovers of a previous life; at
  stop); `cgroups.close()` also removes the router's group.

Every call here is synchronous and touches only cgroupfs (served from kernel memory).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

MIB = 1024 * 1024
PIDS_MAX = 1024  # Lambda's limit on processes and threads per execution environment
CPU_PERIOD_US = 20_000  # short periods: a small share is spread finely (the kernel's minimum quota is 1 ms)
V1_FEATURES = ("memory", "cpu", "cpuacct", "pids", "freezer")
V2_CONTROLLERS = ("memory", "cpu", "pids")


class Removable(Protocol):
    def remove(self) -> bool: ...


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    mount: Path
    router: Path  # the router's group in this hierarchy
    features: frozenset[str]  # what the router takes from it (V1_FEATURES; "v2" core plus V2_CONTROLLERS)


def router_group_name(state_dir: Path) -> str:
    digest = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()
    return f"router-{digest[:12]}"


def write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def flat_keyed(data: bytes, key: bytes) -> int:
    """The value of `key` in a cgroup file of "key value" lines (0 when absent). Read on every call: found
    with one search of a pattern made once per key, rather than by splitting the file into lines."""
    found = _key_pattern(key).search(data)
    return int(found[1]) if found is not None else 0


@functools.lru_cache(maxsize=64)
def _key_pattern(key: bytes) -> re.Pattern[bytes]:
    """`key` at the start of a line (not "x_oom_kill 1" for oom_kill), then its value up to the line's end."""
    return re.compile(rb"(?m)^" + re.escape(key) + rb" ([^\n]*)")


# detection ----------------------------------------------------------------------------------------------


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mounts(mountinfo: str) -> tuple[tuple[Path, str] | None, dict[str, tuple[Path, str]]]:
    """(v2 mount point and root, {v1 controller: (mount point, root)}) from /proc/self/mountinfo."""
    v2: tuple[Path, str] | None = None
    v1: dict[str, tuple[Path, str]] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, kinds = left.split(), right.split()
        if len(fields) < 5 or len(kinds) < 3:
            continue
        root, point = _unescape(fields[3]), Path(_unescape(fields[4]))
        if kinds[0] == "cgroup2" and v2 is None:
            v2 = (point, root)
        elif kinds[0] == "cgroup":
            for option in kinds[2].split(","):
                if option in V1_FEATURES and option not in v1:
                    v1[option] = (point, root)
    return v2, v1


def _own_paths(proc_cgroup: str) -> tuple[str | None, dict[str, str]]:
    """(our v2 path, {v1 controller: our path}) from /proc/self/cgroup."""
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        for controller in parts[1].split(","):
            if controller in V1_FEATURES:
                v1[controller] = parts[2]
    return v2, v1


def _inside(mount: Path, root: str, own: str) -> Path | None:
    """Our cgroup's folder in a hierarchy mounted at `mount` (None when our cgroup is outside that mount)."""
    root = root.rstrip("/")
    if root and not (own == root or own.startswith(root + "/")):
        return None
    return mount / own[len(root) :].lstrip("/")


def _make_router_group(parent: Path, name: str) -> Path:
    path = parent / name
    with contextlib.suppress(FileExistsError):
        path.mkdir()
    return path


def _enable_v2(own: Path, router: Path) -> frozenset[str]:
    """The v2 controllers that could be enabled for the router's instance groups."""
    try:
        available = set((own / "cgroup.controllers").read_text().split())
    except OSError:
        return frozenset()
    enabled = set()
    for controller in V2_CONTROLLERS:
        if controller not in available:
            continue
        try:
            if controller not in (own / "cgroup.subtree_control").read_text().split():
                write(own / "cgroup.subtree_control", f"+{controller}")
            write(router / "cgroup.subtree_control", f"+{controller}")
        except OSError:
            continue
        enabled.add(controller)
    return frozenset(enabled)


def _hierarchies(name: str, mountinfo: str, proc_cgroup: str) -> tuple[list[Hierarchy], list[str]]:
    """The hierarchies the router can write, and why the others cannot be used."""
    (v2_mount, v1_mounts), (v2_own, v1_own) = _mounts(mountinfo), _own_paths(proc_cgroup)
    found: list[Hierarchy] = []
    problems: list[str] = []
    if v2_mount is not None and v2_own is not None:
        own = _inside(*v2_mount, v2_own)
        try:
            if own is None:
                raise OSError(errno.ENOENT, "our cgroup is outside the mount")
            router = _make_router_group(own, name)
            found.append(Hierarchy(2, v2_mount[0], router, frozenset({"v2"}) | _enable_v2(own, router)))
        except OSError as e:
            problems.append(f"v2 at {v2_mount[0]}: {e.strerror or e}")
    by_mount: dict[Path, set[str]] = {}
    for feature, (mount, _) in v1_mounts.items():
        by_mount.setdefault(mount, set()).add(feature)
    for mount, features in by_mount.items():
        any_feature = next(iter(features))
        own = _inside(mount, v1_mounts[any_feature][1], v1_own.get(any_feature, "/"))
        try:
            if own is None:
                raise OSError(errno.ENOENT, "our cgroup is outside the mount")
            found.append(Hierarchy(1, mount, _make_router_group(own, name), frozenset(features)))
        except OSError as e:
            problems.append(f"v1 {','.join(sorted(features))} at {mount}: {e.strerror or e}")
    return found, problems


def detect(
    state_dir: Path, *, mountinfo: str | None = None, proc_cgroup: str | None = None
) -> tuple[Cgroups | None, str]:
    """The cgroups this router can use, and one line saying what is in force (or why nothing is)."""
    try:
        mountinfo = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
        proc_cgroup = proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text()
    except OSError as e:
        return None, f"cgroups: cannot read /proc/self: {e.strerror}"
    found, problems = _hierarchies(router_group_name(state_dir), mountinfo, proc_cgroup)
    cgroups = Cgroups(found) if found else None
    if cgroups is None or not cgroups.features:
        why = "; ".join(problems) or "no cgroup hierarchy is mounted"
        if cgroups is not None:
            cgroups.close()
        return None, f"cgroups: none writable ({why})"
    return cgroups, f"cgroups: {cgroups.describe()}"


# the router's groups ---------------------------------------------------------------------------------------


@dataclass
class Cgroups:
    """The router's groups, and which hierarchy serves which feature."""

    hierarchies: list[Hierarchy]
    graveyard: list[Removable] = field(default_factory=list)  # killed, not yet removable

    def __post_init__(self) -> None:
        def pick(v2_feature: str, v1_feature: str) -> Hierarchy | None:
            for h in self.hierarchies:
                if h.version == 2 and v2_feature in h.features:
                    return h
            for h in self.hierarchies:
                if h.version == 1 and v1_feature in h.features:
                    return h
            return None

        self.memory = pick("memory", "memory")
        self.cpu = pick("cpu", "cpu")
        self.cpu_time = pick("v2", "cpuacct")
        self.pids = pick("pids", "pids")
        self.freezer = pick("v2", "freezer")
        self.killer = next((h for h in self.hierarchies if h.version == 2), None)
        chosen = (self.memory, self.cpu, self.cpu_time, self.pids, self.freezer, self.killer)
        self.used = [h for h in self.hierarchies if any(h is c for c in chosen)]

    @property
    def features(self) -> dict[str, Hierarchy]:
        named = {
            "memory": self.memory,
            "cpu": self.cpu,
            "cpu time": self.cpu_time,
            "pids": self.pids,
            "freeze": self.freezer,
            "kill": self.killer,
        }
        return {k: v for k, v in named.items() if v is not None}

    def missing(self, wanted: Iterable[str] = ("memory", "cpu", "pids", "freeze")) -> list[str]:
        return [w for w in wanted if w not in self.features]

    def describe(self) -> str:
        parts = [f"{name} v{h.version}" for name, h in self.features.items()]
        missing = self.missing()
        where = ", ".join(str(h.router) for h in self.used)
        text = ", ".join(parts) + (f"; not available: {', '.join(missing)}" if missing else "")
        return f"{text} (groups under {where})"

    @property
    def router_dirs(self) -> list[Path]:
        return [h.router for h in self.used]

    def sweep(self) -> int:
        """Kill and remove every instance group (also ones left by a previous life); returns how many
        groups are still there (members still exiting)."""
        return sweep_dirs(self.router_dirs) + self._bury()

    def _bury(self) -> int:
        self.graveyard = [g for g in self.graveyard if not g.remove()]
        return len(self.graveyard)

    def close(self) -> None:
        self.sweep()
        for h in self.hierarchies:
            with contextlib.suppress(OSError):
                h.router.rmdir()


def sweep_dirs(router_dirs: Iterable[Path]) -> int:
    """Kill every process in the instance groups under these router groups and remove the groups; returns
    how many could not be removed yet. Used at start and stop, and by the keeper on the router's death."""
    left = 0
    groups = [d for r in router_dirs if r.is_dir() for d in r.iterdir() if d.is_dir()]
    by_name: dict[str, list[Path]] = {}
    for d in groups:
        by_name.setdefault(d.name, []).append(d)
    for dirs in by_name.values():
        kill_dirs(dirs)
    for d in groups:
        try:
            d.rmdir()
        except OSError:
            left += 1
    return left


def kill_dirs(dirs: list[Path]) -> None:
    """SIGKILL every member of one instance's groups (given in all its hierarchies)."""
    v2 = [d for d in dirs if (d / "cgroup.kill").exists()]
    if v2:
        with contextlib.suppress(OSError):
            write(v2[0] / "cgroup.kill", "1")
        return
    freezer = next((d for d in dirs if (d / "freezer.state").exists()), None)
    _freeze_v1(freezer, True)
    try:
        for _ in range(10):  # without a freezer new members may appear while we kill: a few rounds
            pids = {p for d in dirs for p in members(d)}
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
    finally:
        _freeze_v1(freezer, False)


def _freeze_v1(freezer: Path | None, frozen: bool) -> None:
    if freezer is not None:
        with contextlib.suppress(OSError):
            write(freezer / "freezer.state", "FROZEN" if frozen else "THAWED")


def members(group: Path) -> list[int]:
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def optional(path: Path, value: str) -> None:
    """Write a setting the kernel may not have (swap accounting off, an older kernel)."""
    with contextlib.suppress(OSError):
        write(path, value)
