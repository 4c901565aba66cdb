"""Kafka, scheduled and SES shapes, field by field against the samples in lambda-semantics.md section 1.7."""

from __future__ import annotations

import copy

import pytest

from router.core.envelope import Envelope
from router.shapes import kafka, render, sample_envelope, schedule, ses

# --- Kafka -------------------------------------------------------------------------------------------------

AWS_KAFKA_RECORD = {
    "topic": "mytopic",
    "partition": 0,
    "offset": 15,
    "timestamp": 1545084650987,
    "timestampType": "CREATE_TIME",
    "key": "a2V5LTE=",
    "value": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
    "headers": [{"headerKey": [104, 101, 97, 100, 101, 114, 86, 97, 108, 117, 101]}],
}


def _kafka(offset: int = 15, partition: int = 0, topic: str = "mytopic", **kw: object) -> Envelope:
    rec = kafka.record(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=1545084650987,
        key=b"key-1",
        value=b"Hello, this is a test.",
        headers=[("headerKey", b"headerValue")],
    )
    return kafka.envelope(rec, source_name="clicks", **kw)  # type: ignore[arg-type]


def test_kafka_record_is_the_aws_record() -> None:
    assert _kafka().record == AWS_KAFKA_RECORD


def test_kafka_event_groups_by_topic_partition() -> None:
    servers = ["b-1.example:9092", "b-2.example:9092"]
    envs = [
        _kafka(1, bootstrap_servers=servers),
        _kafka(2, 1, bootstrap_servers=servers),
        _kafka(3, 0, "other"),
    ]
    event = render("kafka", envs)
    assert event["eventSource"] == "SelfManagedKafka" and "eventSourceArn" not in event
    assert event["bootstrapServers"] == "b-1.example:9092,b-2.example:9092"
    assert list(event["records"]) == ["mytopic-0", "mytopic-1", "other-0"]
    assert [r["offset"] for r in event["records"]["mytopic-0"]] == [1]


def test_kafka_msk_event_and_nulls() -> None:
    arn = "arn:aws:kafka:sa-east-1:123456789012:cluster/vpc-2priv-2pub/751d2973-a626-431c-9d4e-d7975eb44dd7-2"
    event = render("kafka", [_kafka(bootstrap_servers="b:9092", event_source_arn=arn)])
    assert list(event) == ["eventSource", "eventSourceArn", "bootstrapServers", "records"]
    assert (event["eventSource"], event["eventSourceArn"]) == ("aws:kafka", arn)
    rec = kafka.record(topic="t", partition=0, offset=0, timestamp=0, timestamp_type="LOG_APPEND_TIME")
    assert "key" not in rec and "value" not in rec and rec["headers"] == []
    with pytest.raises(ValueError):
        kafka.record(topic="t", partition=0, offset=0, timestamp=0, timestamp_type="NOW")


def test_kafka_envelope_attributes() -> None:
    env = _kafka(bootstrap_servers="127.0.0.1:9092")
    assert (env.id, env.subject, env.type) == ("mytopic-0-15", "key-1", "com.amazonaws.kafka.record")
    assert env.source == "kafka://127.0.0.1:9092/mytopic" and env.time == "2018-12-17T22:10:50.987Z"
    assert env.meta == {"bootstrapServers": "127.0.0.1:9092"}


# --- EventBridge schedule ----------------------------------------------------------------------------------

AWS_SCHEDULED_EVENT = {
    "version": "0",
    "account": "123456789012",
    "region": "us-east-2",
    "detail": {},
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "time": "2019-03-01T01:23:45Z",
    "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
    "resources": ["arn:aws:events:us-east-2:123456789012:rule/my-schedule"],
}


def test_scheduled_event_is_the_aws_event() -> None:
    arn = schedule.rule_arn("my-schedule", region="us-east-2")
    ev = schedule.event(rule_arn=arn, time=1551403425, id="cdc73f9d-aea9-11e3-9d5a-835b769c0d9c")
    assert ev == AWS_SCHEDULED_EVENT
    env = schedule.envelope(ev, source_name="nightly")
    assert (env.subject, env.source, env.type) == ("my-schedule", arn, "com.amazonaws.events.ScheduledEvent")
    assert render("schedule", [env]) == AWS_SCHEDULED_EVENT
    with pytest.raises(ValueError):
        render("schedule", [env, env])


# --- SES ---------------------------------------------------------------------------------------------------

MAIL = (
    b"Return-Path: <bounce@example.com>\r\n"
    b"From: Jane Doe <janedoe@example.com>\r\n"
    b'To: johndoe@example.test, "Doe, Ann" <ann@example.test>\r\n'
    b"Cc: cc@example.test\r\n"
    b"Reply-To: replies@example.com\r\n"
    b"Date: Wed, 7 Oct 2015 12:34:56 -0700\r\n"
    b"Message-ID: <0123456789@example.com>\r\n"
    b"Subject: =?UTF-8?B?SGVsbG8gd8O2cmxk?=\r\n"
    b"X-Long: one\r\n two\r\n"
    b"\r\n"
    b"body is not in the event\r\n"
)


def test_ses_record_fields() -> None:
    rec = ses.record(
        MAIL,
        mail_from="janedoe@example.com",
        destination=["johndoe@example.test", "ann@example.test"],
        recipients=["johndoe@example.test"],
        time=0,
        message_id="o3vrnil0e2ic28tr",
        processing_time_ms=574,
        function_arn="arn:aws:lambda:us-west-2:111122223333:function:Example",
    )
    assert set(rec) == {"eventSource", "eventVersion", "ses"} and rec["eventSource"] == "aws:ses"
    mail, receipt = rec["ses"]["mail"], rec["ses"]["receipt"]
    assert set(mail) == {
        "commonHeaders",
        "source",
        "timestamp",
        "destination",
        "headers",
        "headersTruncated",
        "messageId",
    }
    assert mail["timestamp"] == "1970-01-01T00:00:00.000Z" and mail["source"] == "janedoe@example.com"
    assert mail["destination"] == ["johndoe@example.test", "ann@example.test"]
    assert mail["headers"][0] == {"name": "Return-Path", "value": "<bounce@example.com>"}
    assert {"name": "X-Long", "value": "one two"} in mail["headers"]
    assert mail["commonHeaders"] == {
        "returnPath": "bounce@example.com",
        "from": ["Jane Doe <janedoe@example.com>"],
        "date": "Wed, 7 Oct 2015 12:34:56 -0700",
        "to": ["johndoe@example.test", '"Doe, Ann" <ann@example.test>'],
        "cc": ["cc@example.test"],
        "replyTo": ["replies@example.com"],
        "messageId": "<0123456789@example.com>",
        "subject": "Hello wörld",
    }
    assert receipt == {
        "timestamp": "1970-01-01T00:00:00.000Z",
        "processingTimeMillis": 574,
        "recipients": ["johndoe@example.test"],
        "spamVerdict": {"status": "PASS"},
        "virusVerdict": {"status": "PASS"},
        "spfVerdict": {"status": "GRAY"},
        "dkimVerdict": {"status": "GRAY"},
        "dmarcVerdict": {"status": "GRAY"},
        "action": {
            "type": "Lambda",
            "functionArn": "arn:aws:lambda:us-west-2:111122223333:function:Example",
            "invocationType": "Event",
        },
    }


def test_ses_adds_return_path_and_dmarc_policy() -> None:
    rec = ses.record(
        b"Subject: hi\r\n\r\n",
        mail_from="a@x.test",
        destination=["b@y.test"],
        verdicts={"dmarc": "FAIL", "spf": "PASS"},
        dmarc_policy="reject",
    )
    mail, receipt = rec["ses"]["mail"], rec["ses"]["receipt"]
    assert mail["headers"][0] == {"name": "Return-Path", "value": "<a@x.test>"}
    assert mail["commonHeaders"] == {"returnPath": "a@x.test", "subject": "hi"}
    assert receipt["dmarcVerdict"] == {"status": "FAIL"} and receipt["dmarcPolicy"] == "reject"
    assert receipt["spfVerdict"] == {"status": "PASS"} and receipt["recipients"] == ["b@y.test"]
    with pytest.raises(ValueError):
        ses.record(b"", mail_from="a@x", destination=["b@y"], verdicts={"spam": "MAYBE"})


def test_ses_function_arn_is_set_per_function_without_touching_the_envelope() -> None:
    env = sample_envelope("email")
    before = copy.deepcopy(env.record)
    event = render("email", [env], function_arn="arn:aws:lambda:us-east-1:123456789012:function:inbox")
    assert event["Records"][0]["ses"]["receipt"]["action"]["functionArn"].endswith(":function:inbox")
    assert env.record == before
    assert env.type == "com.amazonaws.ses.EmailReceived" and env.subject == "Test Subject"
