"""Functions that run elsewhere: calls sent over the Lambda Invoke API (AWS Lambda, another router,
LocalStack).

A function with `target: {lambda: {function_name, region, endpoint_url, ...}}` has no local instances: each
call is one `Invoke` (RequestResponse, LogType Tail) through aiobotocore. Contract, the same as a local
instance's (router/dispatch/pool.py's InstanceLike), so the dispatcher, the sources and the control plane
treat it like any other function:

* The payload, the client context and the qualifier go as they are; the remote answer comes back as the
  result: the response body, or Lambda's error JSON with `function_error` set from X-Amz-Function-Error
  (a function error is data, never an exception). `executed_version` is the remote ExecutedVersion.
* Metering: duration, billed duration, init duration and max memory are read from the remote REPORT line
  (the tail of the log, LogType Tail); when the endpoint sends none, the duration is the round trip's. The
  cost is computed at this router's prices from the remote billed duration.
* Throttling (429 TooManyRequestsException) raises `Throttled` with the remote Reason; every other way the
  call could not be made (unreachable endpoint, unknown function, refused credentials) raises
  `DispatchError`: the function did not run, so the caller sees a dispatch error (a source backs off, an
  async event is retried as a system error). No call is retried here (botocore's retries are off): the
  dispatcher and the sources own retries.
* A remote call that gives no answer within the function's timeout plus `ANSWER_GRACE_S` ends as a
  `Sandbox.Timeout` function error, as a local call past its timeout does.

`RemoteFactory(inner, billing)` wraps the dispatcher's instance factory: specs with `remote` set get a
`RemoteInstance` (one aiobotocore client per target, shared by all its calls, closed by `aclose()`), the
others go to `inner`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from typing import Any

from router.config import BillingConfig, LambdaTarget
from router.core import errors
from router.core.errors import REASON_ACCOUNT, DispatchError, Throttled
from router.core.results import InvocationResult
from router.invoker import metering
from router.invoker.types import FunctionSpec, InvokeRequest

log = logging.getLogger("router.invoker.remote")

ANSWER_GRACE_S = 5.0
REPORT = re.compile(
    r"REPORT RequestId: \S+\s+Duration: (?P<duration>[0-9.]+) ms\s+Billed Duration: (?P<billed>[0-9]+) ms"
    r"(?:\s+Memory Size: (?P<size>[0-9]+) MB)?(?:\s+Max Memory Used: (?P<used>[0-9]+) MB)?"
    r"(?:\s+Init Duration: (?P<init>[0-9.]+) ms)?"
)


class RemoteInstance:
    """One function's calls to its remote target; any number at once (it holds no state between calls)."""

    def __init__(self, spec: FunctionSpec, client: Any, billing: BillingConfig) -> None:
        assert spec.remote is not None
        self.spec = spec
        self.target: LambdaTarget = spec.remote
        self._client = client
        self._billing = billing

    @property
    def alive(self) -> bool:
        return True

    async def stop(self) -> None:
        return None

    async def invoke(self, request: InvokeRequest) -> InvocationResult:
        args: dict[str, Any] = {
            "FunctionName": self.target.function_name,
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": request.payload,
        }
        if self.target.qualifier:
            args["Qualifier"] = self.target.qualifier
        if request.client_context:
            args["ClientContext"] = request.client_context
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.spec.timeout_s + ANSWER_GRACE_S):
                response = await self._client.invoke(**args)
                body = await response["Payload"].read()
        except TimeoutError:
            return self._timed_out(request, (time.monotonic() - started) * 1000)
        except Exception as e:
            raise _dispatch_error(e, self.target.function_name) from e
        return self._result(request, response, body, (time.monotonic() - started) * 1000)

    def _result(
        self, request: InvokeRequest, response: dict[str, Any], body: bytes, wall_ms: float
    ) -> InvocationResult:
        tail = base64.b64decode(response.get("LogResult") or b"")
        function_error = response.get("FunctionError")
        result = InvocationResult(
            request_id=request.request_id,
            payload=body,
            function_error=function_error,
            error_type=_error_type(body) if function_error else None,
            duration_ms=wall_ms,
            memory_mb=self.spec.memory_mb,
            log=tail,
            executed_version=response.get("ExecutedVersion") or "$LATEST",
        )
        _meter(result, tail)
        if not result.billed_ms:
            result.billed_ms = metering.billed_ms(result.duration_ms, self._billing.granularity_ms)
        result.cost_usd = metering.cost_usd(result.billed_ms, result.memory_mb, self._billing)
        return result

    def _timed_out(self, request: InvokeRequest, wall_ms: float) -> InvocationResult:
        message = f"{request.request_id} no answer from {self.target.function_name} within the timeout"
        billed = metering.billed_ms(wall_ms, self._billing.granularity_ms)
        return InvocationResult(
            request_id=request.request_id,
            payload=json.dumps({"errorType": errors.SANDBOX_TIMEOUT, "errorMessage": message}).encode(),
            function_error=errors.FUNCTION_UNHANDLED,
            error_type=errors.SANDBOX_TIMEOUT,
            duration_ms=wall_ms,
            billed_ms=billed,
            memory_mb=self.spec.memory_mb,
            cost_usd=metering.cost_usd(billed, self.spec.memory_mb, self._billing),
        )


def _meter(result: InvocationResult, tail: bytes) -> None:
    """The remote REPORT line's figures, when the tail of the log has one."""
    found = REPORT.search(tail.decode(errors="replace"))
    if found is None:
        return
    result.duration_ms = float(found["duration"])
    result.billed_ms = int(found["billed"])
    if found["size"]:
        result.memory_mb = int(found["size"])
    if found["used"]:
        result.max_memory_mb = int(found["used"])
    if found["init"]:
        result.init_ms = float(found["init"])
        result.cold = True


def _error_type(body: bytes) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        value = json.loads(body).get("errorType")
        return str(value) if value is not None else None
    return None


def _dispatch_error(e: Exception, function: str) -> DispatchError:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code, message = error.get("Code", ""), error.get("Message", "") or str(e)
        if (
            code == errors.TOO_MANY_REQUESTS
            or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 429
        ):
            throttled = Throttled(
                f"remote {function}: {message}", reason=response.get("Reason") or REASON_ACCOUNT
            )
            throttled.retry_after_s = 1.0
            return throttled
        return DispatchError(f"remote {function}: {code or type(e).__name__}: {message}")
    return DispatchError(f"remote {function}: {type(e).__name__}: {e}")


class RemoteFactory:
    """The dispatcher's instance factory, with remote functions answered by `RemoteInstance`s."""

    def __init__(self, inner: Any, billing: BillingConfig) -> None:
        self.inner = inner
        self._billing = billing
        self._clients: dict[bytes, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    async def __call__(self, spec: FunctionSpec, init_type: str, request_id: str) -> Any:
        if spec.remote is None:
            return await self.inner(spec, init_type, request_id)
        return RemoteInstance(spec, await self._client(spec), self._billing)

    async def _client(self, spec: FunctionSpec) -> Any:
        import msgspec

        target = spec.remote
        assert target is not None
        key = msgspec.json.encode([target, spec.timeout_s])
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = await self._stack.enter_async_context(_create_client(target, spec))
                self._clients[key] = client
        return client

    def prepare(self, specs: list[FunctionSpec]) -> None:
        prepare = getattr(self.inner, "prepare", None)
        if prepare is not None:
            prepare([s for s in specs if s.remote is None])

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._clients.clear()
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __getattr__(self, name: str) -> Any:  # the inner factory's other parts (containment, zygotes)
        return getattr(self.inner, name)


def _create_client(target: LambdaTarget, spec: FunctionSpec) -> Any:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=target.connect_timeout_s,
        read_timeout=spec.timeout_s + ANSWER_GRACE_S,
        max_pool_connections=100,
    )
    return get_session().create_client("lambda", config=config, **target.client_args(spec.region))
