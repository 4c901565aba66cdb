"""Object-created source (`kind: s3`): an emulated bucket (a watched folder) or a real S3 endpoint.

Three modes, chosen by the settings:

* `directory:` an emulated bucket (`folder.py`): files in the folder are the objects.
* `queue:` the bucket's S3 event notifications, read from an SQS queue (`api.py`).
* otherwise the bucket at `endpoint:` (or AWS) is listed with ListObjectsV2 every `poll_interval_s`.

Contract, for every mode: each object event becomes one envelope carrying one S3 notification record
(`router.shapes.s3`), submitted on its own (one record per invocation, as S3 invokes Lambda). The native
event is acknowledged only after submit returned: the version is recorded in `<state_dir>/objects.jsonl`
(folder and polling modes) or the SQS message deleted (queue mode). A `DispatchError` from submit leaves it
unacknowledged; the source backs off and tries again. Each version of an object is announced once; an
ungraceful stop between submit and the acknowledgement announces it again (at-least-once, never lost).
`ObjectRemoved:Delete` events are produced only when a route of this source asks for them in `events:`.

Modules: `common` (announcing versions, shared by every mode), `folder` (the watched folder), `api` (SQS
notifications and ListObjectsV2 polling), `state` (what was announced). Its settings are
router/config/sources/s3.py.

May import: router.core, router.config, router.shapes, router.metrics; never router.dispatch, router.invoker
or router.control.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.config.sources.s3 import Config
from router.sources.s3.common import BUCKET_NAME, EVENT_TYPES

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.core.ports import Source, SourceContext

__all__ = ["check", "create"]


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    if not BUCKET_NAME.match(settings.bucket) or ".." in settings.bucket:
        problems.append(
            f"{where}.bucket: {settings.bucket!r} is not a valid bucket name (3-63 of a-z 0-9 . -, "
            "starting and ending with a letter or digit)"
        )
    if settings.directory is not None:
        for key in ("endpoint", "queue"):
            if getattr(settings, key) is not None:
                problems.append(
                    f"{where}.{key}: give either directory (an emulated bucket) or {key}, not both"
                )
        path = config.path(settings.directory)
        if path.exists() and not path.is_dir():
            problems.append(f"{where}.directory: {settings.directory!r} exists and is not a folder")
    if (settings.access_key_id is None) != (settings.secret_access_key is None):
        problems.append(f"{where}.access_key_id: give both access_key_id and secret_access_key, or neither")
    name = where.rpartition(".")[2]
    for i, route in enumerate(config.routes):
        if route.source == name:
            for e in route.events or []:
                if e not in EVENT_TYPES:
                    known = ", ".join(EVENT_TYPES)
                    problems.append(f"routes[{i}].events: unknown S3 event type {e!r} (known: {known})")


def create(ctx: SourceContext) -> Source:
    config: Config = ctx.config
    if config.directory is not None:
        from router.sources.s3.folder import FolderBucket

        return FolderBucket(ctx)
    from router.sources.s3.api import PolledBucket, QueuedNotifications

    return QueuedNotifications(ctx) if config.queue is not None else PolledBucket(ctx)
