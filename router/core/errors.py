"""Error types, spelled once.

Two planes of failure never mix (see design.md):

* A *dispatch error* means the function did not run: no such function, throttled, shutting down. It is raised
  as a `DispatchError`; sources map it to back-pressure (HTTP 429/503, SMTP 451, a paused partition) and do
  not acknowledge the native event.
* A *function error* is data in the invocation result (errorType, errorMessage, stackTrace), as Lambda returns
  it. The constants below are the errorType strings Lambda uses, plus our own `Router.*` for dispatch errors.
"""

from __future__ import annotations

# Function errors (data in a result).
FUNCTION_UNHANDLED = "Unhandled"  # value of X-Amz-Function-Error
RUNTIME_EXIT_ERROR = "Runtime.ExitError"
RUNTIME_OUT_OF_MEMORY = "Runtime.OutOfMemory"
RUNTIME_INIT_ERROR = "Runtime.InitError"
RUNTIME_HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
RUNTIME_IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
RUNTIME_INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"
RUNTIME_INVALID_RUNTIME = "Runtime.InvalidRuntime"
RUNTIME_MARSHAL_ERROR = "Runtime.MarshalError"
RUNTIME_UNKNOWN = "Runtime.Unknown"
RUNTIME_USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
RUNTIME_MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
RUNTIME_BUILTIN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
SANDBOX_TIMEOUT = "Sandbox.Timeout"
SANDBOX_FAILURE = "Sandbox.Failure"  # the instance's sandbox (its cgroup) could not be made
FUNCTION_RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"

# The Runtime API's own error types (the emulator's spelling), for requests it refuses.
RAPI_NOT_FOUND = "NotFound"
RAPI_METHOD_NOT_ALLOWED = "MethodNotAllowed"
RAPI_INVALID_STATE_TRANSITION = "InvalidStateTransition"
RAPI_INVALID_REQUEST_ID = "InvalidRequestID"
RAPI_REQUEST_ENTITY_TOO_LARGE = "RequestEntityTooLarge"

# Dispatch errors (the function did not run).
ROUTER_UNKNOWN = "Router.Unknown"
ROUTER_FUNCTION_NOT_FOUND = "Router.FunctionNotFound"
ROUTER_THROTTLED = "Router.Throttled"
ROUTER_SHUTTING_DOWN = "Router.ShuttingDown"
ROUTER_QUEUE_UNAVAILABLE = "Router.QueueUnavailable"
ROUTER_LOOP_DETECTED = "Router.RecursiveLoopDetected"

# Conditions of Lambda's invocation records (async and stream failure destinations).
CONDITION_RECURSIVE_LOOP = "RecursiveLoopDetected"

# Throttle reasons, as Lambda's ThrottleReason enum spells them.
REASON_ACCOUNT = "ConcurrentInvocationLimitExceeded"
REASON_RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"

# Lambda API (service) error names.
RESOURCE_NOT_FOUND = "ResourceNotFoundException"
TOO_MANY_REQUESTS = "TooManyRequestsException"
SERVICE_EXCEPTION = "ServiceException"
REQUEST_TOO_LARGE = "RequestTooLargeException"
INVALID_REQUEST_CONTENT = "InvalidRequestContentException"
INVALID_PARAMETER_VALUE = "InvalidParameterValueException"
RESOURCE_CONFLICT = "ResourceConflictException"
UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaTypeException"
RECURSIVE_INVOCATION = "RecursiveInvocationException"
INVALID_ZIP_FILE = "InvalidZipFileException"
PRECONDITION_FAILED = "PreconditionFailedException"
REQUEST_TIMEOUT = "RequestTimeoutException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
MISSING_TOKEN = "MissingAuthenticationTokenException"
UNKNOWN_OPERATION = "UnknownOperationException"


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


class ConfigError(RouterError):
    """A config failed validation. `problems` lists every problem as 'path: message'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DispatchError(RouterError):
    """The function did not run. `code` is a Router.* type; `api_error`/`status` map it to the Lambda API."""

    code = ROUTER_UNKNOWN
    api_error = SERVICE_EXCEPTION
    status = 500
    reason: str | None = None

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class FunctionNotFound(DispatchError):
    code = ROUTER_FUNCTION_NOT_FOUND
    api_error = RESOURCE_NOT_FOUND
    status = 404


class Throttled(DispatchError):
    """Over a concurrency limit. `reason` is REASON_ACCOUNT or REASON_RESERVED."""

    code = ROUTER_THROTTLED
    api_error = TOO_MANY_REQUESTS
    status = 429
    retry_after_s: float | None = None  # hint for Retry-After / retryAfterSeconds


class ShuttingDown(DispatchError):
    code = ROUTER_SHUTTING_DOWN
    api_error = SERVICE_EXCEPTION
    status = 503


class QueueUnavailable(DispatchError):
    code = ROUTER_QUEUE_UNAVAILABLE
    api_error = SERVICE_EXCEPTION
    status = 503


class LoopDetected(DispatchError):
    """Past limits.max_loop_depth in one chain of events (router/loops.py). Lambda answers Invoke with
    RecursiveInvocationException, HTTP 400 (not a throttle: retrying cannot help)."""

    code = ROUTER_LOOP_DETECTED
    api_error = RECURSIVE_INVOCATION
    status = 400
    trace: str | None = None  # the trace the stopped invocation would have had
    depth: int = 0
