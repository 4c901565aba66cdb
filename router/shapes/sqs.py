"""Amazon SQS messages (queue -> Lambda via an event source mapping), in `{"Records": [...]}`.

`record(...)` builds one record as Lambda delivers it: messageId, receiptHandle, body, attributes
(ApproximateReceiveCount, SentTimestamp, SenderId, ApproximateFirstReceiveTimestamp, in that order, as strings
of epoch milliseconds; then AWSTraceHeader and DeadLetterQueueSourceArn when the message has them; for a FIFO
queue SequenceNumber, MessageGroupId and MessageDeduplicationId), messageAttributes (each
`{stringValue | binaryValue (base64), stringListValues, binaryListValues, dataType}`), md5OfBody,
md5OfMessageAttributes (only when there are attributes, as SQS sends it), eventSource `aws:sqs`,
eventSourceARN and awsRegion (from the queue ARN).

`from_message(message, queue_arn=...)` turns one ReceiveMessage entry (botocore's shape: MessageId,
ReceiptHandle, Body, Attributes, MessageAttributes, MD5OfBody, MD5OfMessageAttributes) into that record.
`envelope(...)`: type `com.amazonaws.sqs.message`, source the queue ARN, subject the message group (FIFO),
id the messageId, time the SentTimestamp; the AWSTraceHeader attribute, when present, is the trace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "sqs"
SENDER_ID = "AIDAIENQZJOLO23YVJ4VO"  # the principal named in SenderId when the queue does not say
# Attributes Lambda passes on after the four every record has, in Lambda's order.
OPTIONAL_ATTRIBUTES = (
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
)


def queue_arn(name: str, *, region: str = common.REGION, account: str = common.ACCOUNT) -> str:
    return f"arn:aws:sqs:{region}:{account}:{name}"


def queue_name(arn: str) -> str:
    """The queue name of a queue ARN (its last field)."""
    return arn.rsplit(":", 1)[-1]


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def record(
    *,
    queue_arn: str,
    body: str,
    message_id: str | None = None,
    receipt_handle: str | None = None,
    sent_ts: float | None = None,
    first_receive_ts: float | None = None,
    receive_count: int = 1,
    sender_id: str = SENDER_ID,
    extra_attributes: dict[str, str] | None = None,
    message_attributes: dict[str, dict[str, Any]] | None = None,
    md5_of_body: str | None = None,
    md5_of_message_attributes: str | None = None,
) -> dict[str, Any]:
    """One SQS record. `message_attributes` are already in Lambda's shape (see `lambda_attributes`);
    `extra_attributes` are the optional system attributes (OPTIONAL_ATTRIBUTES), kept in Lambda's order."""
    sent = common.now(sent_ts)
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(common.epoch_ms(sent)),
        "SenderId": sender_id,
        "ApproximateFirstReceiveTimestamp": str(common.epoch_ms(common.now(first_receive_ts))),
    }
    extra = extra_attributes or {}
    attributes.update({k: extra[k] for k in OPTIONAL_ATTRIBUTES if k in extra})
    rec: dict[str, Any] = {
        "messageId": message_id or common.uuid4(),
        "receiptHandle": receipt_handle or common.b64(common.lower_hex_id(48).encode()),
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes or {},
        "md5OfBody": md5_of_body or md5(body),
    }
    if message_attributes:
        rec["md5OfMessageAttributes"] = md5_of_message_attributes or common.lower_hex_id(32)
    rec |= {
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": common.arn_region(queue_arn),
    }
    return rec


def lambda_attributes(attributes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ReceiveMessage's MessageAttributes (StringValue, BinaryValue bytes, ...) in Lambda's record shape."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        entry: dict[str, Any] = {}
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            entry["binaryValue"] = _b64(value["BinaryValue"])
        entry["stringListValues"] = list(value.get("StringListValues", []))
        entry["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues", [])]
        entry["dataType"] = value.get("DataType", "String")
        out[name] = entry
    return out


def _b64(value: bytes | str) -> str:
    return common.b64(value) if isinstance(value, bytes) else value


def from_message(message: dict[str, Any], *, queue_arn: str) -> dict[str, Any]:
    """The Lambda record of one ReceiveMessage entry (received with AttributeNames All)."""
    attrs = message.get("Attributes", {})
    body = message.get("Body", "")
    return record(
        queue_arn=queue_arn,
        body=body,
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        sent_ts=int(attrs["SentTimestamp"]) / 1000 if "SentTimestamp" in attrs else None,
        first_receive_ts=(
            int(attrs["ApproximateFirstReceiveTimestamp"]) / 1000
            if "ApproximateFirstReceiveTimestamp" in attrs
            else None
        ),
        receive_count=int(attrs.get("ApproximateReceiveCount", 1)),
        sender_id=attrs.get("SenderId", SENDER_ID),
        extra_attributes={k: attrs[k] for k in OPTIONAL_ATTRIBUTES if k in attrs},
        message_attributes=lambda_attributes(message.get("MessageAttributes", {})),
        md5_of_body=message.get("MD5OfBody") or md5(body),
        md5_of_message_attributes=message.get("MD5OfMessageAttributes"),
    )


def envelope(
    rec: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    attrs = rec["attributes"]
    return Envelope(
        id=id or rec["messageId"],
        source=rec["eventSourceARN"],
        type="com.amazonaws.sqs.message",
        subject=attrs.get("MessageGroupId"),
        time=timefmt.iso_ms(int(attrs["SentTimestamp"]) / 1000),
        kind=KIND,
        source_name=source_name,
        record=rec,
        trace=trace if trace is not None else attrs.get("AWSTraceHeader"),
        meta=meta or {},
    )


def wrap(envelopes: Sequence[Envelope], **_: Any) -> dict[str, Any]:
    return common.records_event(envelopes)


def sample() -> Envelope:
    rec = record(
        queue_arn=queue_arn("orders"),
        body='{"order": "o-1", "total": 42}',
        message_id="059f36b4-87a3-44ab-83d2-661975830a7d",
        receipt_handle="AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        sent_ts=1_700_000_000.183,
        first_receive_ts=1_700_000_000.185,
        message_attributes={
            "req-id": {
                "stringValue": "24479a02-58bb-4a32-92a5-49a8bc630acb",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        md5_of_message_attributes="d25a6aea97eb8f585bfa92d314504a92",
    )
    return envelope(rec, source_name="orders")
