"""One instance's cgroup, in every hierarchy the router uses (router/invoker/cgroups.py), with the files of
its counters kept open.

* `InstanceGroup.create(cgroups, memory_mb)`: a new group, memory limited to memory_mb with no swap, at most
  `PIDS_MAX` tasks, CPU unlimited until `set_cpu(vcpus)`. A process joins it by writing its pid into each of
  `group.procs_files` (the child does that itself, before it runs anything of the function).
* `group.begin_call()` then `group.end_call() -> Reading`: peak memory of the call, OOM kills, CPU time,
  process-limit hits, as counters read from the group on descriptors kept open: the peak's reset at the
  start, four preads at the end. A call's baseline is the previous call's end, so what an idle instance
  uses before it is frozen counts to its next call (nothing is left out of the sum of its calls).
* `group.freeze()`, `group.thaw()`; `group.kill()` SIGKILLs every member (also those that left the process
  group: double forks, setsid); `group.remove()` removes it once empty (False while members exit);
  `group.bury()` leaves that to the router's next sweep.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import NamedTuple

from router.invoker.cgroups import (
    CPU_PERIOD_US,
    MIB,
    PIDS_MAX,
    Cgroups,
    Hierarchy,
    flat_keyed,
    kill_dirs,
    members,
    optional,
    write,
)


def _counter(fd: int | None, key: bytes) -> int:
    if fd is None:
        return 0
    try:
        return flat_keyed(os.pread(fd, 4096, 0), key)
    except (OSError, ValueError):
        return 0


class Reading(NamedTuple):
    """Counters of one call."""

    peak_bytes: int | None  # highest memory use of the group during the call
    oom_kills: int  # processes the kernel killed for memory during the call
    cpu_ns: int | None  # CPU time used by the group during the call
    pids_max_hits: int  # forks refused by the process limit during the call


class InstanceGroup:
    """One instance's group, in every hierarchy the router uses, with its counters' files kept open."""

    def __init__(
        self, owner: Cgroups, hierarchies: dict[int, Hierarchy], dirs: dict[int, Path], memory_mb: int
    ) -> None:
        self._owner = owner
        self._dirs = dirs
        self.dirs = list(dirs.values())
        self.procs_files = [str(d / "cgroup.procs") for d in self.dirs]
        self._fds: list[int] = []
        self._cpu_v2 = owner.cpu_time is not None and owner.cpu_time.version == 2
        self._last = Reading(None, 0, None, 0)
        self._primed = False  # _last read once (at the first call); each call's end is the next's start
        self._limit(memory_mb)
        self._peak = self._open(owner.memory, "memory.peak", "memory.max_usage_in_bytes", os.O_RDWR)
        self._ooms = self._open(owner.memory, "memory.events", "memory.oom_control")
        self._cpu = self._open(owner.cpu_time, "cpu.stat", "cpuacct.usage")
        self._pids = self._open(owner.pids, "pids.events", "pids.events")
        self._freeze = self._open(owner.freezer, "cgroup.freeze", "freezer.state", os.O_WRONLY)
        self._frozen = (b"1", b"0") if owner.freezer is not None and owner.freezer.version == 2 else None
        self.frozen = False
        self.freezes = 0  # times frozen (for benchmarks and tests)

    @classmethod
    def create(cls, owner: Cgroups, memory_mb: int) -> InstanceGroup:
        name = f"i-{uuid.uuid4().hex[:12]}"
        dirs: dict[int, Path] = {}
        try:
            for h in owner.used:
                dirs[id(h)] = h.router / name
                dirs[id(h)].mkdir()
            return cls(owner, {id(h): h for h in owner.used}, dirs, memory_mb)
        except BaseException:
            for d in dirs.values():
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise

    def _dir(self, h: Hierarchy) -> Path:
        return self._dirs[id(h)]

    def _open(self, h: Hierarchy | None, v2_name: str, v1_name: str, flags: int = os.O_RDONLY) -> int | None:
        if h is None:
            return None
        try:
            fd = os.open(self._dir(h) / (v2_name if h.version == 2 else v1_name), flags | os.O_CLOEXEC)
        except OSError:
            return None
        self._fds.append(fd)
        return fd

    def _limit(self, memory_mb: int) -> None:
        owner, limit = self._owner, str(memory_mb * MIB)
        if owner.memory is not None:
            d = self._dir(owner.memory)
            if owner.memory.version == 2:
                write(d / "memory.max", limit)
                optional(d / "memory.swap.max", "0")
                optional(d / "memory.oom.group", "1")  # an OOM kill takes the whole instance, as on Lambda
            else:
                write(d / "memory.limit_in_bytes", limit)
                optional(d / "memory.memsw.limit_in_bytes", limit)  # memory + swap: no swap
        if owner.pids is not None:
            write(self._dir(owner.pids) / "pids.max", str(PIDS_MAX))
        if owner.cpu is not None and owner.cpu.version == 1:
            write(self._dir(owner.cpu) / "cpu.cfs_period_us", str(CPU_PERIOD_US))

    @property
    def kernel_memory(self) -> bool:
        """The kernel enforces memory_mb (no sampling needed)."""
        return self._owner.memory is not None

    def set_cpu(self, vcpus: float | None) -> None:
        """A CFS quota of `vcpus` CPUs (None: unlimited)."""
        cpu = self._owner.cpu
        if cpu is None:
            return
        quota = -1 if vcpus is None else max(1000, round(vcpus * CPU_PERIOD_US))
        if cpu.version == 2:
            write(self._dir(cpu) / "cpu.max", f"{'max' if quota < 0 else quota} {CPU_PERIOD_US}")
        else:
            write(self._dir(cpu) / "cpu.cfs_quota_us", str(quota))

    # per call -------------------------------------------------------------------------------------------
    # Every call pays for these (a few preads and their parsing), so they are written for speed: no
    # context managers, no closures, each counter's key found with bytes.find.

    def begin_call(self) -> None:
        """The peak restarts at the current use; the other counters' baseline is the last call's end (what
        an idle instance uses between calls, before it is frozen, counts to its next call)."""
        if self._peak is not None:
            try:
                os.pwrite(self._peak, b"0", 0)  # v1: the peak restarts at the current use; v2: per descriptor
            except OSError:
                pass
        if not self._primed:
            self._primed = True
            self._last = self._read()

    def end_call(self) -> Reading:
        now, before = self._read(), self._last
        self._last = now
        cpu = now.cpu_ns - before.cpu_ns if now.cpu_ns is not None and before.cpu_ns is not None else None
        return Reading(
            now.peak_bytes,
            now.oom_kills - before.oom_kills,
            cpu,
            now.pids_max_hits - before.pids_max_hits,
        )

    def _read(self) -> Reading:
        peak: int | None = None
        if self._peak is not None:
            try:
                peak = int(os.pread(self._peak, 64, 0))
            except (OSError, ValueError):
                pass
        cpu: int | None = None
        if self._cpu is not None:
            try:
                data = os.pread(self._cpu, 4096, 0)
                cpu = flat_keyed(data, b"usage_usec") * 1000 if self._cpu_v2 else int(data)
            except (OSError, ValueError):
                pass
        return Reading(peak, _counter(self._ooms, b"oom_kill"), cpu, _counter(self._pids, b"max"))

    def usage_bytes(self) -> int | None:
        """The memory charged to the group now (read once per instance, when its init is over)."""
        h = self._owner.memory
        if h is None:
            return None
        try:
            return int(
                (self._dir(h) / ("memory.current" if h.version == 2 else "memory.usage_in_bytes")).read_text()
            )
        except (OSError, ValueError):
            return None

    # freezing, killing, removal ------------------------------------------------------------------------

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        if self._freeze is None or self.frozen == frozen:
            return
        value = (b"FROZEN", b"THAWED") if self._frozen is None else self._frozen
        try:
            os.write(self._freeze, value[0] if frozen else value[1])
        except OSError:
            return
        self.frozen = frozen
        self.freezes += frozen

    def members(self) -> list[int]:
        return members(self.dirs[0]) if self.dirs else []

    def kill(self) -> None:
        """SIGKILL every member, wherever it moved in the process tree, and leave the group thawed."""
        kill_dirs(self.dirs)
        self.thaw()

    def remove(self) -> bool:
        """Remove the group if it is empty; False while members are still exiting."""
        self.close()
        removed = True
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                removed = False
        return removed

    def bury(self) -> None:
        """Hand the group to the router, which removes it once its members are gone."""
        if not self.remove():
            self._owner.graveyard.append(self)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self._peak = self._ooms = self._cpu = self._pids = self._freeze = None
