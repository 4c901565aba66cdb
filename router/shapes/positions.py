"""Where an event came from in its source: `position(event)` reads it from the event a function receives.

The record keeps it with every event a route accepted, so a request id leads back to the object, the
partition and offsets, the shard and sequence numbers or the mail it came from:

* S3: `s3://bucket/key` (each record's, joined by `, `);
* Kafka: `topic-partition@first..last` per partition in the batch;
* Kinesis: `shardId@first..last` sequence numbers; DynamoDB Streams: `first..last` sequence numbers;
* SES: `mail:<messageId>`; a scheduled event: `rule@time`; an API Gateway request: `METHOD path`.

Also reads CloudEvents (structured, one or a batch: `data` is the AWS event) and Lambda's invocation records
(destination records: `request:<id>`). None when the event is none of these. Pure; decoding is the caller's.
"""

from __future__ import annotations

from typing import Any

MAX_LENGTH = 1000


def position(event: Any) -> str | None:
    """The position of an event (decoded JSON) in its source, or None."""
    found = _position(event)
    if found is not None and len(found) > MAX_LENGTH:
        return found[: MAX_LENGTH - 3] + "..."
    return found


def _position(event: Any) -> str | None:
    if isinstance(event, list):  # a CloudEvents batch
        parts = [p for p in (_position(e) for e in event) if p]
        return ", ".join(parts) or None
    if not isinstance(event, dict):
        return None
    if "specversion" in event and "data" in event:
        return _position(event["data"])
    if isinstance(event.get("Records"), list):
        return _records(event["Records"])
    if isinstance(event.get("records"), dict):
        return _kafka(event["records"])
    if event.get("detail-type") == "Scheduled Event":
        resources = event.get("resources") or ["schedule"]
        return f"{str(resources[0]).rsplit('/', 1)[-1]}@{event.get('time')}"
    if "requestContext" in event and ("rawPath" in event or "httpMethod" in event):
        http = event["requestContext"].get("http") or {}
        method = http.get("method") or event.get("httpMethod")
        return f"{method} {event.get('rawPath') or event.get('path')}"
    context = event.get("requestContext")
    if isinstance(context, dict) and "requestId" in context and "condition" in context:
        return f"request:{context['requestId']}"
    return None


def _records(records: list[Any]) -> str | None:
    first = records[0] if records and isinstance(records[0], dict) else {}
    if "s3" in first:
        return ", ".join(
            f"s3://{r['s3']['bucket']['name']}/{r['s3']['object']['key']}" for r in records if "s3" in r
        )
    if "kinesis" in first:
        shard = str(first.get("eventID", "")).split(":", 1)[0]
        seqs = [r["kinesis"]["sequenceNumber"] for r in records if "kinesis" in r]
        return f"{shard}@{_span(seqs)}"
    if "dynamodb" in first:
        seqs = [r["dynamodb"].get("SequenceNumber", "") for r in records if "dynamodb" in r]
        return _span(seqs)
    if "ses" in first:
        return ", ".join(f"mail:{r['ses']['mail']['messageId']}" for r in records if "ses" in r)
    return None


def _kafka(batches: dict[str, Any]) -> str | None:
    parts = []
    for name, records in batches.items():
        offsets = [r.get("offset") for r in records if isinstance(r, dict)]
        parts.append(f"{name}@{_span([str(o) for o in offsets])}")
    return ", ".join(parts) or None


def _span(values: list[str]) -> str:
    if not values:
        return "?"
    return values[0] if len(values) == 1 or values[0] == values[-1] else f"{values[0]}..{values[-1]}"
