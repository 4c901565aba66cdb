"""The AWS event shapes, field by field against the samples in lambda-semantics.md section 1.7."""

from __future__ import annotations

import base64
import re

import msgspec
import pytest

from router.core.envelope import Envelope
from router.shapes import dynamodb, kinesis, render, s3, sample, sample_envelope

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO_S = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
KINDS = ["s3", "dynamodb", "kinesis", "kafka", "ses", "schedule", "http"]

# --- S3 ----------------------------------------------------------------------------------------------------

AWS_S3_RECORD = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "us-east-2",
    "eventTime": "2019-09-03T19:37:27.192Z",
    "eventName": "ObjectCreated:Put",
    "userIdentity": {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"},
    "requestParameters": {"sourceIPAddress": "205.255.255.255"},
    "responseElements": {"x-amz-request-id": "D82B88E5F771F645", "x-amz-id-2": "<any>"},
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "828aa6fc-f7b5-4305-8584-487c791949c1",
        "bucket": {
            "name": "DOC-EXAMPLE-BUCKET",
            "ownerIdentity": {"principalId": "A3I5XTEXAMAI3E"},
            "arn": "arn:aws:s3:::DOC-EXAMPLE-BUCKET",
        },
        "object": {
            "key": "b21b84d653bb07b05b1e6b33684dc11b",
            "size": 1305107,
            "eTag": "b21b84d653bb07b05b1e6b33684dc11b",
            "sequencer": "0C0F6F405D6ED209E1",
        },
    },
}


def test_s3_record_is_the_aws_record() -> None:
    rec = s3.record(
        "DOC-EXAMPLE-BUCKET",
        "b21b84d653bb07b05b1e6b33684dc11b",
        size=1305107,
        etag='"b21b84d653bb07b05b1e6b33684dc11b"',
        sequencer="0C0F6F405D6ED209E1",
        time=1567539447.192,
        region="us-east-2",
        source_ip="205.255.255.255",
        principal_id="AWS:AIDAINPONIXQXHT3IKHL2",
        request_id="D82B88E5F771F645",
        configuration_id="828aa6fc-f7b5-4305-8584-487c791949c1",
    )
    id2 = rec["responseElements"]["x-amz-id-2"]
    assert len(id2) == 76 and base64.b64decode(id2)
    assert {**rec, "responseElements": {**rec["responseElements"], "x-amz-id-2": "<any>"}} == AWS_S3_RECORD


def test_s3_key_is_url_encoded_like_s3() -> None:
    rec = s3.record("b", "dir one/ünï+(1)=x.jpg", sequencer="01")
    assert rec["s3"]["object"]["key"] == "dir+one/%C3%BCn%C3%AF%2B%281%29%3Dx.jpg"
    env = s3.envelope(rec, source_name="u")
    assert env.subject == "dir one/ünï+(1)=x.jpg"


def test_s3_removed_has_no_size_or_etag_and_version_when_given() -> None:
    obj = s3.record("b", "k", sequencer="02", event_name="ObjectRemoved:Delete", version_id="v1")["s3"][
        "object"
    ]
    assert obj == {"key": "k", "versionId": "v1", "sequencer": "02"}
    assert "versionId" not in s3.record("b", "k", size=1, etag="e", sequencer="03")["s3"]["object"]


def test_s3_sequencer_orders_as_strings() -> None:
    assert s3.sequencer(9) < s3.sequencer(10) < s3.sequencer(2**60)
    assert len(s3.sequencer(1)) == 18


def test_s3_envelope_attributes() -> None:
    env = s3.envelope(s3.record("photos", "a.jpg", sequencer="0A", time=0.5), source_name="up")
    assert env.type == "com.amazonaws.s3.ObjectCreated:Put"
    assert env.source == "arn:aws:s3:::photos"
    assert env.time == "1970-01-01T00:00:00.500Z"
    assert env.kind == "s3" and env.source_name == "up" and env.id.endswith("-0A")
    assert render("s3", [env]) == {"Records": [env.record]}


# --- DynamoDB ----------------------------------------------------------------------------------------------

AWS_DDB_RECORD = {
    "eventID": "1",
    "eventVersion": "1.1",
    "dynamodb": {
        "ApproximateCreationDateTime": 1428537600,
        "Keys": {"Id": {"N": "101"}},
        "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
        "StreamViewType": "NEW_AND_OLD_IMAGES",
        "SequenceNumber": "111",
        "SizeBytes": 26,
    },
    "awsRegion": "us-west-2",
    "eventName": "INSERT",
    "eventSourceARN": (
        "arn:aws:dynamodb:us-west-2:111122223333:table/TestTable/stream/2015-05-11T21:21:33.291"
    ),
    "eventSource": "aws:dynamodb",
}


def test_dynamodb_record_is_the_aws_record() -> None:
    rec = dynamodb.record(
        "INSERT",
        {"Id": {"N": "101"}},
        new_image={"Message": {"S": "New item!"}, "Id": {"N": "101"}},
        old_image={"Message": {"S": "ignored for INSERT"}},
        sequence_number="111",
        size_bytes=26,
        stream_arn=dynamodb.stream_arn(
            "TestTable", label="2015-05-11T21:21:33.291", region="us-west-2", account="111122223333"
        ),
        approx_time=1428537600,
        event_id="1",
    )
    assert rec == AWS_DDB_RECORD


@pytest.mark.parametrize(
    ("event_name", "view", "images"),
    [
        ("INSERT", "NEW_AND_OLD_IMAGES", {"NewImage"}),
        ("MODIFY", "NEW_AND_OLD_IMAGES", {"NewImage", "OldImage"}),
        ("REMOVE", "NEW_AND_OLD_IMAGES", {"OldImage"}),
        ("MODIFY", "NEW_IMAGE", {"NewImage"}),
        ("MODIFY", "OLD_IMAGE", {"OldImage"}),
        ("MODIFY", "KEYS_ONLY", set()),
    ],
)
def test_dynamodb_images_follow_event_and_view_type(event_name: str, view: str, images: set[str]) -> None:
    keys = dynamodb.image({"Id": 1})
    rec = dynamodb.record(
        event_name,
        keys,
        new_image=dynamodb.image({"Id": 1, "v": "new"}),
        old_image=dynamodb.image({"Id": 1, "v": "old"}),
        sequence_number="5",
        view_type=view,
        stream_arn=dynamodb.stream_arn("t"),
    )
    block = rec["dynamodb"]
    assert {"NewImage", "OldImage"} & set(block) == images
    assert set(block) - {"NewImage", "OldImage"} == {
        "ApproximateCreationDateTime",
        "Keys",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    }
    assert block["SizeBytes"] > 0 and block["StreamViewType"] == view


def test_dynamodb_typed_values() -> None:
    assert dynamodb.typed("s") == {"S": "s"}
    assert (
        dynamodb.typed(3) == {"N": "3"}
        and dynamodb.typed(2.0) == {"N": "2"}
        and dynamodb.typed(1.5) == {"N": "1.5"}
    )
    assert dynamodb.typed(True) == {"BOOL": True} and dynamodb.typed(None) == {"NULL": True}
    assert dynamodb.typed(b"\x00\x01") == {"B": "AAE="}
    assert dynamodb.typed({"a": [1, "x"]}) == {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}}}
    assert dynamodb.typed({"b", "a"}) == {"SS": ["a", "b"]}
    assert dynamodb.typed({2, 1}) == {"NS": ["1", "2"]}
    assert dynamodb.typed({b"b", b"a"}) == {"BS": ["YQ==", "Yg=="]}
    with pytest.raises(TypeError):
        dynamodb.typed(object())


def test_dynamodb_from_boto_base64s_binary() -> None:
    boto = {"Id": {"B": b"\x01"}, "S": {"BS": [b"a"]}, "M": {"M": {"x": {"S": "y"}}}}
    assert dynamodb.from_boto(boto) == {
        "Id": {"B": "AQ=="},
        "S": {"BS": ["YQ=="]},
        "M": {"M": {"x": {"S": "y"}}},
    }


def test_dynamodb_ttl_deletion_and_envelope() -> None:
    rec = dynamodb.record(
        "REMOVE",
        dynamodb.image({"pk": "a", "sk": 2}),
        old_image=dynamodb.image({"pk": "a", "sk": 2}),
        sequence_number="9",
        stream_arn=dynamodb.stream_arn("orders", region="eu-west-1"),
        approx_time=60,
        ttl=True,
    )
    assert rec["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert rec["awsRegion"] == "eu-west-1"
    env = dynamodb.envelope(rec, source_name="orders")
    assert (env.type, env.subject, env.time) == (
        "com.amazonaws.dynamodb.REMOVE",
        "pk=a,sk=2",
        "1970-01-01T00:01:00Z",
    )
    assert env.source == rec["eventSourceARN"] and env.id == rec["eventID"]
    with pytest.raises(ValueError):
        dynamodb.record("UPSERT", {}, sequence_number="1", stream_arn="x")


# --- Kinesis -----------------------------------------------------------------------------------------------

AWS_KINESIS_RECORD = {
    "kinesis": {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "1",
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
        "approximateArrivalTimestamp": 1545084650.987,
    },
    "eventSource": "aws:kinesis",
    "eventVersion": "1.0",
    "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
    "eventName": "aws:kinesis:record",
    "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
    "awsRegion": "us-east-2",
    "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
}


def test_kinesis_record_is_the_aws_record() -> None:
    rec = kinesis.record(
        stream_arn=kinesis.stream_arn("lambda-stream", region="us-east-2"),
        shard_id="shardId-000000000006",
        sequence_number="49590338271490256608559692538361571095921575989136588898",
        partition_key="1",
        data=b"Hello, this is a test.",
        arrival_ts=1545084650.987,
    )
    assert rec == AWS_KINESIS_RECORD
    env = kinesis.envelope(rec, source_name="events")
    assert (env.id, env.subject, env.type) == (rec["eventID"], "1", "com.amazonaws.kinesis.record")
    assert env.time == "2018-12-17T22:10:50.987Z"
    assert render("kinesis", [env, env]) == {"Records": [rec, rec]}


# --- every kind --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_envelope_round_trips_through_msgspec_json(kind: str) -> None:
    env = sample_envelope(kind)
    again = msgspec.json.decode(msgspec.json.encode(env), type=Envelope)
    assert again == env
    assert env.specversion == "1.0" and env.id and env.source and env.type and env.kind == kind
    assert ISO_MS.match(env.time) or ISO_S.match(env.time)


@pytest.mark.parametrize("kind", [*KINDS, "email", "apigateway"])
def test_sample_is_rendered_json(kind: str) -> None:
    event = sample(kind)
    assert msgspec.json.decode(msgspec.json.encode(event)) == event
    cloud = sample(kind, "cloudevents")
    first = cloud[0] if isinstance(cloud, list) else cloud
    assert first["specversion"] == "1.0" and first["data"] == event


def test_render_errors() -> None:
    env = sample_envelope("s3")
    with pytest.raises(ValueError, match="unknown event kind 'mq'"):
        render("mq", [env])
    with pytest.raises(ValueError, match="unknown event format 'xml'"):
        render("s3", [env], "xml")
    with pytest.raises(ValueError, match="at least one envelope"):
        render("s3", [])
