"""The SQS and SNS event shapes (router/shapes/sqs.py, sns.py), and the checks of `kind: sqs` and `kind: sns`
settings and routes that `router validate` runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from router.core.errors import ConfigError
from router.shapes import render, sample
from router.shapes import sns as sns_shape
from router.shapes import sqs as sqs_shape
from router.validate import parse_config

ARN = "arn:aws:sqs:eu-west-1:123456789012:orders.fifo"


def test_a_fifo_message_becomes_lambdas_record() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "Body": "hi",
        "MD5OfBody": hashlib.md5(b"hi").hexdigest(),
        "MD5OfMessageAttributes": "abc",
        "Attributes": {
            "SenderId": "AID",
            "SentTimestamp": "1700000000123",
            "ApproximateReceiveCount": "2",
            "ApproximateFirstReceiveTimestamp": "1700000000200",
            "MessageDeduplicationId": "d-1",
            "MessageGroupId": "g-1",
            "SequenceNumber": "1800",
            "AWSTraceHeader": "Root=1-65a1b2c3-0123456789abcdef01234567",
        },
        "MessageAttributes": {
            "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
            "txt": {"DataType": "String", "StringValue": "v"},
        },
    }
    record = sqs_shape.from_message(message, queue_arn=ARN)
    assert record["attributes"] == {
        "ApproximateReceiveCount": "2",
        "SentTimestamp": "1700000000123",
        "SenderId": "AID",
        "ApproximateFirstReceiveTimestamp": "1700000000200",
        "AWSTraceHeader": "Root=1-65a1b2c3-0123456789abcdef01234567",
        "SequenceNumber": "1800",
        "MessageGroupId": "g-1",
        "MessageDeduplicationId": "d-1",
    }
    assert record["messageAttributes"] == {
        "bin": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        "txt": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
    }
    assert (record["md5OfMessageAttributes"], record["awsRegion"]) == ("abc", "eu-west-1")
    envelope = sqs_shape.envelope(record, source_name="q")
    assert (envelope.id, envelope.subject, envelope.time) == ("m-1", "g-1", "2023-11-14T22:13:20.123Z")
    assert envelope.trace == "Root=1-65a1b2c3-0123456789abcdef01234567"
    assert render("sqs", [envelope, envelope])["Records"] == [record, record]


def test_a_message_without_attributes_has_no_md5_of_them() -> None:
    record = sqs_shape.record(queue_arn=ARN, body="x")
    assert "md5OfMessageAttributes" not in record and record["messageAttributes"] == {}
    assert record["md5OfBody"] == hashlib.md5(b"x").hexdigest()


def test_an_sns_notification_becomes_lambdas_record() -> None:
    notification = {
        "Type": "Notification",
        "MessageId": "n-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "Message": "disk full",
        "Timestamp": "2024-01-02T03:04:05.678Z",
        "SignatureVersion": "1",
        "Signature": "sig",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {"level": {"Type": "String", "Value": "high"}},
    }
    record = sns_shape.from_notification(notification, subscription_arn="arn:sub")
    sns = record["Sns"]
    assert sns["Subject"] is None  # SNS leaves it out when there is none; Lambda sends null
    assert (sns["SigningCertUrl"], sns["UnsubscribeUrl"]) == (
        notification["SigningCertURL"],
        notification["UnsubscribeURL"],
    )
    assert sns["Timestamp"] == "2024-01-02T03:04:05.678Z" and record["EventSubscriptionArn"] == "arn:sub"
    assert sns["MessageAttributes"] == {"level": {"Type": "String", "Value": "high"}}


def test_samples_are_in_the_aws_shape() -> None:
    assert sample("sqs")["Records"][0]["eventSource"] == "aws:sqs"
    assert sample("sns")["Records"][0]["EventSource"] == "aws:sns"
    [cloud] = sample("sqs", "cloudevents")  # a batched shape: a CloudEvents batch
    assert cloud["type"] == "com.amazonaws.sqs.message"


def problems(tmp_path: Path, sources: str, routes: str) -> list[str]:
    (tmp_path / "app.py").write_text("def handler(e, c): return e\n")
    text = f"""
functions:
  fn: {{runtime: python3.11, handler: app.handler, code: "{tmp_path}"}}
sources:
{sources}
routes:
{routes}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text, base_dir=tmp_path)
    return e.value.problems


def test_sqs_settings_and_routes_are_checked(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "  q: {kind: sqs, queue: orders.fifo, queue_arn: 'arn:aws:s3:::b'}\n"
        "  n: {kind: sns, topic_arn: 'arn:aws:sqs:us-east-1:1:q'}",
        "  - {source: q, function: fn, batch: {size: 20, parallelization_factor: 2},"
        " on_error: {max_retries: 1, destination: {directory: d}}}\n"
        "  - {source: n, function: fn, batch: {size: 2}}",
    )
    assert "sources.q: give exactly one of queue (a name or URL), queue_arn" in found
    assert "sources.q.queue_arn: 'arn:aws:s3:::b' is not an SQS queue ARN" in found
    assert "sources.n.topic_arn: 'arn:aws:sqs:us-east-1:1:q' is not an SNS topic ARN" in found
    assert "routes[0].batch.parallelization_factor: applies to streams, not SQS" in found
    assert "routes[0].batch.window_s: a batch size over 10 needs a batching window of at least 1 s" in found
    assert "routes[0].batch.size: a FIFO queue takes batches of at most 10" in found
    assert any(p.startswith("routes[0].on_error.max_retries: SQS retries through") for p in found)
    assert any(p.startswith("routes[0].on_error.destination: failed SQS messages go to") for p in found)
    assert any(p.startswith("routes[1].batch: batching applies to") for p in found)
