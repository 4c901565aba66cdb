"""The dispatcher's default instance factory: the invoker's `Instance.start`, with a Python zygote, contained.

`InvokerFactory(config, state_dir)` is called as `await factory(spec, init_type, request_id)`
(router/dispatch/pool.py's InstanceFactory). Creating it starts the router's containment
(router/invoker/containment.py: leftovers of a previous life killed, cgroups and isolation detected and
logged, the keeper started); it raises ContainmentError when a `required` mechanism is missing. Python
instances are forked from a zygote (router/invoker/zygote.py) when `invoker.python_zygote` (or the
function's own `python_zygote`) says so; `prepare(specs)` starts the zygote as soon as a function would use
it, and `aclose()` stops it, then kills and removes whatever instances left behind.
"""

from __future__ import annotations

from pathlib import Path

from router.config import Config
from router.invoker.containment import Containment
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec
from router.invoker.zygote import Zygotes


class InvokerFactory:
    def __init__(self, config: Config, state_dir: Path | None = None) -> None:
        self._billing = config.billing
        self.containment = Containment.start(
            config.invoker, state_dir if state_dir is not None else config.state_path, Path(config.base_dir)
        )
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
            containment=self.containment,
            batch=self._batch,
            log_calls=self._log_calls,
        )

    def prepare(self, specs: list[FunctionSpec]) -> None:
        self.containment.functions(specs)
        if any(self.zygotes.wants(spec) for spec in specs):
            self.zygotes.prestart()

    async def aclose(self) -> None:
        await self.zygotes.aclose()
        await self.containment.aclose()
