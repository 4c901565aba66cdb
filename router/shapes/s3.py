"""S3 event notifications (S3 -> Lambda, asynchronous invoke): one record per object event.

`record(...)` builds one element of `Records` exactly as S3 sends it (eventVersion 2.1). `object.key` is
URL-encoded the way S3 does it (space -> '+', other reserved characters percent-encoded, '/' kept), so a
handler that does `unquote_plus(key)` gets the real key back. `ObjectRemoved:*` records carry no size/eTag,
as on S3; `versionId` appears only when given (versioned buckets). `envelope(record, source_name=...)` wraps
it with CloudEvents attributes: type `com.amazonaws.s3.<eventName>`, source the bucket ARN, subject the
decoded key. `wrap(envelopes)` is the event a function receives: `{"Records": [...]}`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "s3"
PRINCIPAL_ID = "AWS:AIDAJDPLRKLG7UEXAMPLE"  # the IAM user that "wrote" the object
OWNER_ID = "A3I5XTEXAMAI3E"  # the bucket owner's canonical id, short form as in S3 notifications
CONFIGURATION_ID = "router-notification"


def encode_key(key: str) -> str:
    """S3's URL encoding of object keys in notifications: quote_plus, keeping '/'."""
    return quote_plus(key, safe="/")


def sequencer(n: int) -> str:
    """A sequencer from a monotonically growing number (e.g. time in ns): upper-case hex, 18 digits.

    S3 sequencers order events for one key when compared as hex strings of equal length.
    """
    return f"{n:018X}"


def record(
    bucket: str,
    key: str,
    *,
    size: int = 0,
    etag: str = "",
    sequencer: str,
    event_name: str = "ObjectCreated:Put",
    version_id: str | None = None,
    time: float | None = None,
    region: str = common.REGION,
    source_ip: str = "127.0.0.1",
    principal_id: str = PRINCIPAL_ID,
    request_id: str | None = None,
    host_id: str | None = None,
    configuration_id: str = CONFIGURATION_ID,
) -> dict[str, Any]:
    """One S3 notification record. `key` is the real (decoded) key; `etag` without quotes."""
    obj: dict[str, Any] = {"key": encode_key(key)}
    if not event_name.startswith("ObjectRemoved"):
        obj["size"] = size
        obj["eTag"] = etag.strip('"')
    if version_id is not None:
        obj["versionId"] = version_id
    obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": timefmt.iso_ms(common.now(time)),
        "eventName": event_name,
        "userIdentity": {"principalId": principal_id},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {
            "x-amz-request-id": request_id or common.hex_id(16),
            "x-amz-id-2": host_id or common.b64(os.urandom(57)),  # 76 characters, like S3's
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": OWNER_ID},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def envelope(
    rec: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    s3 = rec["s3"]
    return Envelope(
        id=id or f"{rec['responseElements']['x-amz-request-id']}-{s3['object']['sequencer']}",
        source=s3["bucket"]["arn"],
        type=f"com.amazonaws.s3.{rec['eventName']}",
        subject=unquote_plus(s3["object"]["key"]),
        time=rec["eventTime"],
        kind=KIND,
        source_name=source_name,
        record=rec,
        trace=trace,
        meta=meta or {},
    )


def wrap(envelopes: Sequence[Envelope], **_: Any) -> dict[str, Any]:
    return common.records_event(envelopes)


def sample() -> Envelope:
    rec = record(
        "uploads",
        "photos/summer beach.jpg",
        size=1305107,
        etag="b21b84d653bb07b05b1e6b33684dc11b",
        sequencer="0C0F6F405D6ED209E1",
        time=1_700_000_000.123,
        source_ip="205.255.255.255",
        request_id="D82B88E5F771F645",
        host_id="vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo=",
    )
    return envelope(rec, source_name="uploads")
