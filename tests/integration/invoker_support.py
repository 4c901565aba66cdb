"""Helpers shared by the invoker's integration tests: calling an instance and reading its answer."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from router.core.results import InvocationResult
from router.invoker.instance import Instance
from router.invoker.types import InvokeRequest

Call = Callable[..., Awaitable[InvocationResult]]


def make_call(prefix: str) -> Call:
    """`call(instance, payload, **InvokeRequest fields)` with request ids `<prefix>-1`, `<prefix>-2`, ..."""
    numbers = itertools.count(1)

    async def call(instance: Instance, payload: object = None, **fields: Any) -> InvocationResult:
        request = InvokeRequest(
            request_id=f"{prefix}-{next(numbers)}", payload=msgspec.json.encode(payload), **fields
        )
        return await instance.invoke(request)

    return call


def body(result: InvocationResult) -> Any:
    return msgspec.json.decode(result.payload)
