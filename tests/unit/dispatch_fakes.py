"""Fakes for the dispatcher's unit tests: an instance factory whose instances obey the payload.

A fake instance reads its payload as JSON and:
* `{"gate": "name"}` waits until the test opens that gate (`factory.open("name")`);
* `{"fail": true}` returns a function error (Unhandled, errorType ValueError);
* `{"crash": true}` returns Runtime.ExitError and is dead afterwards;
* anything else echoes the payload.
`factory.init_fails = True` makes launches raise InitFailed; `factory.launch_error` makes them raise it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from router.config import AccountConfig, AsyncConfig, Config, Destination, FunctionConfig
from router.core.results import InvocationResult
from router.dispatch.registry import FunctionDefinition, revision_of
from router.invoker.types import FunctionSpec, InitFailed, InvokeRequest


class FakeInstance:
    def __init__(self, factory: FakeFactory, spec: FunctionSpec, init_type: str) -> None:
        self.factory = factory
        self.spec = spec
        self.init_type = init_type
        self.alive = True
        self.stopped = False
        self.calls: list[str] = []
        self.busy = False

    async def invoke(self, request: InvokeRequest) -> InvocationResult:
        assert self.alive and not self.busy, "one call per instance at a time"
        self.busy = True
        try:
            self.calls.append(request.request_id)
            self.factory.requests.append(request)
            event: Any = json.loads(request.payload or b"null")
            if isinstance(event, dict) and "gate" in event:
                await self.factory.gate(event["gate"]).wait()
            if isinstance(event, dict) and event.get("crash"):
                self.alive = False
                return _error(request, "Runtime.ExitError", "exited")
            if isinstance(event, dict) and event.get("fail"):
                return _error(request, "ValueError", "boom")
            return InvocationResult(
                request_id=request.request_id, payload=request.payload, duration_ms=2.5, billed_ms=3,
                max_memory_mb=40, cost_usd=1e-7, init_ms=5.0,
            )  # fmt: skip
        finally:
            self.busy = False

    async def stop(self) -> None:
        self.alive = False
        self.stopped = True


def _error(request: InvokeRequest, error_type: str, message: str) -> InvocationResult:
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return InvocationResult(
        request_id=request.request_id, payload=body, function_error="Unhandled", error_type=error_type
    )


class FakeFactory:
    def __init__(self) -> None:
        self.instances: list[FakeInstance] = []
        self.requests: list[InvokeRequest] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.init_fails = False
        self.launch_error: Exception | None = None

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def open(self, name: str) -> None:
        self.gate(name).set()

    async def __call__(self, spec: FunctionSpec, init_type: str, request_id: str) -> FakeInstance:
        await asyncio.sleep(0)
        if self.launch_error is not None:
            raise self.launch_error
        if self.init_fails:
            raise InitFailed(
                InvocationResult(
                    request_id="", payload=b"{}", function_error="Unhandled", error_type="Runtime.InitError"
                )
            )
        instance = FakeInstance(self, spec, init_type)
        self.instances.append(instance)
        return instance

    def live(self, name: str | None = None) -> list[FakeInstance]:
        return [i for i in self.instances if not i.stopped and (name is None or i.spec.name == name)]


def function_config(**kw: Any) -> FunctionConfig:
    fields: dict[str, Any] = {"runtime": "python3.11", "handler": "app.handler", "code": "code", **kw}
    fields["async_"] = AsyncConfig(**fields.pop("async_", {}))
    return FunctionConfig(**fields)


def definition(name: str, tmp: Path, *, code_sha: str = "sha", **kw: Any) -> FunctionDefinition:
    config = function_config(**kw)
    revision = revision_of(config, code_sha)
    spec = FunctionSpec(
        name=name, runtime=config.runtime, handler=config.handler, code_dir=tmp, memory_mb=config.memory_mb,
        timeout_s=config.timeout_s, environment=dict(config.environment), revision=revision,
    )  # fmt: skip
    return FunctionDefinition(name=name, config=config, spec=spec, revision=revision, code_sha256=code_sha)


def router_config(tmp: Path, concurrency: int = 100) -> Config:
    return Config(account=AccountConfig(concurrency=concurrency, unreserved_min=0), base_dir=str(tmp))


def directory(path: Path) -> Destination:
    return Destination(directory=str(path))


async def until(condition: Any, what: str = "condition", steps: int = 20000) -> None:
    """Let the loop (and the queue's disk thread) run until `condition()` holds; fail if it never does."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")
