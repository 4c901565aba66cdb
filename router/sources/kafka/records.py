"""Consumer records into stream records, fast: the per-record cost bounds a Kafka mapping's throughput.

Two ways, chosen per route (`RecordBuilder.build_all(messages)`):

* Native (routes without a filter, in the `aws` event format): each record becomes a `KafkaRecord` Struct
  kept in `StreamRecord.native`, with no envelope; `render(partition, records)` encodes a batch's event in
  one msgspec call (bytes become base64, a null key or value is left out). Its bytes equal what the route
  renders from the envelopes of the shape builders (`router.shapes.kafka.record`, `envelope`, `wrap`) for
  the same messages; a unit test holds the two together. The loop-protection trace is read from the headers
  into `StreamRecord.trace`.
* Envelopes (a filter, or the `cloudevents` format, needs them): `build(message)` returns the `StreamRecord`
  whose envelope equals, field for field, `router.shapes.kafka.envelope(router.shapes.kafka.record(...))`,
  at a fraction of the cost: the per-source parts (meta, source URI) are built once, base64 is done by
  binascii, the subject is decoded from the raw key, and the RFC 3339 time reuses the formatted second of
  the previous record.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from router.core import timefmt
from router.core.envelope import Envelope, encoder
from router.core.trace import from_kafka_headers
from router.shapes import kafka as shapes
from router.sources.stream.engine import StreamRecord

_TIMESTAMP_TYPE = {0: "CREATE_TIME", 1: "LOG_APPEND_TIME"}  # aiokafka's timestamp_type
RECORD_OVERHEAD = 160  # bytes of JSON around one record's key and value in the event
EVENT_TYPE = "com.amazonaws.kafka.record"


class KafkaRecord(msgspec.Struct, rename="camel", gc=False):
    """One record of Lambda's Kafka event, in the event's field order (see `router.shapes.kafka.record`)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str
    key: bytes | UnsetType = UNSET  # msgspec writes bytes as base64; UNSET (a null key) is left out
    value: bytes | UnsetType = UNSET
    headers: Any = ()  # [{name: [byte, ...]}, ...]


class RecordBuilder:
    def __init__(self, *, source_name: str, bootstrap_servers: str, event_source_arn: str | None) -> None:
        self.source_name = source_name
        self.arn = event_source_arn
        self.meta: dict[str, Any] = {shapes.META_BOOTSTRAP: bootstrap_servers}
        if event_source_arn:
            self.meta[shapes.META_ARN] = event_source_arn
        self._first = bootstrap_servers.split(",")[0]
        self._servers = bootstrap_servers
        self._sources: dict[str, str] = {}
        self._second: int | None = None
        self._second_text = ""

    def event_head(self) -> dict[str, str]:
        """The event's fields before `records`, as `router.shapes.kafka.wrap` writes them."""
        if self.arn:
            return {"eventSource": "aws:kafka", "eventSourceArn": self.arn, "bootstrapServers": self._servers}
        return {"eventSource": "SelfManagedKafka", "bootstrapServers": self._servers}

    def build_all(self, messages: Iterable[Any], *, envelopes: bool) -> list[StreamRecord]:
        """Stream records for consumer records: with envelopes (`build`), or native (see the module doc)."""
        if envelopes:
            return [self.build(m) for m in messages]
        out: list[StreamRecord] = []
        append = out.append
        types = _TIMESTAMP_TYPE
        for m in messages:  # one flat loop: it runs once per record
            key, value, headers, offset, timestamp = m.key, m.value, m.headers, m.offset, m.timestamp
            size = RECORD_OVERHEAD
            if key is not None:
                size += (len(key) + 2) // 3 * 4  # its base64 length
            if value is not None:
                size += (len(value) + 2) // 3 * 4
            trace = None
            if headers:
                listed: Any = [{name: list(v or b"")} for name, v in headers]
                size += sum(len(name) + 4 * len(v or b"") + 8 for name, v in headers)
                trace = from_kafka_headers(headers)
            else:
                listed = ()
            native = KafkaRecord(
                m.topic,
                m.partition,
                offset,
                timestamp,
                types.get(m.timestamp_type, "CREATE_TIME"),
                UNSET if key is None else key,
                UNSET if value is None else value,
                listed,
            )
            append(StreamRecord(offset, None, timestamp / 1000, size, key, False, trace, native))
        return out

    def render(self, partition: str, records: Sequence[StreamRecord]) -> bytes:
        """The Kafka event of native records of one partition (named `"<topic>-<partition>"`), encoded."""
        event: dict[str, Any] = self.event_head()
        event["records"] = {partition: [r.native for r in records]}
        return encoder.encode(event)

    def build(self, m: Any) -> StreamRecord:
        # One flat function: it runs once per record, and its cost bounds a mapping's throughput.
        topic, key, value, headers, timestamp = m.topic, m.key, m.value, m.headers, m.timestamp
        rec: dict[str, Any] = {
            "topic": topic,
            "partition": m.partition,
            "offset": m.offset,
            "timestamp": timestamp,
            "timestampType": _TIMESTAMP_TYPE.get(m.timestamp_type, "CREATE_TIME"),
        }
        size = RECORD_OVERHEAD
        subject = None
        if key is not None:
            size += len(encoded := b2a_base64(key, newline=False).decode("ascii"))
            rec["key"] = encoded
            if key:
                try:
                    subject = key.decode("utf-8") or None
                except UnicodeDecodeError:
                    subject = None
        if value is not None:
            size += len(encoded := b2a_base64(value, newline=False).decode("ascii"))
            rec["value"] = encoded
        if headers:
            rec["headers"] = [{name: list(v or b"")} for name, v in headers]
            size += sum(len(name) + 4 * len(v or b"") + 8 for name, v in headers)
        else:
            rec["headers"] = []
        second, ms = divmod(timestamp, 1000)
        if second != self._second:
            self._second = second
            self._second_text = timefmt.iso_ms(second)[:-5]  # "2024-01-01T00:00:00"
        envelope = Envelope(
            id=f"{topic}-{m.partition}-{m.offset}",
            source=self._sources.get(topic) or self._source(topic),
            type=EVENT_TYPE,
            subject=subject,
            time=f"{self._second_text}.{ms:03d}Z",
            kind=shapes.KIND,
            source_name=self.source_name,
            record=rec,
            meta=self.meta,
            trace=from_kafka_headers(headers) if headers else None,  # loop protection (router/trace.py)
        )
        return StreamRecord(
            position=m.offset, envelope=envelope, arrival=timestamp / 1000, size=size, key=key
        )

    def _source(self, topic: str) -> str:
        source = self._sources.get(topic)
        if source is None:
            if self.arn:
                source = self.arn
            elif self._first:
                source = f"kafka://{self._first}/{topic}"
            else:
                source = f"router://sources/{self.source_name}"
            self._sources[topic] = source
        return source
