"""One function revision's instances: warm reuse, cold starts, provisioned instances, idle reaping.

Contract:

* `await pool.invoke(request)` runs one call on one instance, which nobody else uses meanwhile (one call
  per instance at a time, as on Lambda). It takes the most recently used idle instance (so warm ones stay
  warm and the rest age out) or launches one: a cold start. It always returns an `InvocationResult`; an init
  failure is the result of the call that triggered it. It raises only `DispatchError` when an instance
  could not be launched for a reason that is not the function's (the system's), and `CancelledError`.
  The pool does not count concurrency: the caller holds a slot for the call, which bounds busy instances.
* An instance that is dead after a call, or whose call was cancelled mid-way (its state is unknown), is
  stopped (its process group killed) and never reused; the next call launches a fresh one.
* `provisioned` instances (init type "provisioned-concurrency") are launched by `ensure_provisioned()`, are
  never reaped, and are re-launched when one dies. In a cluster the count is the cluster's: the pool keeps
  its `share` of it (`set_share`, router/core/shares.py). When they are all busy, calls spill over to
  on-demand instances, as on Lambda.
* `reap(now)` stops on-demand idle instances unused for `idle_timeout_s` (clock.monotonic), down to zero.
* `retire()`: a new revision replaced this one. Idle instances stop now; busy ones finish their call and
  are stopped after it. `aclose()` stops everything, busy ones included, and waits for the stops.

The instance factory is injected: `factory(spec, init_type, request_id)` returns a started instance or
raises `InitFailed` (whose result carries request_id, the call that paid for the failed cold start). The
dispatcher passes the invoker's `Instance.start`; unit tests pass fakes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from router.core.clock import Clock
from router.core.errors import DispatchError
from router.core.results import InvocationResult
from router.core.retry import Backoff
from router.core.shares import WHOLE, Share
from router.dispatch.registry import FunctionDefinition
from router.dispatch.tasks import TaskSet
from router.invoker.types import FunctionSpec, InitFailed, InvokeRequest

if TYPE_CHECKING:
    from router.dispatch.faults import FaultRun

log = logging.getLogger(__name__)

INIT_ON_DEMAND = "on-demand"
INIT_PROVISIONED = "provisioned-concurrency"
PROVISION_RETRY_MAX_S = 60.0


class InstanceLike(Protocol):
    @property
    def alive(self) -> bool: ...

    async def invoke(self, request: InvokeRequest) -> InvocationResult: ...

    async def stop(self) -> None: ...


InstanceFactory = Callable[[FunctionSpec, str, str], Awaitable[InstanceLike]]  # (spec, init_type, request_id)


@dataclass(eq=False)
class Member:
    instance: InstanceLike
    provisioned: bool
    last_used: float


class InstancePool:
    def __init__(
        self, definition: FunctionDefinition, factory: InstanceFactory, clock: Clock, tasks: TaskSet
    ):
        self.definition = definition
        self._factory = factory
        self._clock = clock
        self._tasks = tasks
        self._idle: list[Member] = []  # most recently used last
        self._any_provisioned = False  # a provisioned instance was ever launched here (else no search)
        self._busy: set[Member] = set()
        self._launching = 0
        self._launching_provisioned = 0
        self._provision_backoff = Backoff(2.0, PROVISION_RETRY_MAX_S)
        self._provision_retry_at = 0.0
        self.retired = False
        self._stops: set[asyncio.Task[None]] = set()
        self.share: Share = WHOLE

    # -- counts ---------------------------------------------------------------------------------------------

    @property
    def idle(self) -> int:
        return sum(1 for m in self._idle if m.instance.alive)

    @property
    def busy(self) -> int:
        return len(self._busy)

    @property
    def launching(self) -> int:
        return self._launching

    @property
    def provisioned(self) -> int:
        """Provisioned instances that exist (idle or busy)."""
        return sum(1 for m in (*self._idle, *self._busy) if m.provisioned)

    @property
    def empty(self) -> bool:
        return not self._idle and not self._busy and not self._launching

    def update(self, definition: FunctionDefinition) -> None:
        """Same revision, new dispatcher-side settings (provisioned count, idle timeout)."""
        self.definition = definition
        surplus = self.provisioned - self.share.of(definition.config.provisioned_concurrency)
        for member in [m for m in (*self._idle, *self._busy) if m.provisioned][: max(0, surplus)]:
            member.provisioned = False  # now on-demand: reaped when idle long enough
            member.last_used = self._clock.monotonic()

    def set_share(self, share: Share) -> None:
        """This node's part of the cluster's provisioned concurrency; `maintain()` launches the rest."""
        self.share = share
        self.update(self.definition)

    # -- calls ----------------------------------------------------------------------------------------------

    async def invoke(self, request: InvokeRequest, fault: FaultRun | None = None) -> InvocationResult:
        """`fault`: an injected fault (router/dispatch/faults.py) answers on the instance instead of the
        function; the instance is stopped after it when the fault kills (crash, timeout)."""
        member = self._take_idle()
        cold = member is None
        if member is None:
            try:
                member = await self._launch(provisioned=False, request_id=request.request_id)
            except InitFailed as e:
                e.result.cold = True
                return e.result
        self._busy.add(member)
        try:
            result = await (member.instance.invoke(request) if fault is None else fault.run(request))
        except BaseException as e:
            # Cancelled or broken mid-call: the instance's state is unknown, so it is never reused.
            self._busy.discard(member)
            self._discard(member)
            if isinstance(e, Exception):
                raise DispatchError(f"{self.definition.name}: instance failed: {e!r}") from e
            raise
        self._busy.discard(member)
        if fault is not None and fault.kills:
            self._discard(member)
        else:
            self._return(member)
        result.cold = cold
        if not cold:
            result.init_ms = None  # only the call that paid for the init reports it
        return result

    def _take_idle(self) -> Member | None:
        """Provisioned instances first (on-demand ones are the spill-over), most recently used first. Only
        the one taken is checked (this runs on every call); dead ones met are discarded, and maintain()
        sweeps the others."""
        while self._idle:
            member = self._pop_idle()
            if member.instance.alive:
                return member
            self._discard(member)
        return None

    def _pop_idle(self) -> Member:
        if self._any_provisioned and not self._idle[-1].provisioned:
            for i in range(len(self._idle) - 2, -1, -1):
                if self._idle[i].provisioned:
                    return self._idle.pop(i)
        return self._idle.pop()

    def _sweep_dead(self) -> None:
        dead = [m for m in self._idle if not m.instance.alive]
        if dead:
            self._idle = [m for m in self._idle if m not in dead]
            for member in dead:
                self._discard(member)

    def _return(self, member: Member) -> None:
        if self.retired or not member.instance.alive:
            self._discard(member)
            return
        member.last_used = self._clock.monotonic()
        self._idle.append(member)

    def _discard(self, member: Member) -> None:
        self._spawn_stop(member.instance, "stop")
        if member.provisioned and not self.retired:
            self._tasks.spawn(self.ensure_provisioned(), name=f"provision {self.definition.name}")

    def _spawn_stop(self, instance: InstanceLike, why: str) -> None:
        task = self._tasks.spawn(self._stop(instance), name=f"{why} {self.name}", finish=True)
        self._stops.add(task)  # aclose waits for these: a cancelled stop could leave a process behind
        task.add_done_callback(self._stops.discard)

    async def _stop(self, instance: InstanceLike) -> None:
        try:
            await instance.stop()
        except Exception:
            log.exception("%s: stopping an instance failed", self.definition.name)

    async def _launch(self, *, provisioned: bool, request_id: str = "") -> Member:
        init_type = INIT_PROVISIONED if provisioned else INIT_ON_DEMAND
        self._any_provisioned = self._any_provisioned or provisioned
        self._launching += 1
        try:
            instance = await self._factory(self.definition.spec, init_type, request_id)
        except (InitFailed, asyncio.CancelledError):
            raise
        except Exception as e:
            raise DispatchError(f"{self.definition.name}: could not launch an instance: {e!r}") from e
        finally:
            self._launching -= 1
        return Member(instance, provisioned, self._clock.monotonic())

    # -- provisioned instances ------------------------------------------------------------------------------

    async def ensure_provisioned(self) -> None:
        """Launch the provisioned instances that are missing, and wait for them to be initialised."""
        missing = self._missing_provisioned()
        if missing <= 0 or self.retired:
            return
        # Counted before the launches start, so a second ensure_provisioned meanwhile launches no extras.
        self._launching_provisioned += missing
        try:
            await asyncio.gather(*(self._launch_provisioned() for _ in range(missing)))
        finally:
            self._launching_provisioned -= missing

    def _missing_provisioned(self) -> int:
        target = self.share.of(self.definition.config.provisioned_concurrency)
        return target - self.provisioned - self._launching_provisioned

    async def _launch_provisioned(self) -> None:
        try:
            member = await self._launch(provisioned=True)
        except (InitFailed, DispatchError) as e:
            delay = self._provision_backoff.next()
            self._provision_retry_at = self._clock.monotonic() + delay
            log.warning("%s: provisioned instance failed to start (%s); retry in %.0f s", self.name, e, delay)
            return
        self._provision_backoff.reset()
        if self.retired:
            self._discard(member)
        else:
            self._idle.append(member)

    @property
    def name(self) -> str:
        return self.definition.name

    # -- upkeep ---------------------------------------------------------------------------------------------

    def maintain(self) -> None:
        """Reap idle on-demand instances past their idle timeout; re-launch missing provisioned ones."""
        now = self._clock.monotonic()
        self._sweep_dead()
        self.reap(now)
        if self._provision_retry_at <= now and not self.retired and self._missing_provisioned() > 0:
            self._tasks.spawn(self.ensure_provisioned(), name=f"provision {self.name}")

    def reap(self, now: float) -> int:
        timeout = self.definition.config.idle_timeout_s
        expired = [m for m in self._idle if not m.provisioned and now - m.last_used >= timeout]
        if expired:
            self._idle = [m for m in self._idle if m not in expired]
            for member in expired:
                self._spawn_stop(member.instance, "reap")
            log.info("%s: reaped %d idle instance(s)", self.name, len(expired))
        return len(expired)

    def retire(self) -> None:
        """A new revision took over: stop idle instances now, busy ones when their call ends."""
        self.retired = True
        idle, self._idle = self._idle, []
        for member in idle:
            self._spawn_stop(member.instance, "retire")

    async def aclose(self) -> None:
        """Stop every instance, busy ones included, and wait until every stop has finished."""
        self.retire()
        busy, self._busy = list(self._busy), set()
        for member in busy:
            self._spawn_stop(member.instance, "close")
        while self._stops:
            await asyncio.wait(list(self._stops))
