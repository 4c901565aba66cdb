"""What every mode of the S3 source shares: announcing new object versions, ignore patterns, clients."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.config.sources.s3 import Config
from router.core.errors import DispatchError
from router.core.retry import Backoff

if TYPE_CHECKING:
    from router.core.envelope import Envelope
    from router.core.ports import SourceContext
    from router.sources.s3.state import AnnouncedObjects

log = logging.getLogger("router.sources.s3")

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
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
MAX_BACKOFF_S = 30.0


def retry_backoff() -> Backoff:
    """The wait between tries of an S3, SQS or submit call that failed: 0.5 s doubling up to 30 s."""
    return Backoff(0.5, MAX_BACKOFF_S)


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
        self.wants_removals = any(route_wants(r.settings.events, REMOVED) for r in ctx.routes)

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
        from router.sources.s3.state import ObjectVersion

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
        backoff = retry_backoff()
        while True:
            try:
                await self.ctx.submit(envelopes)
                return
            except DispatchError as e:
                delay = backoff.next()
                log.warning(
                    "s3 event not accepted, retrying",
                    extra={"fields": {"source": self.ctx.name, "error": e.code, "retry_in_s": delay}},
                )
                await self.ctx.clock.sleep(delay)


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
