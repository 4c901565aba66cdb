"""What the control plane's handlers see of the daemon, and where they find it in the aiohttp app.

`ControlPlane` is built by the daemon and stored in the app under `PLANE_KEY`; the inspection API's part of
it (`Inspection`) is in `extras[INSPECTION]` when inspect.enabled. Every handler module imports this one
(never app.py, which imports the handler modules to build the routes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from router.control.errors import ApiError
from router.core.errors import RESOURCE_NOT_FOUND

if TYPE_CHECKING:
    from router.config import Config
    from router.control.catalog import FunctionCatalog
    from router.control.mappings.registry import MappingRegistry
    from router.core.backends import InvocationRecord
    from router.core.ports import SourceContext
    from router.dispatch.dispatcher import Dispatcher

INSPECTION = "inspect"  # the key of `Inspection` in ControlPlane.extras
CLUSTER = "cluster"  # ControlPlane.extras: the cluster's status (an async callable giving a dict)

PLANE_KEY: web.AppKey[ControlPlane] = web.AppKey("plane")


@dataclass
class ControlPlane:
    """What the control plane's handlers see of the daemon."""

    config: Config
    dispatcher: Dispatcher
    metrics: Any
    is_ready: Callable[[], bool]
    catalog: FunctionCatalog | None = None  # function management; None: the management API answers 500
    reload: Callable[[], Any] | None = None
    mappings: MappingRegistry | None = None  # event source mappings; None: those operations answer 500
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the inspection store


@dataclass
class Inspection:
    """What the inspection handlers need from the daemon."""

    store: InvocationRecord
    sources: Callable[[], Mapping[str, SourceContext]]  # running sources by name
    config: Callable[[], Config]  # the current config (it changes on reload)


def inspection(request: web.Request) -> Inspection:
    found: Inspection | None = request.app[PLANE_KEY].extras.get(INSPECTION)
    if found is None:
        raise ApiError(
            404, RESOURCE_NOT_FOUND, "The inspection API is off (inspect.enabled is false in the config)"
        )
    return found
