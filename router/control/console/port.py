"""What the console's handlers see of the daemon beyond the ControlPlane: its history and its sources.

The daemon builds a `ConsolePort` and puts it in `ControlPlane.extras[CONSOLE]` (the control plane may not
import the daemon, so the source handles are read through the `SourceHandle` protocol below, which the
daemon's own `router.daemon.SourceHandle` satisfies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from router.config import RouteConfig
    from router.control.console.reports import ReportLines
    from router.core.ports import SourceContext
    from router.dispatch.history import History

CONSOLE = "console"  # the key of `ConsolePort` in ControlPlane.extras


class SourceHandle(Protocol):
    """A source the daemon supervises: its settings and routes, and how its runs went."""

    name: str
    settings: Any
    routes: list[RouteConfig]
    task: asyncio.Task[None] | None
    ready: asyncio.Event
    started_at: float  # wall clock of the current run's start
    restarts: int
    last_error: str | None
    last_error_at: float | None


@dataclass
class ConsolePort:
    history: History  # the dispatcher's last hour (router/dispatch/history.py)
    handles: Callable[[], Mapping[str, SourceHandle]]  # every supervised source by name
    contexts: Callable[[], Mapping[str, SourceContext]]  # the running ones' contexts (their SourceStatus)
    is_mapping: Callable[[str], bool]  # an event source mapping made through the API (not the config file)
    reports: ReportLines  # the REPORT lines of the latest calls
