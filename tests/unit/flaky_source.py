"""A source kind for daemon tests: its first run fails, later runs call ready() and wait."""

from __future__ import annotations

import asyncio

from router.config import SourceSettings
from router.core.kinds import KindTraits
from router.core.ports import SourceContext

RUNS: list[str] = []


class Config(SourceSettings, tag="flaky"):
    traits = KindTraits(shape="schedule")
    fail_first: bool = True


class FlakySource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.closed = 0

    async def run(self) -> None:
        RUNS.append("run")
        if self.ctx.config.fail_first and RUNS.count("run") == 1:
            raise RuntimeError("first run fails")
        self.ctx.ready()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        RUNS.append("close")


def create(ctx: SourceContext) -> FlakySource:
    return FlakySource(ctx)
