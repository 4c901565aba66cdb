"""A schedule's state file: today's `router.core.backends.TickClaims` (docs/backends.md).

`<state_dir>/sources/<name>/schedule.json` holds the schedule's `ScheduleState`: its expression and time
zone, the anchor of rate() ticks, the latest tick handled (fired or skipped) and the request ids of the last
fired tick. One router is the only one to fire the schedule, so a claim needs no record of its own: a tick
is claimable while no saved state has handled it (`last_tick` before it), and saving the state after the
tick's events are queued confirms the claim. `save` replaces the file atomically and fsyncs it before it
returns; a crash between the submit and the save leaves the tick claimable, so it fires again.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from router.core.backends import ScheduleState
from router.core.durable import write_atomically

log = logging.getLogger("router.sources.schedule")

__all__ = ["ScheduleFile", "open_schedule_file"]

_decoder = msgspec.json.Decoder(ScheduleState)


def open_schedule_file(*, source: str, folder: Path) -> ScheduleFile:
    """The local `OpenTickClaims`: `<folder>/schedule.json`, folder being the source's state folder."""
    return ScheduleFile(folder / "schedule.json", source)


class ScheduleFile:
    """One schedule's state in one JSON file; the claims are what it records as handled."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self._handled: float | None = None  # last_tick of the state loaded or saved last

    async def load(self) -> ScheduleState | None:
        try:
            state = _decoder.decode(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError) as e:
            log.warning("schedule %s: state unreadable (%s), starting afresh", self.source, e)
            return None
        self._handled = state.last_tick
        return state

    async def claim(self, tick: float) -> bool:
        if self._handled is None:
            await self.load()
        return self._handled is None or tick > self._handled

    async def save(self, state: ScheduleState) -> None:
        # Written on the event loop, as the schedule source always has: one small file per tick or restart.
        write_atomically(self.path, msgspec.json.encode(state))
        self._handled = state.last_tick
