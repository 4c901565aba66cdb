"""Unit tests of the filter matcher: every operator, arrays, nesting, $or, several patterns, kind views."""

from __future__ import annotations

import base64
import json

import pytest

from router.core.errors import ConfigError
from router.dispatch.filters import compile_filter, compile_patterns, decode_data, matches
from router.shapes import apigateway, dynamodb, kafka, kinesis, s3


def m(pattern: object, event: object) -> bool:
    return matches(pattern, event)


# --- exact values ------------------------------------------------------------------------------------------


def test_exact_string_is_byte_for_byte() -> None:
    assert m({"a": ["Alice"]}, {"a": "Alice"})
    assert not m({"a": ["Alice"]}, {"a": "alice"})
    assert not m({"a": ["Alice"]}, {"a": "Alice "})


def test_value_list_is_or() -> None:
    p = {"a": ["Credit", "Debit"]}
    assert m(p, {"a": "Debit"}) and m(p, {"a": "Credit"}) and not m(p, {"a": "Cash"})


def test_null_and_empty_string_are_distinct() -> None:
    assert m({"a": [None]}, {"a": None})
    assert not m({"a": [None]}, {"a": ""})
    assert not m({"a": [None]}, {})  # null matches a null value, not a missing field
    assert m({"a": [""]}, {"a": ""})
    assert not m({"a": [""]}, {"a": None})


def test_numbers_compare_by_type_and_value() -> None:
    assert m({"a": [300]}, {"a": 300})
    assert not m({"a": [300]}, {"a": 300.0})  # Lambda: 300 != 300.0
    assert not m({"a": [300]}, {"a": "300"})
    assert not m({"a": ["300"]}, {"a": 300})
    assert m({"a": [1.5]}, {"a": 1.5})


def test_booleans_are_not_numbers() -> None:
    assert m({"a": [True]}, {"a": True})
    assert not m({"a": [True]}, {"a": 1})
    assert not m({"a": [1]}, {"a": True})
    assert not m({"a": [{"numeric": ["=", 1]}]}, {"a": True})


def test_missing_field_fails_and_fields_are_anded() -> None:
    p = {"a": ["x"], "b": ["y"]}
    assert m(p, {"a": "x", "b": "y", "c": "ignored"})
    assert not m(p, {"a": "x"})
    assert not m(p, {"a": "x", "b": "z"})


# --- string operators --------------------------------------------------------------------------------------


def test_prefix_and_suffix() -> None:
    assert m({"a": [{"prefix": "us-"}]}, {"a": "us-east-1"})
    assert not m({"a": [{"prefix": "us-"}]}, {"a": "eu-west-1"})
    assert not m({"a": [{"prefix": "US-"}]}, {"a": "us-east-1"})
    assert m({"a": [{"suffix": ".jpg"}]}, {"a": "x/y.jpg"})
    assert not m({"a": [{"suffix": ".jpg"}]}, {"a": "x/y.JPG"})
    assert not m({"a": [{"prefix": "1"}]}, {"a": 10})  # string operators see only strings


def test_prefix_and_suffix_ignoring_case() -> None:
    assert m({"a": [{"prefix": {"equals-ignore-case": "US-"}}]}, {"a": "us-east-1"})
    assert m({"a": [{"suffix": {"equals-ignore-case": ".JPG"}}]}, {"a": "y.jpg"})
    assert not m({"a": [{"suffix": {"equals-ignore-case": ".JPG"}}]}, {"a": "y.png"})


def test_equals_ignore_case() -> None:
    p = {"a": [{"equals-ignore-case": "alice"}]}
    assert m(p, {"a": "ALICE"}) and m(p, {"a": "Alice"})
    assert not m(p, {"a": "alicia"}) and not m(p, {"a": None})


def test_wildcard() -> None:
    p = {"a": [{"wildcard": "photos/*.jpg"}]}
    assert m(p, {"a": "photos/cat.jpg"})
    assert m(p, {"a": "photos/a/b.jpg"})
    assert m(p, {"a": "photos/.jpg"})
    assert not m(p, {"a": "photos/cat.png"})
    assert not m(p, {"a": "x/photos/cat.jpg"})  # anchored at both ends
    assert m({"a": [{"wildcard": "a*b*c"}]}, {"a": "aXXbYYc"})
    assert m({"a": [{"wildcard": "line*end"}]}, {"a": "line\nend"})


def test_wildcard_escapes() -> None:
    star = {"a": [{"wildcard": "a\\*b"}]}
    assert m(star, {"a": "a*b"}) and not m(star, {"a": "axb"})
    backslash = {"a": [{"wildcard": "a\\\\*"}]}
    assert m(backslash, {"a": "a\\tail"}) and not m(backslash, {"a": "atail"})
    assert m({"a": [{"wildcard": "a.b"}]}, {"a": "a.b"}) and not m({"a": [{"wildcard": "a.b"}]}, {"a": "axb"})


def test_cidr() -> None:
    p = {"ip": [{"cidr": "10.0.0.0/24"}]}
    assert m(p, {"ip": "10.0.0.33"})
    assert not m(p, {"ip": "10.0.1.1"})
    assert not m(p, {"ip": "not an ip"})
    assert m({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"})
    assert not m({"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "10.0.0.1"})


# --- numeric -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        (["=", 100], [100, 100.0], [99, 100.5, "100"]),
        (["<", 10], [9.99, -5], [10, 11]),
        (["<=", 10], [10, 10.0], [10.01]),
        ([">", 0], [0.001, 7], [0, -1]),
        ([">=", 0], [0, 1], [-0.001]),
        ([">", 10, "<=", 20], [10.5, 20], [10, 20.5]),
        ([">=", 10, "<", 20], [10, 19.9], [20, 9]),
    ],
)
def test_numeric(spec: list[object], inside: list[object], outside: list[object]) -> None:
    p = {"n": [{"numeric": spec}]}
    for v in inside:
        assert m(p, {"n": v}), v
    for v in outside:
        assert not m(p, {"n": v}), v


# --- exists ------------------------------------------------------------------------------------------------


def test_exists() -> None:
    present = {"a": [{"exists": True}]}
    absent = {"a": [{"exists": False}]}
    assert m(present, {"a": "x"}) and m(present, {"a": None}) and m(present, {"a": [1]})
    assert not m(present, {}) and m(absent, {})
    assert not m(absent, {"a": 0})


def test_exists_sees_only_leaves() -> None:
    assert not m({"a": [{"exists": True}]}, {"a": {"b": 1}})
    assert m({"a": [{"exists": False}]}, {"a": {"b": 1}})
    assert m({"a": [{"exists": False}]}, {"a": []})
    assert not m({"a": [{"exists": True}]}, {"a": [{"b": 1}]})


def test_exists_false_nested_when_parent_missing() -> None:
    p = {"a": {"b": [{"exists": False}]}}
    assert m(p, {}) and m(p, {"a": 5}) and m(p, {"a": {"c": 1}})
    assert not m(p, {"a": {"b": 1}})


# --- anything-but ------------------------------------------------------------------------------------------


def test_anything_but_values() -> None:
    p = {"a": [{"anything-but": ["stopped", "overloaded"]}]}
    assert m(p, {"a": "running"})
    assert not m(p, {"a": "stopped"})
    assert not m(p, {})  # the field must be there
    assert m({"a": [{"anything-but": "x"}]}, {"a": "y"}) and not m({"a": [{"anything-but": "x"}]}, {"a": "x"})


def test_anything_but_numbers_compare_numerically() -> None:
    p = {"a": [{"anything-but": [100, 200]}]}
    assert not m(p, {"a": 100}) and not m(p, {"a": 200.0})
    assert m(p, {"a": 150}) and m(p, {"a": "100"})
    assert not m({"a": [{"anything-but": 5}]}, {"a": 5})


def test_anything_but_prefix_suffix_ignore_case_wildcard() -> None:
    assert m({"a": [{"anything-but": {"prefix": "init"}}]}, {"a": "running"})
    assert not m({"a": [{"anything-but": {"prefix": "init"}}]}, {"a": "initializing"})
    assert not m({"a": [{"anything-but": {"suffix": ".tmp"}}]}, {"a": "x.tmp"})
    assert m({"a": [{"anything-but": {"suffix": ".tmp"}}]}, {"a": "x.txt"})
    eic = {"a": [{"anything-but": {"equals-ignore-case": ["Alice", "Bob"]}}]}
    assert not m(eic, {"a": "BOB"}) and m(eic, {"a": "carol"})
    wc = {"a": [{"anything-but": {"wildcard": "*.tmp"}}]}
    assert not m(wc, {"a": "x.tmp"}) and m(wc, {"a": "x.txt"})


# --- arrays, nesting, $or, several patterns ----------------------------------------------------------------


def test_array_in_event_matches_if_any_element_matches() -> None:
    p = {"r": ["b"]}
    assert m(p, {"r": ["a", "b"]}) and not m(p, {"r": ["a", "c"]}) and not m(p, {"r": []})
    assert m(p, {"r": [["a"], ["b"]]})  # nested arrays are crushed
    assert m({"r": [{"numeric": [">", 5]}]}, {"r": [1, 9]})


def test_nested_objects() -> None:
    p = {"s3": {"object": {"key": [{"suffix": ".jpg"}]}}}
    assert m(p, {"s3": {"object": {"key": "a.jpg", "size": 1}}})
    assert not m(p, {"s3": {"object": {"key": "a.png"}}})
    assert not m(p, {"s3": "a.jpg"})
    assert not m(p, {})


def test_array_of_objects_is_matched_element_by_element() -> None:
    event = {"employees": [{"first": "John", "last": "Doe"}, {"first": "Anna", "last": "Smith"}]}
    assert m({"employees": {"first": ["Anna"]}}, event)
    assert m({"employees": {"first": ["Anna"], "last": ["Smith"]}}, event)
    assert not m({"employees": {"first": ["Anna"], "last": ["Doe"]}}, event)  # array consistency


def test_or() -> None:
    p = {"source": ["cw"], "$or": [{"metric": ["CPU"]}, {"namespace": ["EC2"]}]}
    assert m(p, {"source": "cw", "metric": "CPU"})
    assert m(p, {"source": "cw", "namespace": "EC2"})
    assert not m(p, {"source": "cw", "metric": "Disk"})
    assert not m(p, {"source": "other", "metric": "CPU"})


def test_nested_or() -> None:
    p = {"d": {"$or": [{"a": [1]}, {"b": [2], "$or": [{"c": [3]}, {"e": [4]}]}]}}
    assert m(p, {"d": {"a": 1}})
    assert m(p, {"d": {"b": 2, "e": 4}})
    assert not m(p, {"d": {"b": 2}})


def test_several_patterns_any_matches() -> None:
    f = compile_patterns([{"a": ["x"]}, {"b": [{"prefix": "y"}]}])
    assert f({"a": "x"}) and f({"b": "yes"}) and not f({"a": "z", "b": "no"})


def test_non_dict_event_is_empty() -> None:
    assert not m({"a": ["x"]}, ["x"])
    assert m({"a": [{"exists": False}]}, "text")


def test_compile_rejects_invalid_patterns() -> None:
    with pytest.raises(ConfigError) as e:
        compile_patterns({"a": [{"sufix": "x"}]})
    assert e.value.problems[0].startswith("filter.a[0]: unknown operator 'sufix'")


# --- per-kind views: the record as the function sees it, data decoded ------------------------------------


def _kafka_envelope(value: bytes | None, key: bytes | None = b"k1") -> object:
    rec = kafka.record(topic="t", partition=0, offset=1, timestamp=1, key=key, value=value)
    return kafka.envelope(rec, source_name="clicks", bootstrap_servers="b:9092")


def test_kafka_value_matched_as_json() -> None:
    f = compile_filter({"value": {"page": [{"prefix": "/home"}]}}, "kafka")
    assert f(_kafka_envelope(b'{"page": "/home/x"}'))
    assert not f(_kafka_envelope(b'{"page": "/about"}'))
    assert not f(_kafka_envelope(b"not json"))
    assert not f(_kafka_envelope(None))


def test_kafka_value_and_key_as_plain_string_when_not_json() -> None:
    assert compile_filter({"value": ["hello"]}, "kafka")(_kafka_envelope(b"hello"))
    assert compile_filter({"key": ["k1"]}, "kafka")(_kafka_envelope(b"x"))
    assert compile_filter({"value": [42]}, "kafka")(_kafka_envelope(b"42"))


def test_kafka_metadata_without_decoding() -> None:
    f = compile_filter({"topic": ["t"], "partition": [0]}, "kafka")
    assert f(_kafka_envelope(b"\xff\xfe"))


def test_kafka_record_is_not_modified_by_matching() -> None:
    env = _kafka_envelope(b'{"a": 1}')
    compile_filter({"value": {"a": [1]}}, "kafka")(env)
    assert env.record["value"] == base64.b64encode(b'{"a": 1}').decode()


def _kinesis_envelope(data: bytes) -> object:
    rec = kinesis.record(
        stream_arn=kinesis.stream_arn("s"),
        shard_id="shardId-0",
        sequence_number="1",
        partition_key="pk",
        data=data,
    )
    return kinesis.envelope(rec, source_name="events")


def test_kinesis_data_matched_as_json_at_lambda_path_and_record_path() -> None:
    env = _kinesis_envelope(json.dumps({"order": {"type": "buy", "qty": 1000}}).encode())
    assert compile_filter({"data": {"order": {"type": ["buy"]}}}, "kinesis")(env)
    assert compile_filter({"kinesis": {"data": {"order": {"qty": [{"numeric": [">", 10]}]}}}}, "kinesis")(env)
    assert compile_filter({"kinesis": {"partitionKey": ["pk"]}}, "kinesis")(env)
    assert not compile_filter({"data": {"order": {"type": ["sell"]}}}, "kinesis")(env)
    assert compile_filter({"data": ["plain text"]}, "kinesis")(_kinesis_envelope(b"plain text"))


def test_dynamodb_filter_on_record() -> None:
    rec = dynamodb.record(
        "INSERT",
        dynamodb.image({"Id": 1}),
        new_image=dynamodb.image({"Id": 1, "status": "new"}),
        sequence_number="1",
        stream_arn=dynamodb.stream_arn("t"),
    )
    env = dynamodb.envelope(rec, source_name="orders")
    assert compile_filter(
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["new"]}}}}, "dynamodb"
    )(env)
    assert not compile_filter({"eventName": ["REMOVE"]}, "dynamodb")(env)


def test_s3_filter_on_encoded_key() -> None:
    env = s3.envelope(s3.record("b", "a b.jpg", sequencer="01"), source_name="u")
    assert compile_filter({"s3": {"object": {"key": [{"suffix": ".jpg"}]}}}, "s3")(env)
    assert compile_filter({"s3": {"object": {"key": ["a+b.jpg"]}}}, "s3")(env)  # as the function sees it


def test_http_body_matched_as_json() -> None:
    ev = apigateway.v2_event(
        method="POST", path="/", headers=[("content-type", "application/json")], body=b'{"n": 3}'
    )
    env = apigateway.envelope(ev, source_name="api")
    assert compile_filter({"body": {"n": [3]}}, "http")(env)
    ev = apigateway.v2_event(
        method="POST", path="/", headers=[("content-type", "image/png")], body=b'{"n": 3}'
    )
    assert compile_filter({"body": {"n": [3]}}, "http")(apigateway.envelope(ev, source_name="api"))
    assert compile_filter({"requestContext": {"http": {"method": ["POST"]}}}, "http")(env)


def test_no_filter_passes_everything() -> None:
    assert compile_filter(None, "s3")(_kafka_envelope(b"x"))


def test_decode_data() -> None:
    assert decode_data(base64.b64encode(b'{"a": [1, 2]}').decode()) == {"a": [1, 2]}
    assert decode_data(base64.b64encode(b"text").decode()) == "text"
    binary = base64.b64encode(b"\xff\x00").decode()
    assert decode_data(binary) == binary
    assert decode_data("not base64!") == "not base64!"
    assert decode_data(None) is None
