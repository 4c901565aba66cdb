"""How a call ended, and the error payloads Lambda returns for the platform's own failures.

An `Ending` is the first thing that ended a call (or an init), of a kind `End`: the runtime answered
(`RESPONSE`, `ERROR`, `TOO_LARGE`), the deadline passed (`TIMEOUT`), memory ran over (`OOM`), the process
exited (`EXIT`), or, during init, the runtime asked for its first event (`READY`) or posted /init/error
(`INIT_ERROR`). `DEATHS` are the kinds that leave the instance killed.

`End` is not `router.core.results.Outcome`: that one classifies a finished `InvocationResult` (for logs,
metrics, the record), this one is the event that stopped the wait, before classification. They differ: a
`RESPONSE` whose peak memory was over the limit becomes an out-of-memory result, `TOO_LARGE` becomes a
function error, `EXIT` during init an init error.

The payloads are Lambda's wording: "Task timed out after 1.00 seconds" (prefixed by time and request id, as
the managed runtimes print it), "RequestId: X Error: Runtime exited with error: exit status 3" /
"signal: killed", with errorType Sandbox.Timeout, Runtime.OutOfMemory, Runtime.ExitError.
"""

from __future__ import annotations

import enum
import signal
import time

import msgspec

from router.core import timefmt
from router.core.errors import (
    RUNTIME_EXIT_ERROR,
    RUNTIME_INIT_ERROR,
    RUNTIME_OUT_OF_MEMORY,
    RUNTIME_UNKNOWN,
    SANDBOX_TIMEOUT,
)

_json = msgspec.json.Encoder()

# Go's ProcessState wording, which Lambda's messages use ("signal: killed").
_SIGNAL_WORDS = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGPIPE: "broken pipe",
}


class End(enum.StrEnum):
    RESPONSE = "response"
    ERROR = "error"
    TOO_LARGE = "too_large"  # the response was over Lambda's 6 MB
    TIMEOUT = "timeout"
    OOM = "oom"
    EXIT = "exit"
    READY = "ready"  # init: the runtime asked for its first event
    INIT_ERROR = "init_error"  # init: the runtime posted /init/error


DEATHS = frozenset({End.TIMEOUT, End.OOM, End.EXIT})


class Ending(msgspec.Struct, kw_only=True):
    kind: End
    at: float  # time.perf_counter() when it happened
    body: bytes = b""
    error_type: str | None = None  # the Lambda-Runtime-Function-Error-Type header, if any
    returncode: int | None = None


def exit_words(returncode: int | None) -> str:
    if returncode is None:
        return "exit status unknown"
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return f"signal: {-returncode}"
    return f"signal: {_SIGNAL_WORDS.get(sig, sig.name)}"


def timeout_message(request_id: str, timeout_s: float) -> str:
    return f"{timefmt.iso_ms(time.time())} {request_id} Task timed out after {timeout_s:.2f} seconds"


def timeout_payload(message: str) -> bytes:
    return _json.encode({"errorMessage": message, "errorType": SANDBOX_TIMEOUT})


def exit_payload(request_id: str, returncode: int | None, error_type: str = RUNTIME_EXIT_ERROR) -> bytes:
    message = f"RequestId: {request_id} Error: Runtime exited with error: {exit_words(returncode)}"
    return _json.encode({"errorMessage": message, "errorType": error_type})


def oom_payload(request_id: str) -> bytes:
    return exit_payload(request_id, -signal.SIGKILL, RUNTIME_OUT_OF_MEMORY)


def init_timeout_payload(timeout_s: float) -> bytes:
    return _json.encode(
        {
            "errorMessage": f"Init phase timed out after {timeout_s:.2f} seconds",
            "errorType": RUNTIME_INIT_ERROR,
        }
    )


def function_error(body: bytes, header_type: str | None) -> tuple[bytes, str]:
    """The payload and errorType of an error the runtime posted. A body that is not a JSON object (Lambda
    accepts any bytes) is wrapped as an errorMessage."""
    try:
        decoded = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        decoded = None
    if isinstance(decoded, dict):
        error_type = decoded.get("errorType")
        if isinstance(error_type, str) and error_type:
            return body, error_type
        return body, header_type or RUNTIME_UNKNOWN
    error_type = header_type or RUNTIME_UNKNOWN
    text = body.decode("utf-8", "replace")
    return _json.encode({"errorMessage": text, "errorType": error_type}), error_type
