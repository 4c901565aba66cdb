"""How the router contains its instances: kernel limits, isolation, and nothing left behind when it dies.

`Containment.start(settings, state_dir, config_dir)` runs once per router start (settings: InvokerConfig):

1. it kills what a previous life on this state_dir left running (router/invoker/leftovers.py);
2. cgroups (`invoker.cgroups`): `auto` uses what the router can write (router/invoker/cgroups.py), `off`
   none, `required` refuses to start (ContainmentError) without memory, CPU, pids and freezing; logged in
   one line, with the fallback when there are none (memory by RSS sampling, no CPU or process limit, no
   freezing);
3. isolation (`invoker.isolation`, router/invoker/isolation.py): `auto` isolates when the router runs as
   root and can create mount namespaces, `off` never, `required` refuses to start without it; one line;
4. it records the router in state_dir and starts the keeper, which kills the instances if the router dies;
5. in a child subreaper (`router serve`), orphaned descendants are reaped (and recorded while they run)
   every second.

`containment.functions(specs)` tells it the router's functions (isolation hides each one's code from the
others); `containment.sandbox(spec)` makes one instance's `Sandbox`; `await containment.aclose()` kills and
removes what is left and stops the keeper.

A `Sandbox` is one instance's share: `confine` is the plan its process carries out before the function runs
(runtimes/confine.py: join the cgroups, isolate); then `launched(pid)`, `ready()` (init is over: the CPU
quota applies, and it is frozen), `call_started()` (counters read), `thaw()` (once the
event is handed over), `call_ended() -> Reading | None`,
`idle()` (frozen again), `thaw()`, `kill()` (every process in its cgroup), `release()` (its group removed
and its record dropped; idempotent). `Sandbox()` alone contains nothing (no cgroup, no isolation): an
instance started without a Containment behaves as before.

CPU: `cpu: lambda` gives memory_mb / 1769 vCPUs up to 1769 MB, then linearly up to 6 vCPUs at 10240 MB
(Lambda's two published points); `unlimited` none; a number, that many vCPUs. Init runs without a quota
(on Lambda the init phase is measured to get unthrottled CPU; this is not in AWS's documentation).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.config import InvokerConfig
from router.core.spawned import SPAWNED
from router.invoker import cgroups, isolation, leftovers, netns, procs
from router.invoker.cgroups import Cgroups
from router.invoker.instance_cgroup import InstanceGroup, Reading
from router.invoker.types import FunctionSpec

log = logging.getLogger("router.invoker")

ONE_VCPU_MB, MAX_MB, MAX_VCPUS = 1769, 10240, 6.0
ORPHAN_SWEEP_S = 1.0
KEEPER_EXIT_S = 2.0


class ContainmentError(OSError):
    """A required mechanism is not available: the router does not start."""


def lambda_vcpus(memory_mb: int) -> float:
    if memory_mb <= ONE_VCPU_MB:
        return memory_mb / ONE_VCPU_MB
    return 1 + (memory_mb - ONE_VCPU_MB) * (MAX_VCPUS - 1) / (MAX_MB - ONE_VCPU_MB)


def vcpus(cpu: str | float | None, default: str | float, memory_mb: int) -> float | None:
    """The CPU quota of a function (None: unlimited)."""
    chosen = default if cpu is None else cpu
    if chosen == "unlimited":
        return None
    return lambda_vcpus(memory_mb) if chosen == "lambda" else float(chosen)


class Sandbox:
    """One instance's cgroup, confinement plan and record (all optional)."""

    def __init__(
        self,
        group: InstanceGroup | None = None,
        confine: dict[str, Any] | None = None,
        *,
        vcpus: float | None = None,
        freeze_after_s: float | None = None,
        records: leftovers.Records | None = None,
        network: tuple[socket.socket, int] | None = None,
    ) -> None:
        self.group = group
        self.confine = confine or {}
        # network: false: the Runtime API's listener inside the instance's own namespace, and the namespace
        self.listener: socket.socket | None = network[0] if network is not None else None
        self._netns: int | None = network[1] if network is not None else None
        if self._netns is not None:
            self.confine["netns_fd"] = self._netns
        self._vcpus = vcpus
        self._freeze_after = freeze_after_s if group is not None else None
        self._records = records
        self._pgid: int | None = None
        self._idle_since: float | None = None  # loop time the instance became idle; None while in a call
        self._freezer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # kept: get_running_loop is a getpid() each

    @property
    def kernel_memory(self) -> bool:
        return self.group is not None and self.group.kernel_memory

    def launched(self, pid: int) -> None:
        self._close_netns()  # the instance is in it now (the listener keeps it too)
        self._pgid = pid
        if self._records is not None:
            self._records.group(pid)

    def ready(self) -> None:
        if self.group is not None:
            self.group.set_cpu(self._vcpus)
            self.idle()

    def call_started(self) -> None:
        """Counters read before the call; still frozen (`thaw()` once the event is handed over)."""
        self._idle_since = None
        if self.group is not None:
            self.group.begin_call()

    def call_ended(self) -> Reading | None:
        return self.group.end_call() if self.group is not None else None

    def memory_usage(self) -> int | None:
        """Bytes charged to the instance's memory cgroup now (None without one)."""
        return self.group.usage_bytes() if self.group is not None else None

    def idle(self) -> None:
        """The instance is idle: frozen now, or once idle for freeze_after_s (one timer at a time, so
        back-to-back calls pay for no timer each)."""
        if self._freeze_after is None or self.group is None:
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        if self._freeze_after <= 0:
            self.group.freeze()
        elif self._freezer is None:
            self._freezer = loop.call_later(self._freeze_after, self._freeze_if_idle)

    def _freeze_if_idle(self) -> None:
        self._freezer = None
        if self._idle_since is None or self.group is None or self._freeze_after is None:
            return  # in a call (its end schedules again), or released
        due = self._idle_since + self._freeze_after
        assert self._loop is not None  # set by idle(), which armed this timer
        if self._loop.time() >= due:
            self.group.freeze()
        else:
            self._freezer = self._loop.call_at(due, self._freeze_if_idle)

    def thaw(self) -> None:
        if self.group is not None:
            self.group.thaw()

    def kill(self) -> None:
        if self.group is not None:
            self.group.kill()

    def _close_netns(self) -> None:
        if self._netns is not None:
            os.close(self._netns)
            self._netns = None

    def release(self) -> None:
        self._close_netns()
        if self._freezer is not None:
            self._freezer.cancel()
            self._freezer = None
        group, self.group = self.group, None
        if group is not None:
            group.kill()
            _remove_soon(group)
        if self._records is not None and self._pgid is not None:
            self._records.group_gone(self._pgid)
            self._pgid = None


def _remove_soon(group: InstanceGroup, tries: int = 200) -> None:
    """Remove a killed group once its members have exited (every 10 ms, up to 2 s; after that the router
    removes it when it next sweeps)."""
    if group.remove():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None or tries <= 0:
        group.bury()
    else:
        loop.call_later(0.01, _remove_soon, group, tries - 1)


class Containment:
    """The router's containment policy and what it holds: cgroups, isolation, records, keeper."""

    def __init__(
        self,
        settings: InvokerConfig,
        state_dir: Path,
        cgroups_in_force: Cgroups | None,
        isolated: isolation.Isolation | None,
    ) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.cgroups = cgroups_in_force
        self.isolation = isolated
        self.records = leftovers.Records(state_dir)
        self.records.router(cgroups_in_force.router_dirs if cgroups_in_force is not None else [])
        self._keeper: subprocess.Popen[bytes] | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    @classmethod
    def start(cls, settings: InvokerConfig, state_dir: Path, config_dir: Path | None = None) -> Containment:
        """Clean up after a previous life, detect, log, record; raises ContainmentError (see the module)."""
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        killed = leftovers.clean(state_dir)
        if killed:
            log.warning("killed %d leftovers of the previous router on %s", killed, state_dir)
        found = _cgroups(settings, state_dir)
        if found is not None:
            found.sweep()
        isolated = _isolation(settings, state_dir, config_dir)
        containment = cls(settings, state_dir, found, isolated)
        containment._start_keeper()
        return containment

    # per instance --------------------------------------------------------------------------------------

    def functions(self, specs: list[FunctionSpec]) -> None:
        if self.isolation is not None:
            self.isolation.functions(specs)
        self._schedule_sweep()

    def sandbox(self, spec: FunctionSpec) -> Sandbox:
        """Raises OSError when the instance's cgroup or network namespace cannot be made, or when the
        function asks for no network where isolation is not available."""
        if not spec.network and self.isolation is None:
            raise OSError(errno.EPERM, "network: false needs isolation (the router running as root)")
        network = netns.isolated_listener() if not spec.network else None
        try:
            group = InstanceGroup.create(self.cgroups, spec.memory_mb) if self.cgroups is not None else None
        except BaseException:
            if network is not None:
                network[0].close()
                os.close(network[1])
            raise
        plan: dict[str, Any] = {"cgroups": group.procs_files} if group is not None else {}
        if self.isolation is not None:
            plan |= self.isolation.plan(spec)
        return Sandbox(
            group,
            plan,
            vcpus=vcpus(spec.cpu, self.settings.cpu, spec.memory_mb),
            freeze_after_s=self.settings.freeze_after_ms / 1000 if self.settings.freeze else None,
            records=self.records,
            network=network,
        )

    # orphans and the keeper ------------------------------------------------------------------------------

    def _schedule_sweep(self) -> None:
        if self._sweeper is None and procs.is_subreaper():
            self._sweeper = asyncio.get_running_loop().call_later(ORPHAN_SWEEP_S, self._sweep_orphans)

    def _sweep_orphans(self) -> None:
        self._sweeper = None
        for pid in procs.orphans(SPAWNED):
            if self.records.stray(pid):
                log.info(
                    "pid %d left its instance's process tree: it goes with its cgroup or the router", pid
                )
        for pid in self.records.strays():
            if leftovers.start_time(pid) is None:
                self.records.stray_gone(pid)
        self._schedule_sweep()

    def _start_keeper(self) -> None:
        package_parent = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
        try:
            self._keeper = subprocess.Popen(
                [sys.executable, "-m", "router.invoker.leftovers", str(self.state_dir.resolve())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                cwd="/",
                env={**os.environ, "PYTHONPATH": path},
                start_new_session=True,
            )
        except OSError as e:
            log.warning("could not start the keeper (%s): leftovers are cleaned at the next start only", e)
            return
        SPAWNED.add(self._keeper.pid)

    async def aclose(self) -> None:
        """Kill and remove every instance group and stray, drop the records, stop the keeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pid in self.records.strays():
            if leftovers.start_time(pid) is not None:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if self.cgroups is not None:
            cgroups_in_force = self.cgroups
            await _until(lambda: cgroups_in_force.sweep() == 0, 2.0)
            self.cgroups.close()
        if procs.is_subreaper():
            procs.orphans(SPAWNED)
        self.records.close()
        await self._stop_keeper()

    async def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is None:
            return
        if keeper.stdin is not None:
            with contextlib.suppress(OSError):  # the keeper is gone already: nothing to tell
                keeper.stdin.write(leftovers.STOPPED)  # a clean stop: it exits without cleaning anything
            with contextlib.suppress(OSError):
                keeper.stdin.close()
        await _until(lambda: keeper.poll() is not None, KEEPER_EXIT_S)
        if keeper.poll() is None:
            keeper.kill()
            keeper.wait()
        SPAWNED.discard(keeper.pid)


async def _until(done: Callable[[], bool], limit_s: float) -> None:
    """Poll `done` every 10 ms, for up to limit_s (what it waits for gives no notice: a process exiting)."""
    for _ in range(max(1, int(limit_s / 0.01))):
        if done():
            return
        await asyncio.sleep(0.01)


def _cgroups(settings: InvokerConfig, state_dir: Path) -> Cgroups | None:
    if settings.cgroups_mode == "off":
        log.info(
            "cgroups: off (invoker.cgroups); memory by RSS sampling, no CPU or process limit, no freezing"
        )
        return None
    found, line = cgroups.detect(state_dir)
    missing = found.missing() if found is not None else ["memory", "cpu", "pids", "freeze"]
    if settings.cgroups_mode == "required" and missing:
        if found is not None:
            found.close()
        raise ContainmentError(
            f"invoker.cgroups is 'required' but {', '.join(missing)} cannot be had: {line}"
        )
    if found is None:
        log.warning("%s; memory by RSS sampling, no CPU or process limit, no freezing", line)
    else:
        fallback = "; memory by RSS sampling" if found.memory is None else ""
        log.info("%s%s", line, fallback)
    return found


def _isolation(
    settings: InvokerConfig, state_dir: Path, config_dir: Path | None
) -> isolation.Isolation | None:
    if settings.isolation_mode == "off":
        log.info(
            "isolation: off (invoker.isolation); functions run as the router's user and see what it sees"
        )
        return None
    why = isolation.probe()
    if why is not None:
        if settings.isolation_mode == "required":
            raise ContainmentError(f"invoker.isolation is 'required' but {why}")
        log.warning("isolation: off (%s); functions run as the router's user and see what it sees", why)
        return None
    log.info(
        "isolation: each function runs as its own uid (from %d), sees only its code and runtime, "
        "private /tmp, /proc of its own uid",
        isolation.UID_BASE,
    )
    return isolation.Isolation(state_dir=state_dir, config_dir=config_dir)
