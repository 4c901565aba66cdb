"""A real S3 endpoint (AWS, moto, SeaweedFS, MinIO...) through aiobotocore: notifications via SQS, or polling.

`QueuedNotifications` (`queue:` set) long-polls the SQS queue the bucket's event notifications go to, the
way AWS delivers them. Contract:

* Each S3 record of a message becomes one envelope; the message is deleted only after submit accepted all
  of its records. On a `DispatchError` the message is made visible again at once and the source backs off,
  so it comes back in order; if the router dies first, SQS redelivers it after its visibility timeout.
* `s3:TestEvent` messages (sent when notifications are configured) are deleted without an invocation;
  messages that are not S3 notifications are logged and deleted. Notifications wrapped by SNS are unwrapped.
* Keys arrive URL-encoded; they are decoded and re-encoded the way S3 encodes them (some emulators encode '/'
  too), and fields an emulator leaves out (userIdentity, requestParameters, responseElements, sequencer)
  are filled in, so the function sees the record as S3 sends it.

`PolledBucket` (no queue) lists the bucket with ListObjectsV2 every `poll_interval_s` and compares the listing
with `<state_dir>/objects.jsonl`: a key that is new or whose eTag or LastModified changed is announced once
(ObjectCreated:Put, eventTime its LastModified), a key that disappeared gives ObjectRemoved:Delete when a
route asks for it. An object written and removed between two polls is never seen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from router.config.sources.s3 import Config
from router.core.errors import DispatchError
from router.core.ports import SourceContext
from router.sources.s3.common import Announcer, NewVersion, client_options, retry_backoff
from router.sources.s3.state import AnnouncedObjects, ObjectVersion

log = logging.getLogger("router.sources.s3")
BATCH = 64  # new objects of one listing announced together (queued concurrently, recorded with one fsync)

CLIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


def _client_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, *CLIENT_ERRORS)


def _client_config(s3: bool) -> Any:
    from aiobotocore.config import AioConfig

    extra: dict[str, Any] = {"s3": {"addressing_style": "path"}} if s3 else {}
    retries = {"max_attempts": 2, "mode": "standard"}
    return AioConfig(retries=retries, connect_timeout=5, read_timeout=30, **extra)


# ---------------------------------------------------------------------------------------------------------
# SQS notifications


def s3_records(body: str) -> list[dict[str, Any]] | None:
    """The S3 records of an SQS message body; [] for a TestEvent; None when it is not an S3 notification."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return s3_records(doc["Message"])  # S3 -> SNS -> SQS
    if not isinstance(doc, dict):
        return None
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = doc.get("Records")
    if not isinstance(records, list):
        return None
    return [r for r in records if isinstance(r, dict) and r.get("eventSource") == "aws:s3" and "s3" in r]


def _writer(ctx: SourceContext, record: dict[str, Any]) -> str | None:
    """Loop protection: the trace of the invocation the write journal says put this object (router/core/
    writes.py); S3 notifications carry no trace of their own."""
    if ctx.writes is None:
        return None
    s3 = record["s3"]
    return ctx.writes.take_s3(s3["bucket"]["name"], unquote_plus(s3["object"]["key"]))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def normalize_record(raw: dict[str, Any], *, region: str, seq: int) -> dict[str, Any]:
    """A record from the queue as S3 sends it: every field present, the key encoded as S3 encodes it."""
    from router.shapes import s3 as shape

    s3 = raw["s3"]
    obj = s3.get("object", {})
    key = unquote_plus(obj.get("key", ""))
    full = shape.record(
        s3.get("bucket", {}).get("name", ""),
        key,
        size=obj.get("size", 0),
        etag=obj.get("eTag", ""),
        sequencer=shape.sequencer(seq),
        event_name=raw.get("eventName", "ObjectCreated:Put"),
        version_id=obj.get("versionId"),
        region=raw.get("awsRegion") or region,
    )
    merged = _merge(full, raw)
    merged["s3"]["object"]["key"] = shape.encode_key(key)
    if merged["eventName"].startswith("ObjectRemoved"):
        for field in ("size", "eTag"):  # S3 sends neither for a removal; some emulators do
            merged["s3"]["object"].pop(field, None)
    return merged


class QueuedNotifications:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.announcer = Announcer(ctx, None)

    async def run(self) -> None:
        from aiobotocore.session import get_session

        errors = _client_errors()
        session = get_session()
        options = client_options(self.ctx)
        async with session.create_client("sqs", config=_client_config(False), **options) as sqs:
            queue_url = await self._queue_url(sqs, errors)
            self.ctx.ready()
            backoff = retry_backoff()
            while True:
                try:
                    messages = await self._receive(sqs, queue_url)
                    await self._handle(sqs, queue_url, messages)
                    backoff.reset()
                except DispatchError as e:
                    delay = backoff.next()
                    fields = {"source": self.ctx.name, "error": e.code, "retry_in_s": delay}
                    log.warning("s3 notifications not accepted, retrying", extra={"fields": fields})
                    await self.ctx.clock.sleep(delay)
                except errors as e:
                    log.warning("sqs receive failed: %s", e, extra={"fields": {"source": self.ctx.name}})
                    await backoff.sleep(self.ctx.clock)

    async def _receive(self, sqs: Any, queue_url: str) -> list[dict[str, Any]]:
        """One long poll. Cancelled mid-poll, it still lets the poll end and hands back what it got: SQS
        would otherwise hide those messages for the queue's visibility timeout, though nobody has them."""
        wait = self.config.wait_time_s
        poll = asyncio.ensure_future(
            sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        )
        try:
            resp = await asyncio.shield(poll)
        except asyncio.CancelledError:
            try:
                resp = await asyncio.wait_for(poll, timeout=wait + 2)
                await self._release(sqs, queue_url, resp.get("Messages", []))
            except Exception:  # best effort while stopping: SQS redelivers after the timeout anyway
                pass
            raise
        return list(resp.get("Messages", []))

    async def _queue_url(self, sqs: Any, errors: tuple[type[BaseException], ...]) -> str:
        queue = self.config.queue
        assert queue is not None
        if queue.startswith(("http://", "https://")):
            return queue
        backoff = retry_backoff()
        while True:
            try:
                return str((await sqs.get_queue_url(QueueName=queue))["QueueUrl"])
            except errors as e:
                fields = {"source": self.ctx.name}
                log.warning("cannot find sqs queue %r: %s", queue, e, extra={"fields": fields})
                await backoff.sleep(self.ctx.clock)

    async def _handle(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        """Submit each message's records in order, deleting each message once accepted."""
        for i, msg in enumerate(messages):
            records = s3_records(msg.get("Body", ""))
            if records is None:
                log.warning(
                    "not an s3 notification, deleted: %.200s",
                    msg.get("Body", ""),
                    extra={"fields": {"source": self.ctx.name, "message_id": msg.get("MessageId")}},
                )
            elif records:
                region = self.announcer.region
                normalized = [normalize_record(r, region=region, seq=time.time_ns()) for r in records]
                if self.ctx.writes is not None:
                    self.ctx.writes.refresh()
                envelopes = [self.announcer.envelope(r, trace=_writer(self.ctx, r)) for r in normalized]
                try:
                    await self.ctx.submit(envelopes)
                except DispatchError:
                    await self._release(sqs, queue_url, messages[i:])
                    raise
            await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])

    async def _release(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        """Make unaccepted messages visible again now, so they come back first (not after the timeout)."""
        if not messages:
            return
        entries = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for n, m in enumerate(messages)
        ]
        try:
            await sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except _client_errors() as e:
            log.warning("could not release sqs messages (they return after their timeout): %s", e)

    async def aclose(self) -> None:
        return None


# ---------------------------------------------------------------------------------------------------------
# ListObjectsV2 polling


class PolledBucket:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.objects: AnnouncedObjects | None = None

    async def run(self) -> None:
        from aiobotocore.session import get_session

        errors = _client_errors()
        self.objects = AnnouncedObjects(Path(self.ctx.state_dir) / "objects.jsonl")
        announcer = Announcer(self.ctx, self.objects)
        session = get_session()
        options = client_options(self.ctx)
        async with session.create_client("s3", config=_client_config(True), **options) as s3:
            backoff = retry_backoff()
            while True:
                try:
                    listing = await self._list(s3)
                except errors as e:
                    log.warning(
                        "listing bucket %r failed: %s",
                        self.config.bucket,
                        e,
                        extra={"fields": {"source": self.ctx.name}},
                    )
                    await backoff.sleep(self.ctx.clock)
                    continue
                backoff.reset()
                await self._compare(listing, announcer)
                self.ctx.ready()
                await self.ctx.clock.sleep(self.config.poll_interval_s)

    async def _list(self, s3: Any) -> dict[str, tuple[int, str, float]]:
        """key -> (size, eTag, LastModified epoch seconds), for every key under the prefix."""
        listing: dict[str, tuple[int, str, float]] = {}
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.config.bucket, Prefix=self.config.prefix):
            for obj in page.get("Contents", []):
                listing[obj["Key"]] = (
                    int(obj.get("Size", 0)),
                    obj.get("ETag", "").strip('"'),
                    obj["LastModified"].timestamp(),
                )
        return listing

    async def _compare(self, listing: dict[str, tuple[int, str, float]], announcer: Announcer) -> None:
        assert self.objects is not None
        first_start = self.objects.empty_journal
        new: list[NewVersion] = []
        writes = self.ctx.writes
        if writes is not None:
            writes.refresh()  # after the listing: every write noted before S3 stored it is seen
        for key in sorted(listing):
            size, etag, modified = listing[key]
            stamp = f"{etag}:{modified:.6f}"
            known = self.objects.get(key)
            if known is None or known.stamp != stamp:
                trace = writes.take_s3(self.config.bucket, key) if writes is not None else None
                new.append(NewVersion(key, size, etag, stamp, when=modified, trace=trace))
        if first_start and not self.config.announce_existing:
            self.objects.record_many(
                [(v.key, ObjectVersion(size=v.size, etag=v.etag, stamp=v.stamp, seq=0)) for v in new]
            )
            new = []
        for start in range(0, len(new), BATCH):
            await announcer.created(new[start : start + BATCH])
        for key in self.objects.keys():
            if key not in listing:
                await announcer.removed(key)
        self.objects.mark_started()

    async def aclose(self) -> None:
        if self.objects is not None:
            self.objects.close()
