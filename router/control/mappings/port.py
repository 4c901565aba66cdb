"""What the control plane asks of the daemon for event source mappings, and what it hears back.

The control plane may not import the daemon (docs/architecture.md), so the daemon hands the registry a
`MappingPort` (it implements both calls):

* `apply(mappings)`: the whole desired set, by source name (`esm-<uuid>`): a `MappedSource` (the source's
  settings and its one route) for an enabled mapping, None for a disabled one (stopped, its state folder
  kept, so it resumes where it was). A name no longer in the set was deleted: its source is stopped and its
  state folder removed. Returns at once; the daemon converges in the background (stopping a source waits
  for its batches in flight), one change set at a time, the latest winning.
* `status(name)`: what runs under that name now (`Running`): the MappedSource it was started with (None when
  nothing runs), whether it is ready (subscribed, reading), and its last processing result (Lambda's
  LastProcessingResult: "No records processed", "OK", "PROBLEM: Function call failed", ...).

The registry compares what runs with what it asked for to report Lambda's State (Creating, Enabling,
Enabled, Updating, Disabling, Disabled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

NO_RECORDS = "No records processed"
OK = "OK"
FUNCTION_FAILED = "PROBLEM: Function call failed"
FUNCTION_NOT_FOUND = "PROBLEM: Function not found"
THROTTLED = "PROBLEM: Function call throttled"


@dataclass(frozen=True)
class MappedSource:
    settings: Any  # the kind's SourceSettings (router.config.sources)
    route: Any  # its one RouteConfig


@dataclass(frozen=True)
class Running:
    mapped: MappedSource | None = None
    ready: bool = False
    last_result: str = NO_RECORDS


class MappingPort(Protocol):
    def apply(self, mappings: Mapping[str, MappedSource | None]) -> None: ...

    def status(self, name: str) -> Running: ...
