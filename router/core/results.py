"""What one invocation gave: the result every layer passes around, and the kinds of outcome.

`InvocationResult` is produced by the invoker (or the dispatcher, for calls refused before they ran) and read
by the dispatcher, the sources (the HTTP reply, a stream batch's outcome), the control plane (the Invoke API
response) and the inspection record. `payload` is the function's response body, or Lambda's error JSON
(errorType, errorMessage, stackTrace) when `function_error` is set.

`Outcome` names how a call ended, for logs, metrics and the record: success, a function error, a timeout,
out of memory, a crash, an init failure. `outcome_of(result)` classifies a result.
"""

from __future__ import annotations

import enum

import msgspec

from router.core import errors


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    ERROR = "error"  # the handler raised or returned an error
    TIMEOUT = "timeout"  # Sandbox.Timeout
    OUT_OF_MEMORY = "oom"  # Runtime.OutOfMemory
    CRASH = "crash"  # Runtime.ExitError and other runtime failures after init
    INIT_ERROR = "init_error"  # the instance did not initialise (import error, bad handler, init timeout)


INIT_ERROR_TYPES = frozenset(
    {
        errors.RUNTIME_IMPORT_MODULE_ERROR,
        errors.RUNTIME_HANDLER_NOT_FOUND,
        errors.RUNTIME_INIT_ERROR,
        errors.RUNTIME_INVALID_ENTRYPOINT,
        errors.RUNTIME_INVALID_RUNTIME,
        errors.RUNTIME_USER_CODE_SYNTAX_ERROR,
        errors.RUNTIME_MALFORMED_HANDLER_NAME,
        errors.RUNTIME_BUILTIN_MODULE_CONFLICT,
    }
)


class InvocationResult(msgspec.Struct, kw_only=True):
    """One call's outcome and meter reading. `payload` is the response body, or Lambda's error JSON."""

    request_id: str
    payload: bytes
    function_error: str | None = None  # "Unhandled" when the function failed (X-Amz-Function-Error)
    error_type: str | None = None  # errorType of a failure, e.g. Sandbox.Timeout
    duration_ms: float = 0.0
    billed_ms: int = 0
    init_ms: float | None = None  # set on the call that paid for a cold start
    memory_mb: int = 128  # configured size
    max_memory_mb: int = 0  # measured peak memory of the instance during the call (its cgroup's, or RSS)
    cpu_ms: float | None = None  # CPU time the instance used during the call, where a cgroup measures it
    cost_usd: float = 0.0
    cold: bool = False
    log: bytes = b""  # this call's log lines (stdout/stderr of the instance, tagged), for X-Amz-Log-Result
    executed_version: str = "$LATEST"  # the published version that ran (X-Amz-Executed-Version)
    fault: str | None = None  # an injected fault's kind (router/dispatch/faults.py); None for real outcomes

    @property
    def ok(self) -> bool:
        return self.function_error is None

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self)


def outcome_of(result: InvocationResult) -> Outcome:
    if result.function_error is None:
        return Outcome.SUCCESS
    match result.error_type:
        case errors.SANDBOX_TIMEOUT:
            return Outcome.TIMEOUT
        case errors.RUNTIME_OUT_OF_MEMORY:
            return Outcome.OUT_OF_MEMORY
        case t if t in INIT_ERROR_TYPES:
            return Outcome.INIT_ERROR
        case errors.RUNTIME_EXIT_ERROR | errors.RUNTIME_UNKNOWN:
            return Outcome.CRASH
        case _:
            return Outcome.ERROR
