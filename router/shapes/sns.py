"""Amazon SNS notifications (topic -> Lambda subscription, asynchronous invoke), in `{"Records": [...]}`.

`record(...)` builds one record as Lambda delivers it (one record per invocation): EventSource `aws:sns`,
EventVersion `1.0`, EventSubscriptionArn, and `Sns` {Type "Notification", MessageId, TopicArn, Subject (null
when the publisher gave none), Message, Timestamp (RFC 3339 with milliseconds), SignatureVersion, Signature,
SigningCertUrl, UnsubscribeUrl, MessageAttributes {name: {Type, Value}}}. Lambda spells the two URLs
`SigningCertUrl` / `UnsubscribeUrl`, where the notification SNS posts to HTTP and SQS endpoints spells them
`SigningCertURL` / `UnsubscribeURL`: `from_notification` converts that JSON document into the record.

`envelope(...)`: type `com.amazonaws.sns.notification`, source the topic ARN, subject the SNS Subject, id the
MessageId, time the Timestamp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "sns"
SINGLE = True  # SNS invokes a function once per notification


def topic_arn(name: str, *, region: str = common.REGION, account: str = common.ACCOUNT) -> str:
    return f"arn:aws:sns:{region}:{account}:{name}"


def _cert_url(region: str) -> str:
    return f"https://sns.{region}.amazonaws.com/SimpleNotificationService-{common.lower_hex_id(32)}.pem"


def record(
    *,
    topic_arn: str,
    message: str,
    subject: str | None = None,
    message_id: str | None = None,
    timestamp: float | None = None,
    subscription_arn: str | None = None,
    message_attributes: dict[str, dict[str, str]] | None = None,
    signature: str | None = None,
    signing_cert_url: str | None = None,
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    region = common.arn_region(topic_arn)
    subscription = subscription_arn or f"{topic_arn}:{common.uuid4()}"
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id or common.uuid4(),
            "TopicArn": topic_arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": timefmt.iso_ms(common.now(timestamp)),
            "SignatureVersion": "1",
            "Signature": signature or common.b64(common.lower_hex_id(64).encode()),
            "SigningCertUrl": signing_cert_url or _cert_url(region),
            "UnsubscribeUrl": unsubscribe_url
            or f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription}",
            "MessageAttributes": message_attributes or {},
        },
    }


def from_notification(doc: dict[str, Any], *, subscription_arn: str | None = None) -> dict[str, Any]:
    """The Lambda record of a notification as SNS posts it to an SQS queue or an HTTP endpoint (JSON)."""
    record_ = record(
        topic_arn=doc["TopicArn"],
        message=doc.get("Message", ""),
        subject=doc.get("Subject"),
        message_id=doc.get("MessageId"),
        subscription_arn=subscription_arn,
        message_attributes={
            k: {"Type": v.get("Type", "String"), "Value": v.get("Value", "")}
            for k, v in (doc.get("MessageAttributes") or {}).items()
        },
        signature=doc.get("Signature"),
        signing_cert_url=doc.get("SigningCertURL"),
        unsubscribe_url=doc.get("UnsubscribeURL"),
    )
    if isinstance(doc.get("Timestamp"), str):
        record_["Sns"]["Timestamp"] = doc["Timestamp"]
    if doc.get("SignatureVersion"):
        record_["Sns"]["SignatureVersion"] = str(doc["SignatureVersion"])
    return record_


def envelope(
    rec: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    sns = rec["Sns"]
    return Envelope(
        id=id or sns["MessageId"],
        source=sns["TopicArn"],
        type="com.amazonaws.sns.notification",
        subject=sns.get("Subject"),
        time=sns["Timestamp"],
        kind=KIND,
        source_name=source_name,
        record=rec,
        trace=trace,
        meta=meta or {},
    )


def wrap(envelopes: Sequence[Envelope], **_: Any) -> dict[str, Any]:
    if len(envelopes) != 1:
        raise ValueError(f"an SNS notification is delivered alone, got {len(envelopes)} envelopes")
    return common.records_event(envelopes)


def sample() -> Envelope:
    topic = topic_arn("sns-lambda")
    rec = record(
        topic_arn=topic,
        message="Hello from SNS!",
        subject="TestInvoke",
        message_id="95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        timestamp=1_700_000_000.0,
        subscription_arn=f"{topic}:21be56ed-a058-49f5-8c98-aedd2564c486",
        message_attributes={"Test": {"Type": "String", "Value": "TestString"}},
        signature="tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
        signing_cert_url=(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem"
        ),
    )
    return envelope(rec, source_name="alerts")
