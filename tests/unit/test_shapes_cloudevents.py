"""CloudEvents 1.0: structured delivery of every shape, and reading events from the HTTP binding."""

from __future__ import annotations

import json

import pytest

from router.shapes import cloudevents, render, sample_envelope

ATTRIBUTES = ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"]


@pytest.mark.parametrize("kind", ["s3", "ses", "schedule", "http"])
def test_single_event_shapes_deliver_one_cloudevent(kind: str) -> None:
    env = sample_envelope(kind)
    event = render(kind, [env], "cloudevents")
    assert list(event) == ATTRIBUTES
    assert (event["id"], event["source"], event["type"], event["time"]) == (
        env.id,
        env.source,
        env.type,
        env.time,
    )
    assert event["subject"] == env.subject and event["datacontenttype"] == "application/json"
    assert event["data"] == render(kind, [env])


@pytest.mark.parametrize("kind", ["kafka", "kinesis", "dynamodb"])
def test_stream_shapes_deliver_a_batch_even_of_one(kind: str) -> None:
    env = sample_envelope(kind)
    batch = render(kind, [env, env], "cloudevents")
    assert isinstance(batch, list) and len(batch) == 2
    assert render(kind, [env], "cloudevents") == batch[:1]
    assert batch[0]["data"] == render(kind, [env])


def test_s3_cloudevent_type_and_subject() -> None:
    event = render("s3", [sample_envelope("s3")], "cloudevents")
    assert event["type"] == "com.amazonaws.s3.ObjectCreated:Put"
    assert event["subject"] == "photos/summer beach.jpg"
    assert event["source"] == "arn:aws:s3:::uploads"


def test_subject_left_out_when_unset() -> None:
    env = sample_envelope("kafka")
    env2 = type(env)(**{**{f: getattr(env, f) for f in env.__struct_fields__}, "subject": None})
    assert "subject" not in render("kafka", [env2], "cloudevents")[0]


def test_from_http_structured() -> None:
    body = json.dumps(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": {"a": 1}}
    ).encode()
    event = cloudevents.from_http({"Content-Type": "application/cloudevents+json; charset=UTF-8"}, body)
    assert event == {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": {"a": 1}}


def test_from_http_batch() -> None:
    body = json.dumps(
        [{"specversion": "1.0", "id": str(i), "source": "/s", "type": "t"} for i in range(2)]
    ).encode()
    events = cloudevents.from_http([("content-type", "application/cloudevents-batch+json")], body)
    assert [e["id"] for e in events] == ["0", "1"]  # type: ignore[index]


def test_from_http_binary() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "A234",
        "ce-source": "/buckets/uploads",
        "ce-type": "com.example.object.created",
        "ce-subject": "images/cat%20one.png",
        "ce-time": "2018-04-05T17:31:00Z",
        "Content-Type": "application/json",
    }
    assert cloudevents.is_cloudevent(headers)
    event = cloudevents.from_http(headers, b'{"size": 1024}')
    assert event == {
        "specversion": "1.0",
        "id": "A234",
        "source": "/buckets/uploads",
        "type": "com.example.object.created",
        "subject": "images/cat one.png",
        "time": "2018-04-05T17:31:00Z",
        "datacontenttype": "application/json",
        "data": {"size": 1024},
    }
    text = cloudevents.from_http({**headers, "Content-Type": "text/plain"}, b"hi")
    assert text["data"] == "hi"  # type: ignore[index]
    binary = cloudevents.from_http({**headers, "Content-Type": "application/octet-stream"}, b"\x00\x01")
    assert binary["data_base64"] == "AAE=" and "data" not in binary  # type: ignore[index]


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"content-type": "application/json"}, b"{}", "missing required attribute 'specversion'"),
        ({"content-type": "application/cloudevents+json"}, b"nope", "body is not JSON"),
        ({"content-type": "application/cloudevents+json"}, b"[]", "a CloudEvent is a JSON object"),
        ({"content-type": "application/cloudevents-batch+json"}, b"{}", "expected a JSON array"),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion": "0.3", "id": "1", "source": "s", "type": "t"}',
            "specversion '0.3' is not supported",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": "", "source": "s", "type": "t", "data": 1, "data_base64": "AA=="}',
            "missing required attribute 'id'; 'data' and 'data_base64' are mutually exclusive",
        ),
    ],
)
def test_from_http_invalid(headers: dict[str, str], body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        cloudevents.from_http(headers, body)


def test_is_cloudevent() -> None:
    assert cloudevents.is_cloudevent({"Content-Type": "application/cloudevents+json"})
    assert not cloudevents.is_cloudevent({"Content-Type": "application/json"})
