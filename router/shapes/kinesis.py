"""Kinesis Data Streams records (stream -> Lambda via an event source mapping), in `{"Records": [...]}`.

`record(...)` builds one record as Lambda delivers it: the `kinesis` block (kinesisSchemaVersion,
partitionKey, sequenceNumber, data base64, approximateArrivalTimestamp in epoch seconds with milliseconds),
eventSource, eventVersion, eventID `<shardId>:<sequenceNumber>`, eventName `aws:kinesis:record`,
invokeIdentityArn, awsRegion and eventSourceARN. `envelope(...)`: type `com.amazonaws.kinesis.record`, source
the stream ARN, subject the partition key, id the eventID.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "kinesis"
ROLE = "lambda-role"  # the execution role named in invokeIdentityArn


def stream_arn(stream: str, *, region: str = common.REGION, account: str = common.ACCOUNT) -> str:
    return f"arn:aws:kinesis:{region}:{account}:stream/{stream}"


def record(
    *,
    stream_arn: str,
    shard_id: str,
    sequence_number: str,
    partition_key: str,
    data: bytes,
    arrival_ts: float | None = None,
    invoke_identity_arn: str | None = None,
) -> dict[str, Any]:
    """One Kinesis record; region and account come from the stream ARN."""
    region, account = common.arn_region(stream_arn), common.arn_account(stream_arn)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": common.b64(data),
            "approximateArrivalTimestamp": round(common.now(arrival_ts), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": invoke_identity_arn or common.role_arn(ROLE, account),
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def envelope(
    rec: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    k = rec["kinesis"]
    return Envelope(
        id=id or rec["eventID"],
        source=rec["eventSourceARN"],
        type="com.amazonaws.kinesis.record",
        subject=k["partitionKey"] or None,
        time=timefmt.iso_ms(k["approximateArrivalTimestamp"]),
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
        stream_arn=stream_arn("events"),
        shard_id="shardId-000000000006",
        sequence_number="49590338271490256608559692538361571095921575989136588898",
        partition_key="1",
        data=b'{"type": "click", "user": "u-1"}',
        arrival_ts=1_700_000_000.987,
    )
    return envelope(rec, source_name="events")
