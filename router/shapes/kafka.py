"""Kafka records (self-managed Kafka or MSK -> Lambda through an event source mapping).

`record(...)` builds one record as Lambda delivers it: topic, partition, offset, timestamp (epoch ms),
timestampType (CREATE_TIME | LOG_APPEND_TIME), key and value base64 (left out when null, as for a record
without key), headers as a list of one-entry objects whose value is the header's bytes as a list of ints.

Unlike the other stream sources the event is not a `Records` list: `wrap(envelopes)` groups records under
`"<topic>-<partition>"` keys, with eventSource `SelfManagedKafka` and `bootstrapServers` (comma-separated),
both taken from the first envelope's meta: `envelope(rec, source_name=..., bootstrap_servers=[...])` puts
them there. Given `event_source_arn` (an MSK cluster ARN) the event is MSK's: eventSource `aws:kafka` plus
`eventSourceArn`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "kafka"
TIMESTAMP_TYPES = ("CREATE_TIME", "LOG_APPEND_TIME")
META_BOOTSTRAP = "bootstrapServers"
META_ARN = "eventSourceArn"


def record(
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp: int,
    timestamp_type: str = "CREATE_TIME",
    key: bytes | None = None,
    value: bytes | None = None,
    headers: Iterable[tuple[str, bytes | None]] = (),
) -> dict[str, Any]:
    """One Kafka record. `timestamp` is epoch milliseconds, as Kafka keeps it."""
    if timestamp_type not in TIMESTAMP_TYPES:
        raise ValueError(f"timestamp_type must be CREATE_TIME or LOG_APPEND_TIME, got {timestamp_type!r}")
    rec: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "timestampType": timestamp_type,
    }
    if key is not None:
        rec["key"] = common.b64(key)
    if value is not None:
        rec["value"] = common.b64(value)
    rec["headers"] = [{name: list(v or b"")} for name, v in headers]
    return rec


def bootstrap_string(servers: str | Iterable[str]) -> str:
    return servers if isinstance(servers, str) else ",".join(servers)


def envelope(
    rec: dict[str, Any],
    *,
    source_name: str,
    bootstrap_servers: str | Iterable[str] = "",
    event_source_arn: str | None = None,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    servers = bootstrap_string(bootstrap_servers)
    extra: dict[str, Any] = {META_BOOTSTRAP: servers}
    if event_source_arn:
        extra[META_ARN] = event_source_arn
    first = servers.split(",")[0]
    source = event_source_arn or (
        f"kafka://{first}/{rec['topic']}" if first else f"router://sources/{source_name}"
    )
    return Envelope(
        id=id or f"{rec['topic']}-{rec['partition']}-{rec['offset']}",
        source=source,
        type="com.amazonaws.kafka.record",
        subject=_text(rec.get("key")),
        time=timefmt.iso_ms(rec["timestamp"] / 1000),
        kind=KIND,
        source_name=source_name,
        record=rec,
        trace=trace,
        meta={**(meta or {}), **extra},
    )


def _text(b64: str | None) -> str | None:
    """A base64 key as text when it is non-empty UTF-8 (the subject), else None."""
    if not b64:
        return None
    try:
        return base64.b64decode(b64).decode("utf-8") or None
    except (ValueError, UnicodeDecodeError):
        return None


def wrap(envelopes: Sequence[Envelope], **_: Any) -> dict[str, Any]:
    meta = envelopes[0].meta if envelopes else {}
    records: dict[str, list[Any]] = {}
    for e in envelopes:
        records.setdefault(f"{e.record['topic']}-{e.record['partition']}", []).append(e.record)
    event: dict[str, Any] = {"eventSource": "SelfManagedKafka"}
    if meta.get(META_ARN):
        event = {"eventSource": "aws:kafka", "eventSourceArn": meta[META_ARN]}
    event["bootstrapServers"] = bootstrap_string(meta.get(META_BOOTSTRAP, ""))
    event["records"] = records
    return event


def sample() -> Envelope:
    rec = record(
        topic="clicks",
        partition=0,
        offset=15,
        timestamp=1_700_000_000_987,
        key=b"user-1",
        value=b'{"page": "/home", "user": "user-1"}',
        headers=[("source", b"web")],
    )
    return envelope(rec, source_name="clicks", bootstrap_servers=["127.0.0.1:9092"])
