"""Object-created source (`kind: s3`): an emulated bucket (a watched folder) or a real S3 endpoint.

Three modes, chosen by the settings:

* `directory:` an emulated bucket (`router/sources/s3_folder.py`): files in the folder are the objects.
* `queue:` the bucket's S3 event notifications, read from an SQS queue (`router/sources/s3_api.py`).
* otherwise the bucket at `endpoint:` (or AWS) is listed with ListObjectsV2 every `poll_interval_s`.

Contract, for every mode: each object event becomes one envelope carrying one S3 notification record
(`router.shapes.s3`), submitted on its own (one record per invocation, as S3 invokes Lambda). The native
event is acknowledged only after submit returned: the version is recorded in `<state_dir>/objects.jsonl`
(folder and polling modes) or the SQS message deleted (queue mode). A `DispatchError` from submit leaves it
unacknowledged; the source backs off and tries again. Each version of an object is announced once; an
ungraceful stop between submit and the acknowledgement announces it again (at-least-once, never lost).
`ObjectRemoved:Delete` events are produced only when a route of this source asks for them in `events:`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from router.config import Strict
from router.errors import DispatchError

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.envelope import Envelope
    from router.sources.base import Source, SourceContext
    from router.sources.s3_state import AnnouncedObjects

log = logging.getLogger("router.sources.s3")

# Names editors, downloaders and atomic writers give files that are not (yet) objects.
DEFAULT_IGNORE = [".*", "*~", "*.tmp", "*.temp", "*.swp", "*.swx", "*.part", "*.crdownload", "~$*", "#*#"]
EVENT_TYPES = (
    "ObjectCreated:*",
    "ObjectCreated:Put",
    "ObjectCreated:Post",
    "ObjectCreated:Copy",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectRemoved:*",
    "ObjectRemoved:Delete",
    "ObjectRemoved:DeleteMarkerCreated",
)
REMOVED = "ObjectRemoved:Delete"
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_BACKOFF_S = 30.0


class Config(Strict, tag="s3", tag_field="kind", frozen=True):
    bucket: str
    # emulated bucket
    directory: str | None = None
    ignore: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_IGNORE))
    stable_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 0.5
    force_polling: bool = False  # poll the folder instead of inotify (network and container mounts)
    # real S3 API
    endpoint: str | None = None  # None: AWS itself
    queue: str | None = None  # SQS queue name or URL receiving the bucket's notifications
    region: str | None = None  # default: account.region
    access_key_id: str | None = None  # default: the AWS credential chain (environment, profile)
    secret_access_key: str | None = None
    prefix: str = ""  # polling mode: list only keys under this prefix
    poll_interval_s: Annotated[float, msgspec.Meta(ge=0.05, le=86400)] = 5.0
    # SQS long-poll wait; a stop waits for the poll in flight to end (so its messages are not hidden)
    wait_time_s: Annotated[int, msgspec.Meta(ge=0, le=20)] = 5
    # folder and polling modes: on the very first start, announce the objects already there
    announce_existing: bool = True

    def check(self, config: RouterConfig, where: str, problems: list[str]) -> None:
        if not _BUCKET_NAME.match(self.bucket) or ".." in self.bucket:
            problems.append(
                f"{where}.bucket: {self.bucket!r} is not a valid bucket name (3-63 of a-z 0-9 . -, "
                "starting and ending with a letter or digit)"
            )
        if self.directory is not None:
            for key in ("endpoint", "queue"):
                if getattr(self, key) is not None:
                    problems.append(
                        f"{where}.{key}: give either directory (an emulated bucket) or {key}, not both"
                    )
            path = config.path(self.directory)
            if path.exists() and not path.is_dir():
                problems.append(f"{where}.directory: {self.directory!r} exists and is not a folder")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            problems.append(
                f"{where}.access_key_id: give both access_key_id and secret_access_key, or neither"
            )
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
        from router.sources.s3_folder import FolderBucket

        return FolderBucket(ctx)
    from router.sources.s3_api import PolledBucket, QueuedNotifications

    return QueuedNotifications(ctx) if config.queue is not None else PolledBucket(ctx)


def route_wants(route_events: list[str] | None, event_name: str) -> bool:
    """Does a route's `events` list select this event name? Without a list: creations only (as S3 needs)."""
    patterns = route_events if route_events is not None else ["ObjectCreated:*"]
    return any(fnmatch.fnmatchcase(event_name, p) for p in patterns)


def is_ignored(key: str, patterns: Sequence[str]) -> bool:
    """A key is ignored when any part of its path matches a name pattern, or the key a pattern with '/'."""
    parts = key.split("/")
    for p in patterns:
        if "/" in p:
            if fnmatch.fnmatchcase(key, p):
                return True
        elif any(fnmatch.fnmatchcase(part, p) for part in parts):
            return True
    return False


@dataclass(frozen=True)
class NewVersion:
    """A version of a key to announce as ObjectCreated:Put."""

    key: str
    size: int
    etag: str
    stamp: str  # what tells this version from the next (see s3_state.ObjectVersion)
    when: float | None = None  # eventTime; None: now
    trace: str | None = None  # loop protection: the writer's trace (router/trace.py), when it left one


class Announcer:
    """Builds one source's S3 records, submits them (retrying dispatch errors), records what was announced."""

    def __init__(self, ctx: SourceContext, objects: AnnouncedObjects | None) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.objects = objects
        self.region = self.config.region or ctx.region
        self.wants_removals = any(route_wants(r.config.events, REMOVED) for r in ctx.routes)

    def record(
        self, key: str, *, event_name: str, seq: int, size: int = 0, etag: str = "", when: float | None = None
    ) -> dict[str, Any]:
        from router.shapes import s3 as shape

        return shape.record(
            self.config.bucket,
            key,
            size=size,
            etag=etag,
            sequencer=shape.sequencer(seq),
            event_name=event_name,
            time=self.ctx.clock.time() if when is None else when,
            region=self.region,
        )

    def envelope(self, record: dict[str, Any], trace: str | None = None) -> Envelope:
        from router.shapes import s3 as shape

        return shape.envelope(record, source_name=self.ctx.name, trace=trace)

    async def created(self, versions: Sequence[NewVersion]) -> None:
        """Announce new versions of keys: submitted concurrently (so the queue commits them together), then
        recorded with one fsync. Returns when all were accepted and recorded."""
        from router.sources.s3_state import ObjectVersion

        assert self.objects is not None
        now = self.ctx.clock.time()
        seqs = [self.objects.next_sequencer(int(now * 1e6)) for _ in versions]
        envelopes = [
            self.envelope(
                self.record(
                    v.key, event_name="ObjectCreated:Put", seq=seq, size=v.size, etag=v.etag, when=v.when
                ),
                trace=v.trace,
            )
            for v, seq in zip(versions, seqs, strict=True)
        ]
        await asyncio.gather(*(self.submit([e]) for e in envelopes))
        self.objects.record_many(
            [
                (v.key, ObjectVersion(size=v.size, etag=v.etag, stamp=v.stamp, seq=seq))
                for v, seq in zip(versions, seqs, strict=True)
            ]
        )
        for v in versions:
            log.info(
                "announced s3 object",
                extra={"fields": {"source": self.ctx.name, "key": v.key, "size": v.size}},
            )

    async def removed(self, key: str) -> None:
        assert self.objects is not None
        if self.wants_removals:
            seq = self.objects.next_sequencer(int(self.ctx.clock.time() * 1e6))
            await self.submit([self.envelope(self.record(key, event_name=REMOVED, seq=seq))])
        self.objects.forget(key)

    async def submit(self, envelopes: Sequence[Envelope]) -> None:
        """Submit until accepted: a dispatch error is back-pressure, never a reason to drop the event."""
        backoff = 0.5
        while True:
            try:
                await self.ctx.submit(envelopes)
                return
            except DispatchError as e:
                log.warning(
                    "s3 event not accepted, retrying",
                    extra={"fields": {"source": self.ctx.name, "error": e.code, "retry_in_s": backoff}},
                )
                await self.ctx.clock.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


def client_options(ctx: SourceContext) -> dict[str, Any]:
    """Keyword arguments for aiobotocore's create_client, for S3 or SQS."""
    config: Config = ctx.config
    options: dict[str, Any] = {"region_name": config.region or ctx.region}
    if config.endpoint:
        options["endpoint_url"] = config.endpoint
    if config.access_key_id is not None:
        options["aws_access_key_id"] = config.access_key_id
        options["aws_secret_access_key"] = config.secret_access_key
    return options


def resolve_directory(ctx: SourceContext) -> Path:
    config: Config = ctx.config
    assert config.directory is not None
    path = Path(config.directory)
    return path if path.is_absolute() else Path(ctx.base_dir) / path
