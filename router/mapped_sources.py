"""The daemon's side of event source mappings: the sources it runs for them (router/control/mappings/port.py).

`MappedSources(start, stop, handle, lock, sources_dir)` implements the `MappingPort` the registry calls:

* `apply(wanted)` records the desired set and wakes `run()`, a task of the daemon that converges: under the
  daemon's reload lock, it stops every running mapped source whose settings changed, that was disabled or
  deleted (waiting for its batches in flight, as any source stop does), starts those that should run and do
  not, and removes the state folders (`<state_dir>/sources/esm-*`) of deleted mappings. Changes that arrive
  meanwhile are taken on the next pass; the latest set wins.
* `status(name)` tells what runs under a name (a mapped source, or a config source), whether it is ready, and
  its last processing result, noted by `ResultNotes`.

`ResultNotes` wraps the dispatcher's calls for the sources of mapping kinds (config-file and API alike) and
notes per source how the last call ended, as Lambda's LastProcessingResult: OK, PROBLEM: Function call failed,
PROBLEM: Function not found, PROBLEM: Function call throttled.

This module is at the top, beside the daemon: it may import every layer.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from router.control.mappings.port import (
    FUNCTION_FAILED,
    FUNCTION_NOT_FOUND,
    NO_RECORDS,
    OK,
    THROTTLED,
    MappedSource,
    Running,
)
from router.core.errors import FunctionNotFound, Throttled
from router.core.results import InvocationResult
from router.dispatch.routing import Calls

log = logging.getLogger("router.daemon")

PREFIX = "esm-"  # router.control.mappings.translate.source_name


class ResultNotes:
    """The dispatcher's `Calls`, noting per source how its last synchronous call ended."""

    def __init__(self, calls: Calls, notes: dict[str, str]) -> None:
        self.calls = calls
        self.notes = notes

    async def invoke(
        self,
        function: str,
        payload: bytes,
        *,
        client_context: str | None = None,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
    ) -> InvocationResult:
        key = source or ""
        try:
            result = await self.calls.invoke(
                function,
                payload,
                client_context=client_context,
                trace=trace,
                source=source,
                qualifier=qualifier,
            )
        except FunctionNotFound:
            self.notes[key] = FUNCTION_NOT_FOUND
            raise
        except Throttled:
            self.notes[key] = THROTTLED
            raise
        self.notes[key] = OK if result.ok else FUNCTION_FAILED
        return result

    def enqueue(
        self,
        function: str,
        payload: bytes,
        *,
        trace: str | None = None,
        source: str | None = None,
        qualifier: str | None = None,
        delay_s: float = 0.0,
    ) -> Awaitable[str]:
        return self.calls.enqueue(
            function, payload, trace=trace, source=source, qualifier=qualifier, delay_s=delay_s
        )


class MappedSources:
    def __init__(
        self,
        *,
        start: Callable[[str, MappedSource], None],
        stop: Callable[[str], Awaitable[None]],
        handle: Callable[[str], Any],
        lock: asyncio.Lock,
        sources_dir: Path,
    ) -> None:
        self._start = start
        self._stop = stop
        self._handle = handle  # the daemon's SourceHandle of a running source, or None
        self._lock = lock
        self.sources_dir = sources_dir
        self.wanted: dict[str, MappedSource | None] = {}
        self.running: dict[str, MappedSource] = {}
        self.notes: dict[str, str] = {}
        self._changed = asyncio.Event()

    # -- the port -------------------------------------------------------------------------------------

    def apply(self, mappings: Mapping[str, MappedSource | None]) -> None:
        self.wanted = dict(mappings)
        self._changed.set()

    def status(self, name: str) -> Running:
        handle = self._handle(name)
        ready = handle is not None and handle.ready.is_set()
        return Running(self.running.get(name), ready, self.notes.get(name, NO_RECORDS))

    # -- converging -----------------------------------------------------------------------------------

    def owns(self, name: str) -> bool:
        return name in self.running

    async def run(self) -> None:
        task = asyncio.current_task()
        while True:
            await self._changed.wait()
            self._changed.clear()
            async with self._lock:
                await self._converge()
            # Stopping a source swallows the CancelledError its task ends with; a cancel of this task that
            # arrived meanwhile must still end it.
            if task is not None and task.cancelling():
                raise asyncio.CancelledError

    async def _converge(self) -> None:
        wanted = dict(self.wanted)
        for name, mapped in list(self.running.items()):
            if wanted.get(name) != mapped:
                log.info("event source mapping stopping", extra={"fields": {"source": name}})
                await self._stop(name)
                del self.running[name]  # only now: until the source has stopped, its State is Disabling
        for name, want in wanted.items():
            if want is not None and name not in self.running:
                if self._handle(name) is not None:
                    log.error(f"event source mapping {name}: a config source has that name; not started")
                    continue
                log.info("event source mapping starting", extra={"fields": {"source": name}})
                self.running[name] = want
                self._start(name, want)
        await asyncio.to_thread(self._remove_deleted, set(wanted))

    def _remove_deleted(self, wanted: set[str]) -> None:
        if not self.sources_dir.is_dir():
            return
        for folder in self.sources_dir.glob(f"{PREFIX}*"):
            if folder.name not in wanted and folder.name not in self.running:
                shutil.rmtree(folder, ignore_errors=True)
                self.notes.pop(folder.name, None)
