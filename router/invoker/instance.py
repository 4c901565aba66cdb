"""One function instance: a process group speaking the Runtime API, with its limits and its meter.

The contract is in router/invoker/types.py. In short: `await Instance.start(spec, billing=...)` returns once
the runtime asked for its first event, or raises `InitFailed`; `await invoke(request)` runs one event and
always returns an `InvocationResult`; `await stop()` ends the whole group. One call at a time.

How limits are enforced during a call (all from event-loop callbacks; nothing here blocks the router):
* timeout: a timer at the deadline SIGKILLs the group and the call fails with Sandbox.Timeout;
* memory, in a cgroup (router/invoker/containment.py): the kernel keeps the instance within memory_mb; a
  kill by the kernel's OOM killer during the call fails it with Runtime.OutOfMemory, and the call's peak is
  the group's peak counter plus the resident memory charged elsewhere before the instance joined its group
  (pages shared with the zygote, libraries already cached: measured once at init). Without one: the RSS
  of the process tree is sampled every `memory_sample_s`;
  past memory_mb the group is killed and the call fails with Runtime.OutOfMemory. The peak (VmHWM, reset per
  call through clear_refs, summed over the tree) is checked once more when the answer arrives, so a short
  spike between samples counts too; it is the call's Max Memory Used. (A lone process is not walked for
  children again before TREE_WALK_S has passed; every sampler tick walks the tree.)
* exit: the leader exiting mid-call fails the call with Runtime.ExitError (the rest of the group is killed).
After any of these the instance is dead and the next call needs a fresh one. An instance whose processes
hit their limit (pids) during a call returns that call's result, then is killed: it is not reused. In a
cgroup, an instance is thawed when a call starts and frozen when it is idle again (`invoker.freeze`).

Its life is the state table of router/invoker/lifecycle.py (STARTING, IDLE, BUSY, KILLED, STOPPING, DEAD):
every change goes through `_move`, which refuses a move the table does not allow; `alive` and `busy` are
readings of the state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import msgspec

from router.config import BillingConfig
from router.core.errors import (
    FUNCTION_RESPONSE_TOO_LARGE,
    FUNCTION_UNHANDLED,
    RUNTIME_EXIT_ERROR,
    RUNTIME_INIT_ERROR,
    RUNTIME_INVALID_ENTRYPOINT,
    RUNTIME_OUT_OF_MEMORY,
    SANDBOX_FAILURE,
    SANDBOX_TIMEOUT,
)
from router.core.results import InvocationResult
from router.invoker import launch, lifecycle, metering, outcomes, procs
from router.invoker.containment import Containment, Sandbox
from router.invoker.lifecycle import BUSY, DEAD, IDLE, KILLED, STARTING, STOPPING, State
from router.invoker.outcomes import DEATHS, End, Ending
from router.invoker.process import InstanceProcess
from router.invoker.runtime_api import (
    Answer,
    Event,
    RuntimeApi,
    client_context_header,
    new_trace_id,
    too_large_payload,
)
from router.invoker.types import FunctionSpec, InitFailed, InvokeRequest
from router.invoker.zygote import Zygotes
from router.logs import CallLines

MIB = 1024 * 1024
# A call's memory covers the process tree as walked at its start. An instance that was a lone process at
# the last walk is walked again only this often (a walk is two /proc reads per process, on every call);
# the memory sampler walks it on each tick of a longer call.
TREE_WALK_S = 1.0
# The Runtime API's Unix socket, for the router's own Python and Node bootstraps (each removes it from its
# environment); AWS_LAMBDA_RUNTIME_API (TCP) is always set as well, and is what `provided` runtimes use.
UNIX_API_ENV = "_ROUTER_RUNTIME_API_UNIX"


class Instance:
    def __init__(
        self,
        spec: FunctionSpec,
        *,
        billing: BillingConfig,
        init_type: str,
        init_timeout_s: float,
        stop_grace_s: float,
        memory_sample_s: float,
        verify_peer: bool,
        zygotes: Zygotes | None = None,
        containment: Containment | None = None,
        batch: bool = True,
        log_calls: bool = True,
    ) -> None:
        self.spec = spec
        self._arn = spec.arn  # the unqualified ARN its events carry (made here, not on every call)
        self._batch = batch
        # START/output/END/REPORT on the daemon's log (router/logs.py); None: quiet.
        self._calls = CallLines(spec.name) if log_calls else None
        self._start_line: str | None = None  # START of the call in flight, until it is written
        self._zygotes = zygotes
        self._containment = containment
        self._box = Sandbox()  # this instance's cgroup and confinement (none until _init)
        self._cpu_ms: float | None = None  # CPU time of the last call, where a cgroup measures it
        self._billing = billing
        self._init_type = init_type
        self._init_timeout_s = init_timeout_s
        self._stop_grace_s = stop_grace_s
        self._memory_sample_s = memory_sample_s
        self._verify_peer = verify_peer
        self._limit_bytes = spec.memory_mb * MIB
        self._flog = logging.getLogger(f"router.function.{spec.name}")
        self._loop = asyncio.get_running_loop()
        self._proc: InstanceProcess | None = None
        self._procs: procs.Tree | None = None
        self._api: RuntimeApi | None = None
        self._address: str | None = None
        self._waiter: asyncio.Future[Ending] | None = None  # init or the call in flight
        self._log = metering.CallLog()
        self._request_id: str | None = None
        self._init_ms: float | None = None
        self._cold = False
        self._state = STARTING  # changed only by _move (router/invoker/lifecycle.py)
        self._last_used = time.monotonic()
        self._sampled_peak = 0  # bytes, this call
        self._last_peak = 0  # bytes, the last measured peak (a floor when a call dies before any sample)
        # Resident memory the cgroup's counters do not see: pages charged elsewhere before the instance
        # joined its group (the zygote's, shared after the fork; libraries already in the page cache).
        # Lambda's Max Memory Used counts them; added to each call's cgroup peak (measured once, at init).
        self._uncharged = 0
        self._members: list[int] = []  # the process tree, as of the call's start or the last sample
        self._members_at = -1.0  # loop time of the last walk of the tree
        self._sampler: asyncio.TimerHandle | None = None
        self.invocations = 0

    # ------------------------------------------------------------------------------------------------------
    # lifecycle

    @classmethod
    async def start(
        cls,
        spec: FunctionSpec,
        *,
        billing: BillingConfig,
        init_type: str = "on-demand",
        request_id: str = "",
        init_timeout_s: float = 10.0,
        stop_grace_s: float = 0.5,
        memory_sample_s: float = 0.01,
        verify_peer: bool = True,
        zygotes: Zygotes | None = None,
        containment: Containment | None = None,
        batch: bool = True,
        log_calls: bool = True,
    ) -> Instance:
        """Launch and initialise an instance; raises InitFailed (process gone) if init fails. With
        `zygotes`, a Python instance is forked from the zygote when it can be (router/invoker/zygote.py);
        with `containment`, it runs in its own cgroup and isolated as the router's policy says."""
        instance = cls(
            spec,
            billing=billing,
            init_type=init_type,
            init_timeout_s=init_timeout_s,
            stop_grace_s=stop_grace_s,
            memory_sample_s=memory_sample_s,
            verify_peer=verify_peer,
            zygotes=zygotes,
            containment=containment,
            batch=batch,
            log_calls=log_calls,
        )
        await instance._init(request_id)
        return instance

    async def _init(self, request_id: str) -> None:
        try:
            self._box = self._sandbox()
        except launch.LaunchError as e:
            self._move(DEAD)
            payload = _error(str(e), e.error_type)
            raise InitFailed(self._init_failure(request_id, 0.0, payload, e.error_type)) from None
        self._api = RuntimeApi(
            on_ready=lambda: self._settle(End.READY),
            on_init_error=lambda body, header: self._settle(End.INIT_ERROR, body=body, error_type=header),
            on_answer=self._on_answer,
            pids=self._tree if self._verify_peer else None,
        )
        # The router's own bootstraps also get a Unix socket (router/invoker/runtime_api.py), except in a
        # network namespace of their own, where the listener is made inside it.
        own_runtime = bool(launch.PYTHON.match(self.spec.runtime) or launch.NODE.match(self.spec.runtime))
        unix = own_runtime and self._box.listener is None
        try:
            address = self._address = await self._api.start(sock=self._box.listener, unix=unix)
        except BaseException:
            self._box.release()
            self._move(DEAD)
            raise
        self._waiter = self._loop.create_future()
        t0 = time.perf_counter()
        try:
            plan = launch.build(
                self.spec, runtime_api=address, init_type=self._init_type, log_stream=launch.log_stream_name()
            )
            if self._api.unix_path is not None:
                plan = msgspec.structs.replace(plan, env={**plan.env, UNIX_API_ENV: self._api.unix_path})
            self._proc = await self._launch(plan)
            self._box.launched(self._proc.pid)
            self._procs = procs.Tree(self._proc.pid)
            self._api.launched()
        except (launch.LaunchError, OSError) as e:
            self._api.close()
            self._box.release()
            self._move(DEAD)
            error_type = getattr(e, "error_type", RUNTIME_INVALID_ENTRYPOINT)
            raise InitFailed(
                self._init_failure(request_id, 0.0, _error(str(e), error_type), error_type)
            ) from None
        except BaseException:
            self._api.close()
            self._box.release()
            self._move(DEAD)
            raise
        timer = self._loop.call_later(self._init_timeout_s, self._settle, End.TIMEOUT)
        try:
            ending = await self._waiter
        except BaseException:
            await self._abort_init()
            raise
        finally:
            timer.cancel()
        init_ms = (ending.at - t0) * 1000
        if ending.kind is End.READY:
            if self._batch:  # after init, whose many wake-ups (fork, imports, connect) should not wait
                batch_scheduling(self._proc.pid)
            self._init_ms = init_ms
            self._last_peak = self._peak(self._tree())
            charged = self._box.memory_usage() if self._box.kernel_memory else None
            self._uncharged = max(0, self._last_peak - charged) if charged is not None else 0
            self._cold = self._init_type == "on-demand"
            self._last_used = time.monotonic()
            if not self._cold:
                self._log = metering.CallLog()
            # The runtime may have exited right after asking for its first event: then it starts dead.
            self._move(IDLE if self._proc is not None and self._proc.running else DEAD)
            if self._state is IDLE:
                self._box.ready()  # init is over: the CPU quota applies, and it is frozen until called
            return
        await self._abort_init()
        payload, error_type = self._init_error_payload(ending, request_id)
        raise InitFailed(self._init_failure(request_id, init_ms, payload, error_type))

    def _sandbox(self) -> Sandbox:
        if self._containment is None:
            if not self.spec.network:
                raise launch.LaunchError("network: false needs the router's containment", SANDBOX_FAILURE)
            return Sandbox()
        try:
            return self._containment.sandbox(self.spec)
        except OSError as e:
            raise launch.LaunchError(f"cannot make the instance's sandbox: {e}", SANDBOX_FAILURE) from None

    async def _launch(self, plan: launch.Launch) -> InstanceProcess:
        box = self._box
        if self._zygotes is not None:
            forked = await self._zygotes.spawn(
                self.spec,
                plan,
                on_line=self._on_line,
                on_exit=self._on_exit,
                confine=box.confine,
                on_kill=box.kill,
            )
            if forked is not None:
                return forked
        return InstanceProcess.spawn(
            plan, on_line=self._on_line, on_exit=self._on_exit, confine=box.confine, on_kill=box.kill
        )

    def _init_error_payload(self, ending: Ending, request_id: str) -> tuple[bytes, str]:
        if ending.kind is End.INIT_ERROR:
            return outcomes.function_error(ending.body, ending.error_type)
        if ending.kind is End.TIMEOUT:
            return outcomes.init_timeout_payload(self._init_timeout_s), RUNTIME_INIT_ERROR
        payload = outcomes.exit_payload(request_id, ending.returncode)
        return payload, RUNTIME_EXIT_ERROR

    def _init_failure(
        self, request_id: str, init_ms: float, payload: bytes, error_type: str
    ) -> InvocationResult:
        billed = metering.billed_ms(init_ms, self._billing.granularity_ms)
        report = metering.init_report_line(init_ms, error_type)
        self._log.add_text(report)
        result = InvocationResult(
            request_id=request_id,
            payload=payload,
            function_error=FUNCTION_UNHANDLED,
            error_type=error_type,
            init_ms=init_ms,
            billed_ms=billed,
            memory_mb=self.spec.memory_mb,
            cost_usd=metering.cost_usd(billed, self.spec.memory_mb, self._billing),
            cold=True,
            log=self._log.take(),
        )
        if self._calls is not None:
            self._calls.emit([report], request_id or None, metering.report_fields(result, self.spec.name))
        return result

    async def stop(self) -> None:
        """SIGTERM to the group, up to stop_grace_s for the leader to exit, then SIGKILL. Idempotent. A call
        in flight ends with Runtime.ExitError, and that call's end makes the instance DEAD."""
        if self._state is IDLE:
            self._move(STOPPING)
        elif self._state is BUSY:
            self._move(KILLED)
        proc = self._proc
        if proc is not None and proc.running:
            self._box.thaw()  # a frozen process cannot act on SIGTERM
            proc.kill(signal.SIGTERM)
            await self._wait_exit(self._stop_grace_s)
            proc.kill(signal.SIGKILL)
        await self._abort()
        if self._state is STOPPING:
            self._move(DEAD)

    async def _abort_init(self) -> None:
        try:
            await self._abort()
        finally:
            self._move(DEAD)

    async def _abort(self) -> None:
        """Kill the group, wait (boundedly) for the leader, release everything."""
        proc = self._proc
        if proc is not None:
            proc.kill(signal.SIGKILL)
            if not await self._wait_exit(5.0):
                self._flog.error("instance %s did not exit after SIGKILL; abandoning it", proc.pid)
            else:
                proc.close()
        if self._api is not None:
            self._api.close()
        if self._procs is not None:
            self._procs.close()
        self._box.release()

    async def _wait_exit(self, limit_s: float) -> bool:
        proc = self._proc
        if proc is None or not proc.running:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(proc.exited), limit_s)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------------------------------------------
    # state

    @property
    def state(self) -> State:
        return self._state

    @property
    def alive(self) -> bool:
        """IDLE or BUSY: it can take a call now, or after the one in flight."""
        return self._state in lifecycle.ALIVE

    @property
    def busy(self) -> bool:
        """A call is in flight (BUSY, or KILLED while that call returns): another one is refused."""
        return self._state in lifecycle.IN_CALL

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def last_used(self) -> float:
        """time.monotonic() of the end of the last call (or of init)."""
        return self._last_used

    @property
    def address(self) -> str | None:
        """The instance's AWS_LAMBDA_RUNTIME_API (host:port)."""
        return self._address

    @property
    def unix_address(self) -> str | None:
        """The Runtime API's Unix socket, offered to the router's own Python and Node runtimes (None for
        `provided`, which speaks to `address` only)."""
        return self._api.unix_path if self._api is not None else None

    @property
    def init_ms(self) -> float | None:
        return self._init_ms

    @property
    def exited(self) -> asyncio.Future[int | None]:
        """Resolves with the exit status once the instance's process has exited (for an owner that must
        know of a death outside a call: router/invoker/worker.py)."""
        if self._proc is None:
            done: asyncio.Future[int | None] = self._loop.create_future()
            done.set_result(None)
            return done
        return self._proc.exited

    def _move(self, to: State) -> None:
        """The one way the state changes; raises lifecycle.InvalidTransition for a move the table refuses."""
        self._state = lifecycle.move(self._state, to)

    def _tree(self) -> list[int]:
        return self._procs.members() if self._procs is not None else []

    def _walk(self) -> None:
        self._members = self._tree()
        self._members_at = self._loop.time()

    def _peak(self, members: list[int]) -> int:
        return self._procs.peak_bytes(members) if self._procs is not None else 0

    # ------------------------------------------------------------------------------------------------------
    # callbacks from the Runtime API and the process

    def _settle(self, kind: End, **fields: object) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(Ending(kind=kind, at=time.perf_counter(), **fields))  # type: ignore[arg-type]

    def _on_answer(self, answer: Answer) -> None:
        if answer.request_id == self._request_id:
            self._settle(answer.kind, body=answer.body, error_type=answer.error_type)

    def _on_exit(self, returncode: int | None) -> None:
        self._settle(End.EXIT, returncode=returncode)
        # STARTING: init sees the exit; KILLED, STOPPING: the call or the stop() in progress moves on.
        if self._state is IDLE:
            self._move(DEAD)
            self._box.release()
        elif self._state is BUSY:
            self._move(KILLED)
        if self._api is not None:
            self._api.close()
        if self._procs is not None:
            self._procs.close()

    def _on_line(self, line: bytes) -> None:
        self._log.add(line)
        if self._calls is not None:
            text = line.decode("utf-8", "replace").rstrip("\r")
            start, self._start_line = self._start_line, None
            self._calls.emit([start, text] if start else [text], self._request_id)

    def _watch(self, deadline: float) -> None:
        """One timer per call, for both limits: fires every memory_sample_s and exactly at the deadline."""
        self._sampler = None
        if self._waiter is None or self._waiter.done():
            return
        if self._loop.time() >= deadline:
            if not self._box.kernel_memory:
                self._sampled_peak = max(self._sampled_peak, self._peak(self._members))
            self._kill()
            self._settle(End.TIMEOUT)
            return
        if self._box.kernel_memory:  # the kernel enforces memory: only the deadline to watch
            self._schedule_watch(deadline)
            return
        self._walk()
        rss = procs.rss_bytes(self._members)
        self._sampled_peak = max(self._sampled_peak, rss)
        if rss > self._limit_bytes:
            self._kill()
            self._settle(End.OOM)
            return
        self._schedule_watch(deadline)

    def _schedule_watch(self, deadline: float) -> None:
        at = deadline if self._box.kernel_memory else min(self._loop.time() + self._memory_sample_s, deadline)
        self._sampler = self._loop.call_at(at, self._watch, deadline)

    def _kill(self) -> None:
        # Dead from now on, not from when the exit is noticed: the pool must never hand it out again.
        if self._state is BUSY:
            self._move(KILLED)
        if self._proc is not None:
            self._proc.kill(signal.SIGKILL)

    # ------------------------------------------------------------------------------------------------------
    # invoke

    async def invoke(self, request: InvokeRequest) -> InvocationResult:
        if self._state is not IDLE:
            if self._state in lifecycle.IN_CALL:
                raise RuntimeError(f"instance {self.pid} of {self.spec.name} is busy: one call at a time")
            return self._dead_result(request)
        self._move(BUSY)
        try:
            return await self._run(request)
        finally:
            self._move(IDLE if self._state is BUSY else DEAD)
            self._request_id = None
            self._last_used = time.monotonic()
            if self._state is IDLE:
                self._box.idle()  # frozen until the next call
            else:
                self._box.release()

    async def _run(self, request: InvokeRequest) -> InvocationResult:
        assert self._api is not None and self._proc is not None
        rid = request.request_id
        self._request_id = rid
        start = metering.start_line(rid, self.spec.version)
        self._log.add_text(start)
        self._start_line = start  # written with the call's first output line, or with its END
        self._box.call_started()
        if not self._box.kernel_memory:
            if len(self._members) != 1 or self._loop.time() - self._members_at > TREE_WALK_S:
                self._walk()
            if self._procs is not None:
                self._procs.reset_peaks(self._members)
        self._sampled_peak = 0
        waiter = self._waiter = self._loop.create_future()
        timeout = self.spec.timeout_s
        self._schedule_watch(self._loop.time() + timeout)
        t0 = time.perf_counter()
        self._api.deliver(
            Event(
                request_id=rid,
                payload=request.payload,
                deadline_ms=int(time.time() * 1000 + timeout * 1000),
                function_arn=request.function_arn or self._arn,
                trace_id=request.trace_id or new_trace_id(),
                client_context=client_context_header(request.client_context),
                cognito_identity=request.cognito_identity,
            )
        )
        self._box.thaw()  # after the event is in its socket: the runtime wakes once, with its event there
        try:
            ending = await waiter
        except BaseException:
            self._kill()  # cancelled mid-call: the instance's state is unknown, so it cannot be reused
            raise
        finally:
            if self._sampler is not None:
                self._sampler.cancel()
                self._sampler = None
        self.invocations += 1
        return await self._finish(request, ending, (ending.at - t0) * 1000)

    async def _finish(self, request: InvokeRequest, ending: Ending, duration_ms: float) -> InvocationResult:
        assert self._proc is not None and self._api is not None
        rid = request.request_id
        if ending.kind not in DEATHS:
            self._proc.drain()
        ending = self._meter(ending)
        if ending.kind in DEATHS:
            self._api.withdraw()
            await self._wait_exit(1.0)  # SIGKILLed already: returns in a few ms with the group gone
            self._proc.drain()
        payload, error_type, status = self._classify(rid, ending)
        cold, init_ms = self._cold, (self._init_ms if self._cold else None)
        self._cold = False
        billed = metering.billed_ms(duration_ms + (init_ms or 0.0), self._billing.granularity_ms)
        result = InvocationResult(
            request_id=rid,
            payload=payload,
            function_error=FUNCTION_UNHANDLED if error_type is not None else None,
            error_type=error_type,
            duration_ms=duration_ms,
            billed_ms=billed,
            init_ms=init_ms,
            memory_mb=self.spec.memory_mb,
            max_memory_mb=metering.memory_mb_used(self._sampled_peak or self._last_peak),
            cpu_ms=self._cpu_ms,
            cost_usd=metering.cost_usd(billed, self.spec.memory_mb, self._billing),
            cold=cold,
        )
        tail = [msgspec.json.decode(payload)["errorMessage"]] if ending.kind is End.TIMEOUT else []
        tail += [metering.end_line(rid), metering.report_line(result, status=status)]
        for line in tail:
            self._log.add_text(line)
        result.log = self._log.take()
        start, self._start_line = self._start_line, None
        if self._calls is not None:
            lines = [start, *tail] if start else tail
            self._calls.emit(lines, rid, metering.report_fields(result, self.spec.name))
        return result

    def _meter(self, ending: Ending) -> Ending:
        """Memory and CPU of the call that just ended; an OOM kill by the kernel, or (without a cgroup) a
        peak over memory_mb, makes it an out-of-memory ending (and kills the instance)."""
        reading = self._box.call_ended()
        self._cpu_ms = reading.cpu_ns / 1e6 if reading is not None and reading.cpu_ns is not None else None
        if reading is not None and reading.pids_max_hits and self._state is BUSY:
            self._kill()  # it hit its process limit: whatever it left behind goes with it
        if reading is not None and self._box.kernel_memory:
            over = reading.oom_kills > 0 and ending.kind is not End.TIMEOUT
            # as on AWS, never past the limit
            peak = min((reading.peak_bytes or 0) + self._uncharged, self._limit_bytes)
        elif ending.kind in DEATHS:
            return ending
        else:
            peak = max(self._sampled_peak, self._peak(self._members))
            over = peak > self._limit_bytes
        self._sampled_peak = self._last_peak = peak
        if over and ending.kind is not End.OOM:
            self._kill()
            return Ending(kind=End.OOM, at=ending.at)
        return ending

    def _classify(self, rid: str, ending: Ending) -> tuple[bytes, str | None, metering.ReportStatus | None]:
        """(payload, errorType or None, REPORT status or None) of a finished call."""
        match ending.kind:
            case End.RESPONSE:
                return ending.body, None, None
            case End.ERROR:
                payload, error_type = outcomes.function_error(ending.body, ending.error_type)
                return payload, error_type, None
            case End.TOO_LARGE:
                return too_large_payload(rid), FUNCTION_RESPONSE_TOO_LARGE, None
            case End.TIMEOUT:
                message = outcomes.timeout_message(rid, self.spec.timeout_s)
                return outcomes.timeout_payload(message), SANDBOX_TIMEOUT, "timeout"
            case End.OOM:
                return outcomes.oom_payload(rid), RUNTIME_OUT_OF_MEMORY, "error"
            case _:
                return outcomes.exit_payload(rid, ending.returncode), RUNTIME_EXIT_ERROR, "error"

    def _dead_result(self, request: InvokeRequest) -> InvocationResult:
        returncode = self._proc.returncode if self._proc is not None else None
        return InvocationResult(
            request_id=request.request_id,
            payload=outcomes.exit_payload(request.request_id, returncode),
            function_error=FUNCTION_UNHANDLED,
            error_type=RUNTIME_EXIT_ERROR,
            memory_mb=self.spec.memory_mb,
        )

    def __repr__(self) -> str:
        return f"<Instance {self.spec.name} pid={self.pid} {self._state}>"


def batch_scheduling(pid: int) -> None:
    """Run the process (and what it starts later) under SCHED_BATCH: same CPU share, but its wake-ups do not
    preempt the task that woke it. Every call wakes the instance with a write from the daemon; at normal
    policy the kernel switches to the instance in the middle of that write, and the daemon (with the next
    callers' requests) waits until it is done. A process that is gone or not ours is left alone."""
    try:
        os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def _error(message: str, error_type: str) -> bytes:
    return msgspec.json.encode({"errorMessage": message, "errorType": error_type})
