"""Fault injection: seeded, repeatable faults in function calls and in source deliveries (docs/record.md).

Off unless a function or a source has `faults:` in the config, or they are set at run time
(`PUT /inspect/faults`, `router faults set`). Never in the default config.

* Function faults are drawn in the dispatcher for every call (`draw(function)`): at most one of throttle,
  crash, timeout and error (one uniform number against their cumulative rates), plus added latency (a second
  number against `latency_ms.p`). What the caller then gets is what the real fault gives: a throttle is a
  `Throttled` dispatch error (synchronous callers get 429 TooManyRequestsException, asynchronous events are
  retried as after a real throttle); a timeout holds the instance for the function's timeout, then answers
  Lambda's Sandbox.Timeout error and stops the instance; a crash answers Runtime.ExitError ("signal: killed")
  and stops the instance; an error answers an Unhandled function error in Lambda's shape. The function's
  code does not run for those (`FaultRun`, run by the pool on the instance the call took).
* Source faults are drawn per delivery of a route (`source_draw(source)`): `drop_ack` (the delivery
  succeeded but the source is told it failed, so it delivers again: a `FaultInjected` dispatch error),
  `duplicate` (delivered twice), `reorder` (a queued event waits up to `reorder_window_ms`, so later ones
  overtake it; the records of a batch rendered by the route are shuffled).
* Seeds: each function and source draws from its own `random.Random` seeded with `<seed>/<name>`, so a run
  with the same seed and the same calls in the same order gets the same faults. Without `seed:` a random
  seed is chosen and shown by `show()`. Setting faults at run time starts the draws over.
* Every injected fault counts in `router_faults_injected_total{function, source, kind}` and is announced to
  `on_inject` hooks (the record marks it). The results of function faults carry `fault=<kind>`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from router.config import BillingConfig, FunctionFaults, SourceFaults
from router.core.errors import (
    FUNCTION_UNHANDLED,
    REASON_ACCOUNT,
    RUNTIME_EXIT_ERROR,
    SANDBOX_TIMEOUT,
    DispatchError,
    Throttled,
)
from router.core.results import InvocationResult
from router.invoker import metering, outcomes
from router.logs import CallLines

if TYPE_CHECKING:
    from router.core.clock import Clock
    from router.invoker.types import FunctionSpec, InvokeRequest
    from router.metrics import Metrics

log = logging.getLogger(__name__)

THROTTLE, CRASH, TIMEOUT, ERROR, LATENCY = "throttle", "crash", "timeout", "error", "latency"
DROP_ACK, DUPLICATE, REORDER = "drop_ack", "duplicate", "reorder"
INJECTED_ERROR_TYPE = "InjectedFault"
ROUTER_FAULT_INJECTED = "Router.FaultInjected"

_json = msgspec.json.Encoder()


class FaultInjected(DispatchError):
    """An injected lost acknowledgement: the delivery happened, the source is told it did not."""

    code = ROUTER_FAULT_INJECTED
    status = 503


@dataclass(frozen=True)
class Injected:
    """One injected fault, for observers (the record)."""

    kind: str
    function: str | None
    source: str | None
    time: float
    request_id: str | None = None
    payload: bytes = b""
    trace: str | None = None
    invocation_type: str = "RequestResponse"
    attempt: int = 1


@dataclass(frozen=True)
class Draw:
    """What one call gets: a fault kind (or None) and latency to add (ms)."""

    kind: str | None
    latency_ms: int = 0


@dataclass(frozen=True)
class SourceDraw:
    drop_ack: bool
    duplicate: bool
    delay_s: float  # reorder: how long a queued event waits


class _Stream:
    """One function's or source's settings and its own seeded draws."""

    def __init__(self, name: str, settings: Any, seed: int | None) -> None:
        self.settings = settings
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.rng = random.Random(f"{self.seed}/{name}")


class Faults:
    def __init__(self, *, metrics: Metrics | None = None, clock: Clock | None = None) -> None:
        self.clock = clock
        self.on_inject: list[Callable[[Injected], None]] = []
        self._functions: dict[str, _Stream] = {}
        self._sources: dict[str, _Stream] = {}
        self._counter = (
            metrics.counter(
                "router_faults_injected_total",
                "Faults injected into function calls and source deliveries (docs/record.md)",
                ("function", "source", "kind"),
            )
            if metrics is not None
            else None
        )

    # -- settings -------------------------------------------------------------------------------------------

    def configure(
        self, functions: Mapping[str, FunctionFaults | None], sources: Mapping[str, SourceFaults | None]
    ) -> None:
        """Replace every setting with these (the config's, at start and on reload)."""
        self._functions = {
            n: _Stream(n, f, f.seed) for n, f in functions.items() if f is not None and _active(f)
        }
        self._sources = {n: _Stream(n, s, s.seed) for n, s in sources.items() if s is not None and _active(s)}

    def set_function(self, name: str, settings: FunctionFaults | None) -> None:
        if _active(settings):
            assert settings is not None
            self._functions[name] = _Stream(name, settings, settings.seed)
        else:
            self._functions.pop(name, None)

    def set_source(self, name: str, settings: SourceFaults | None) -> None:
        if _active(settings):
            assert settings is not None
            self._sources[name] = _Stream(name, settings, settings.seed)
        else:
            self._sources.pop(name, None)

    def functions(self) -> list[str]:
        """The functions with faults in force."""
        return sorted(self._functions)

    def sources(self) -> list[str]:
        """The sources with faults in force."""
        return sorted(self._sources)

    def show(self) -> dict[str, Any]:
        """The faults in force, with the seed of each (JSON)."""

        def doc(stream: _Stream) -> dict[str, Any]:
            settings = msgspec.to_builtins(stream.settings)
            return {**settings, "seed": stream.seed}

        return {
            "functions": {n: doc(s) for n, s in sorted(self._functions.items())},
            "sources": {n: doc(s) for n, s in sorted(self._sources.items())},
        }

    # -- draws (the hot path: one dict lookup when the function has no faults) ------------------------------

    def draw(self, function: str) -> Draw | None:
        stream = self._functions.get(function)
        if stream is None:
            return None
        f: FunctionFaults = stream.settings
        u = stream.rng.random()
        kind = None
        for name, rate in ((THROTTLE, f.throttle_rate), (CRASH, f.crash_rate), (TIMEOUT, f.timeout_rate),
                           (ERROR, f.error_rate)):  # fmt: skip
            if u < rate:
                kind = name
                break
            u -= rate
        latency = 0
        if f.latency_ms is not None:
            v = stream.rng.random()  # drawn every call, so the sequence stays aligned whatever the rates
            latency = f.latency_ms.add if v < f.latency_ms.p else 0
        return Draw(kind, latency) if kind is not None or latency else None

    def source_draw(self, source: str) -> SourceDraw | None:
        stream = self._sources.get(source)
        if stream is None:
            return None
        s: SourceFaults = stream.settings
        drop, dup, order = stream.rng.random(), stream.rng.random(), stream.rng.random()
        delay = order * s.reorder_window_ms / 1000 if s.reorder else 0.0
        return SourceDraw(drop_ack=drop < s.drop_ack, duplicate=dup < s.duplicate, delay_s=delay)

    def shuffled(self, source: str, items: list[Any]) -> list[Any]:
        """`items` in a seeded random order when the source has `reorder` (else as they are)."""
        stream = self._sources.get(source)
        if stream is None or not stream.settings.reorder or len(items) < 2:
            return items
        shuffled = list(items)
        stream.rng.shuffle(shuffled)
        if shuffled != items:
            self.injected(Injected(REORDER, None, source, self._now()))
        return shuffled

    # -- reporting ------------------------------------------------------------------------------------------

    def injected(self, fault: Injected) -> None:
        if self._counter is not None:
            self._counter.labels(fault.function or "", fault.source or "", fault.kind).inc()
        for hook in list(self.on_inject):
            try:
                hook(fault)
            except Exception:
                log.exception("faults: on_inject callback failed")

    def _now(self) -> float:
        return self.clock.time() if self.clock is not None else time.time()

    def throttle(self, function: str) -> Throttled:
        """The error of an injected throttle (as a real one over the account's concurrency)."""
        error = Throttled(f"Rate Exceeded. {function}: injected throttle (faults)", reason=REASON_ACCOUNT)
        error.retry_after_s = 1.0
        return error


def fault_rates_problem(faults: FunctionFaults) -> str | None:
    """None when error, timeout, crash and throttle rates add up to at most 1 (one fault per call)."""
    total = faults.error_rate + faults.timeout_rate + faults.crash_rate + faults.throttle_rate
    if total > 1 + 1e-9:
        return f"error_rate + timeout_rate + crash_rate + throttle_rate is {total:g}, more than 1"
    return None


def _active(settings: FunctionFaults | SourceFaults | None) -> bool:
    if settings is None:
        return False
    if isinstance(settings, FunctionFaults):
        rates = (settings.error_rate, settings.timeout_rate, settings.crash_rate, settings.throttle_rate)
        latency = (
            settings.latency_ms is not None and settings.latency_ms.p > 0 and settings.latency_ms.add > 0
        )
        return any(rates) or latency
    return bool(settings.drop_ack or settings.duplicate or settings.reorder)


@dataclass(frozen=True)
class FaultRun:
    """An injected crash, timeout or error, run by the pool in place of the call on the instance it took
    (router/dispatch/pool.py); `kills`: the instance is stopped after it, as after the real fault."""

    kind: str
    spec: FunctionSpec
    billing: BillingConfig
    clock: Clock

    @property
    def kills(self) -> bool:
        return self.kind in (CRASH, TIMEOUT)

    async def run(self, request: InvokeRequest) -> InvocationResult:
        rid = request.request_id
        status: metering.ReportStatus | None = None
        lines = [metering.start_line(rid, self.spec.version)]
        duration_ms = 0.5
        if self.kind == TIMEOUT:
            await (
                self.clock.sleep(self.spec.timeout_s) if self.clock else asyncio.sleep(self.spec.timeout_s)
            )
            duration_ms = self.spec.timeout_s * 1000
            message = outcomes.timeout_message(rid, self.spec.timeout_s)
            payload, error_type, status = outcomes.timeout_payload(message), SANDBOX_TIMEOUT, "timeout"
            lines.append(message)
        elif self.kind == CRASH:
            payload, error_type = outcomes.exit_payload(rid, -signal.SIGKILL), RUNTIME_EXIT_ERROR
            status = "error"
        else:
            error_type = INJECTED_ERROR_TYPE
            payload = _json.encode({
                "errorMessage": "injected fault (faults.error_rate)", "errorType": error_type,
                "requestId": rid, "stackTrace": [],
            })  # fmt: skip
        billed = metering.billed_ms(duration_ms, self.billing.granularity_ms)
        result = InvocationResult(
            request_id=rid,
            payload=payload,
            function_error=FUNCTION_UNHANDLED,
            error_type=error_type,
            duration_ms=duration_ms,
            billed_ms=billed,
            memory_mb=self.spec.memory_mb,
            cost_usd=metering.cost_usd(billed, self.spec.memory_mb, self.billing),
            fault=self.kind,
        )
        lines += [metering.end_line(rid), metering.report_line(result, status=status)]
        result.log = "".join(f"{line}\n" for line in lines).encode()
        CallLines(self.spec.name).emit(lines, rid, metering.report_fields(result, self.spec.name))
        return result
