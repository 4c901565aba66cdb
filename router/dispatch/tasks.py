"""A set of background tasks with an owner: no fire-and-forget.

The dispatcher's work that outlives the call that started it (stopping an instance, launching a provisioned
one, running an async event) is spawned into a `TaskSet`. The set keeps a strong reference to each task
until it ends, logs an exception a task dies with (a failed background stop must not vanish silently), and
`aclose()` cancels whatever is left and waits for all of it, so nothing runs after its owner closed.
Tasks spawned with `finish=True` (stopping an instance: cancelled midway, it could leave a process behind)
are not cancelled by `aclose()` but waited for; tasks may still be spawned while `aclose()` is waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finish: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None, finish: bool = False
    ) -> asyncio.Task[Any]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.name}: task set is closed")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        if finish:
            self._finish.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._finish.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task %s failed", self.name, task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        """Wait until every task spawned so far (and any they spawn) has ended."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def aclose(self) -> None:
        """Cancel every task (but those spawned with finish=True) and wait for them all to end. Idempotent."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                if task not in self._finish:
                    task.cancel()
            await asyncio.wait(tasks)
        self._closed = True
