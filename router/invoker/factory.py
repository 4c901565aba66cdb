"""The dispatcher's default instance factory: the invoker's `Instance.start`, with a Python zygote.

`InvokerFactory(config)` is called as `await factory(spec, init_type, request_id)` (router/dispatch/pool.py's
InstanceFactory). Python instances are forked from a zygote (router/invoker/zygote.py) when
`invoker.python_zygote` (or the function's own `python_zygote`) says so; `prepare(specs)` starts the zygote
as soon as a function would use it, and `aclose()` stops it.
"""

from __future__ import annotations

from router.config import Config
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec
from router.invoker.zygote import Zygotes


class InvokerFactory:
    def __init__(self, config: Config) -> None:
        self._billing = config.billing
        self._batch = config.invoker.batch_scheduling
        self._log_calls = config.invoker.log_calls
        self.zygotes = Zygotes(enabled=config.invoker.python_zygote)

    async def __call__(self, spec: FunctionSpec, init_type: str, request_id: str) -> Instance:
        return await Instance.start(
            spec,
            billing=self._billing,
            init_type=init_type,
            request_id=request_id,
            zygotes=self.zygotes,
            batch=self._batch,
            log_calls=self._log_calls,
        )

    def prepare(self, specs: list[FunctionSpec]) -> None:
        if any(self.zygotes.wants(spec) for spec in specs):
            self.zygotes.prestart()

    async def aclose(self) -> None:
        await self.zygotes.aclose()
