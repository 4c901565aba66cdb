"""What goes into and comes out of an instance: the invoker's contract with the dispatcher.

An `Instance` (router/invoker/instance.py) runs one function instance as its own OS process group and speaks
the Lambda Runtime API with it. Its contract:

* `await Instance.start(spec, billing=..., init_type="on-demand"|"provisioned-concurrency", request_id="",
  init_timeout_s=10, stop_grace_s=0.5)` launches the process and returns once the runtime asked for its
  first event (init done). If init fails (import error, bad handler, crash, init timeout) it raises
  `InitFailed` carrying the `InvocationResult` the caller gets (errorType Runtime.ImportModuleError,
  Runtime.HandlerNotFound, Runtime.ExitError, Runtime.InitError for the init timeout, ...; `request_id` is
  the one passed to start), and the process is gone. Instance logs go to logger "router.function.<name>".
  With `zygotes=` (router/invoker/zygote.py) a Python instance is forked from a pre-started interpreter
  when it can be, and started fresh otherwise.
* `await instance.invoke(request)` runs one event (one at a time per instance, as on Lambda; a second
  concurrent call raises RuntimeError) and always returns an `InvocationResult`: function errors, timeouts
  (Sandbox.Timeout), out of memory (Runtime.OutOfMemory) and crashes (Runtime.ExitError) are data, never
  exceptions. After a timeout, OOM or crash the instance is dead (`alive` is False), its whole process
  group killed; calling a dead instance returns a Runtime.ExitError result without running anything, so
  check `alive` right before `invoke` (no await in between). Cancelling `invoke` kills the instance.
  The first call of an on-demand instance is the cold one: `cold=True`, `init_ms` set, and (as Lambda bills
  since Aug 2025) its billed duration includes the init duration.
* `await instance.stop()` ends it (SIGTERM to the group, grace, SIGKILL). Idempotent.
* Read-only: `alive`, `busy`, `state` (a `lifecycle.State`; its table is in router/invoker/lifecycle.py),
  `pid`, `last_used` (time.monotonic() of the last call's end), `init_ms`, `address` (its
  AWS_LAMBDA_RUNTIME_API), `invocations`, `spec`.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from router.config.cluster import LambdaTarget
from router.core.arn import lambda_arn
from router.core.results import InvocationResult

__all__ = ["FunctionSpec", "InitFailed", "InvocationResult", "InvokeRequest", "instance_root"]


class FunctionSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A function as the invoker needs it: resolved code folder, limits, environment."""

    name: str
    runtime: str
    handler: str
    code_dir: Path  # an unpacked folder (ZIPs are unpacked by router.invoker.code before this)
    memory_mb: int = 128
    timeout_s: float = 3
    environment: dict[str, str] = {}
    region: str = "us-east-1"
    account_id: str = "123456789012"
    version: str = "$LATEST"
    revision: str = "1"  # changes with every code/config update; instances of an old revision are retired
    python_zygote: bool | None = None  # fork Python instances from a zygote; None: the router's setting
    opt_dir: Path | None = None  # the function's layers merged (router.invoker.code.prepare_layers): its /opt
    cpu: str | float | None = None  # "lambda", "unlimited" or vCPUs; None: the router's setting
    network: bool = True  # False: no network at all (with isolation)
    remote: LambdaTarget | None = None  # runs elsewhere over the Lambda Invoke API (router/invoker/remote.py)

    @property
    def arn(self) -> str:
        return lambda_arn(self.name, self.region, self.account_id)


class InvokeRequest(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    payload: bytes
    client_context: str | None = None  # base64 JSON, passed through as Lambda-Runtime-Client-Context
    cognito_identity: str | None = None
    trace_id: str | None = None  # X-Ray style; Lambda-Runtime-Trace-Id
    function_arn: str | None = None  # the ARN it was invoked by (with a qualifier); None: the function's


class InitFailed(Exception):
    """Instance.start failed; `result` is what the call that triggered the cold start returns."""

    def __init__(self, result: InvocationResult) -> None:
        super().__init__(result.error_type or "init failed")
        self.result = result


def instance_root(state_dir: Path) -> Path:
    return state_dir / "code"
