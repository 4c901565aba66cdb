"""The Kafka source's pure parts: config checks, consumer groups per route, record building, identifiers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from router.config.sources import KafkaConfig
from router.core.errors import ConfigError
from router.shapes import kafka as shapes
from router.sources.kafka.records import RecordBuilder
from router.sources.kafka.source import group_ids
from router.validate import parse_config

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"


def config(source: str, route: str = "") -> str:
    return f"""
functions:
  fn: {{runtime: python3.11, handler: app.handler, code: "{FUNCTIONS}/echo"}}
sources:
  clicks: {source}
routes:
  - {{source: clicks, function: fn{route}}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    return e.value.problems


def test_a_minimal_kafka_source_is_valid_with_lambda_like_defaults() -> None:
    c = parse_config(config('{kind: kafka, brokers: ["127.0.0.1:9092"], topic: clicks}'))
    src = c.sources["clicks"]
    assert (src.group, src.starting_position, src.session_timeout_ms) == ("router", "LATEST", 10_000)
    options = src.consumer_options()
    assert options["enable_auto_commit"] is False
    assert options["auto_offset_reset"] == "latest"


def test_kafka_config_problems_name_the_key() -> None:
    found = problems(
        config(
            "{kind: kafka, brokers: [], topic: a, topics: [b], starting_position: AT_TIMESTAMP, "
            "security_protocol: SASL_SSL, heartbeat_interval_ms: 20000}"
        )
    )
    assert "sources.clicks: give exactly one of topic, topics, pattern (got topic, topics)" in found
    assert any(p.startswith("sources.clicks.brokers: empty list") for p in found)
    assert "sources.clicks.starting_position_timestamp: required with starting_position AT_TIMESTAMP" in found
    assert "sources.clicks.sasl_mechanism: required with security_protocol SASL_SSL" in found
    assert any(p.startswith("sources.clicks.heartbeat_interval_ms: 20000 must be below") for p in found)


def test_a_failure_topic_that_the_route_reads_is_refused() -> None:
    found = problems(
        config(
            '{kind: kafka, brokers: ["b:9092"], topics: [clicks, other]}',
            ', on_error: {destination: {kafka: {brokers: ["b:9092"], topic: clicks}}}',
        )
    )
    assert any(
        p.startswith("routes[0].on_error.destination.kafka.topic: 'clicks' is a topic the route")
        for p in found
    )


def test_an_invalid_pattern_is_a_problem() -> None:
    found = problems(config('{kind: kafka, brokers: ["b:9092"], pattern: "clicks-("}'))
    assert any(p.startswith("sources.clicks.pattern: invalid regular expression 'clicks-('") for p in found)


def test_each_route_gets_its_own_group() -> None:
    assert group_ids("router", ["count"]) == ["router"]
    assert group_ids("g", ["count", "audit", "count"]) == ["g-count", "g-audit", "g-count-2"]


@dataclass
class Message:
    topic: str = "clicks"
    partition: int = 2
    offset: int = 15
    timestamp: int = 1_700_000_000_987
    timestamp_type: int = 0
    key: bytes | None = b"user-1"
    value: bytes | None = b'{"page": "/home"}'
    headers: Any = ()


@pytest.mark.parametrize(
    "message",
    [
        Message(),
        Message(key=None, value=None),
        Message(key=b"", headers=(("source", b"web"), ("empty", None))),
        Message(key=b"\xff\xfe", timestamp_type=1, timestamp=-1),
        Message(timestamp=1_700_000_000_000),
    ],
)
@pytest.mark.parametrize("arn", [None, "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc"])
def test_record_builder_matches_the_shape_builders(message: Message, arn: str | None) -> None:
    builder = RecordBuilder(source_name="clicks", bootstrap_servers="h1:9092,h2:9092", event_source_arn=arn)
    built = builder.build(message)
    rec = shapes.record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=message.timestamp,
        timestamp_type=("CREATE_TIME", "LOG_APPEND_TIME")[message.timestamp_type],
        key=message.key,
        value=message.value,
        headers=message.headers,
    )
    expected = shapes.envelope(
        rec, source_name="clicks", bootstrap_servers="h1:9092,h2:9092", event_source_arn=arn
    )
    assert built.envelope == expected
    assert list(built.envelope.record) == list(expected.record)
    assert (built.position, built.key, built.arrival) == (
        message.offset,
        message.key,
        message.timestamp / 1000,
    )
    assert (
        builder.build(Message(offset=16, timestamp=message.timestamp + 1)).envelope.time
        == shapes.envelope(
            {**rec, "offset": 16, "timestamp": message.timestamp + 1}, source_name="clicks"
        ).time
    )


@pytest.mark.parametrize("arn", [None, "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc"])
def test_native_records_render_the_same_event_bytes_as_the_shape_builders(arn: str | None) -> None:
    """Routes without a filter skip envelopes: their event is encoded straight from the records, and must be
    byte for byte what the route renders from the shape builders' envelopes."""
    from router.dispatch.routing import BoundRoute
    from router.sources.kafka.records import KafkaRecord

    messages = [
        Message(),
        Message(offset=16, key=None, value=None),
        Message(offset=17, key=b"", headers=(("source", b"web"), ("empty", None))),
        Message(offset=18, key=b"\xff\xfe", value=b"", timestamp_type=1, timestamp=-1),
        Message(offset=19, headers=(("X-Amzn-Trace-Id", b"Root=1-5759e988-bd862e3fe1be46a994272793"),)),
    ]
    builder = RecordBuilder(source_name="clicks", bootstrap_servers="h1:9092,h2:9092", event_source_arn=arn)
    native = builder.build_all(messages, envelopes=False)
    enveloped = builder.build_all(messages, envelopes=True)
    route = BoundRoute("clicks", "fn", "kafka", KafkaConfig.traits, None, "aws", None)  # type: ignore[arg-type]

    assert builder.render("clicks-2", native) == route.render([r.envelope for r in enveloped])
    assert all(r.envelope is None and isinstance(r.native, KafkaRecord) for r in native)
    for n, e in zip(native, enveloped, strict=True):
        assert (n.position, n.arrival, n.size, n.key) == (e.position, e.arrival, e.size, e.key)
        assert n.trace_header == e.trace_header
    assert native[-1].trace_header == "Root=1-5759e988-bd862e3fe1be46a994272793"


def test_full_partitions_pause_only_once_the_client_holds_none_of_their_records() -> None:
    from router.sources.kafka.mapping import taken_to_end

    assigned = ["a", "b", "c"]
    assert taken_to_end({"a": [1] * 3, "b": [1] * 2}, 10, assigned) == {"a", "b", "c"}  # under the cap
    assert taken_to_end({}, 10, assigned) == {"a", "b", "c"}
    assert taken_to_end({"b": [1] * 4, "a": [1] * 6}, 10, assigned) == {"b"}  # "a" may have more


def test_failed_position_reads_lambda_kafka_identifiers() -> None:
    from router.sources.kafka.mapping import KafkaMapping

    read = KafkaMapping.failed_position
    assert read(None, {"partition": "clicks-2", "offset": 17}, "clicks-2") == 17  # type: ignore[arg-type]
    assert read(None, {"partition": "clicks-3", "offset": 17}, "clicks-2") is None  # type: ignore[arg-type]
    assert read(None, 17, "clicks-2") == 17  # type: ignore[arg-type]
    assert read(None, "17", "clicks-2") == 17  # type: ignore[arg-type]
    assert read(None, "seventeen", "clicks-2") is None  # type: ignore[arg-type]
    assert read(None, True, "clicks-2") is None  # type: ignore[arg-type]
