"""Unit tests of pattern_problems: every invalid part of a filter is reported with its path, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.core.errors import ConfigError
from router.dispatch.filters import pattern_problems
from router.validate import parse_config

W = "routes[0].filter"


def problems(patterns: object) -> list[str]:
    return pattern_problems(patterns, W)


def one(patterns: object) -> str:
    found = problems(patterns)
    assert len(found) == 1, found
    return found[0]


VALID = [
    {"s3": {"object": {"key": [{"suffix": ".jpg"}]}}},
    {"a": ["x", 1, 2.5, True, None, ""]},
    {
        "a": [
            {"prefix": "x"},
            {"prefix": {"equals-ignore-case": "X"}},
            {"suffix": {"equals-ignore-case": "y"}},
        ]
    },
    {
        "a": [
            {"equals-ignore-case": "x"},
            {"wildcard": "a*b\\*c\\\\"},
            {"cidr": "10.0.0.0/8"},
            {"exists": False},
        ]
    },
    {"a": [{"numeric": ["=", 5]}, {"numeric": [">", 0, "<=", 5]}, {"numeric": [">=", -5e9, "<", 5e9]}]},
    {
        "a": [
            {"anything-but": "x"},
            {"anything-but": 3},
            {"anything-but": ["a", "b"]},
            {"anything-but": [1, 2.5]},
        ]
    },
    {"a": [{"anything-but": {"prefix": "p"}}, {"anything-but": {"suffix": "s"}}]},
    {"a": [{"anything-but": {"equals-ignore-case": ["A"]}}, {"anything-but": {"wildcard": ["*.tmp", "x*"]}}]},
    {"$or": [{"a": ["x"]}, {"b": {"$or": [{"c": [1]}, {"d": [2]}]}}]},
    [{"a": ["x"]}, {"b": ["y"]}, {"c": ["z"]}, {"d": ["w"]}, {"e": ["v"]}],
]


@pytest.mark.parametrize("pattern", VALID)
def test_valid_patterns_have_no_problems(pattern: object) -> None:
    assert problems(pattern) == []


def test_none_is_no_filter() -> None:
    assert problems(None) == []


def test_unknown_operator_names_its_path_and_suggests() -> None:
    msg = one({"s3": {"object": {"key": [{"sufix": ".jpg"}]}}})
    assert msg.startswith("routes[0].filter.s3.object.key[0]: unknown operator 'sufix'")
    assert "did you mean 'suffix'?" in msg


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("text", "routes[0].filter: expected a pattern (a mapping) or a list of up to 5"),
        ([], "routes[0].filter: empty list of patterns"),
        ([{"a": [1]}] * 6, "routes[0].filter: 6 patterns, at most 5 per route"),
        ([{"a": [1]}, "x"], "routes[0].filter[1]: expected a pattern (a mapping of field names), got 'x'"),
        ({}, "routes[0].filter: empty pattern"),
        ([{"a": [1]}, {}], "routes[0].filter[1]: empty pattern"),
        ({1: ["x"]}, "routes[0].filter: field names are strings, got 1"),
        ({"a": "x"}, "routes[0].filter.a: expected a list of values or matchers (e.g. ['x']), got 'x'"),
        ({"a": 5}, "routes[0].filter.a: expected a list of values or matchers (e.g. [5]), got 5"),
        (
            {"key": {"suffix": ".jpg"}},
            "routes[0].filter.key.suffix: 'suffix' is an operator, so it goes inside a list",
        ),
        ({"a": {}}, "routes[0].filter.a: empty object"),
        ({"a": []}, "routes[0].filter.a: empty list"),
        ({"a": [["x"]]}, "routes[0].filter.a[0]: nested lists are not allowed"),
        ({"a": [{1, 2}]}, "routes[0].filter.a[0]: unsupported value"),
        ({"a": [{}]}, "routes[0].filter.a[0]: a matcher has exactly one operator, got nothing"),
        (
            {"a": [{"prefix": "x", "suffix": "y"}]},
            "routes[0].filter.a[0]: a matcher has exactly one operator, got prefix, suffix",
        ),
        (
            {"a": [{"prefix": 5}]},
            "routes[0].filter.a[0].prefix: expected a string or {equals-ignore-case: string}",
        ),
        ({"a": [{"prefix": {"equals-ignore-case": 1}}]}, "routes[0].filter.a[0].prefix: expected a string"),
        ({"a": [{"suffix": ["x"]}]}, "routes[0].filter.a[0].suffix: expected a string"),
        (
            {"a": [{"equals-ignore-case": 1}]},
            "routes[0].filter.a[0].equals-ignore-case: expected a string, got 1",
        ),
        ({"a": [{"exists": "yes"}]}, "routes[0].filter.a[0].exists: expected true or false, got 'yes'"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "routes[0].filter.a[0].cidr: expected an IP network"),
        ({"a": [{"wildcard": 1}]}, "routes[0].filter.a[0].wildcard: expected a string"),
        ({"a": [{"wildcard": "a**b"}]}, "routes[0].filter.a[0].wildcard: consecutive wildcard characters"),
        (
            {"a": [{"wildcard": "a\\b"}]},
            "routes[0].filter.a[0].wildcard: in 'a\\\\b' a backslash may only escape",
        ),
        (
            {"a": [{"wildcard": "a\\"}]},
            "routes[0].filter.a[0].wildcard: in 'a\\\\' a backslash may only escape",
        ),
        ({"a": [{"numeric": 5}]}, "routes[0].filter.a[0].numeric: expected [op, number]"),
        ({"a": [{"numeric": [">", 1, "<"]}]}, "routes[0].filter.a[0].numeric: expected [op, number]"),
        ({"a": [{"numeric": ["!=", 1]}]}, "routes[0].filter.a[0].numeric: unknown comparison '!='"),
        (
            {"a": [{"numeric": [">", "1"]}]},
            "routes[0].filter.a[0].numeric: expected a number after '>', got '1'",
        ),
        ({"a": [{"numeric": [">", True]}]}, "routes[0].filter.a[0].numeric: expected a number after '>'"),
        (
            {"a": [{"numeric": [">", 6e9]}]},
            "routes[0].filter.a[0].numeric: 6000000000.0 is outside the numeric range",
        ),
        ({"a": [{"numeric": ["<", 1, ">", 0]}]}, "routes[0].filter.a[0].numeric: a range is a lower bound"),
        ({"a": [{"numeric": ["=", 1, "<", 5]}]}, "routes[0].filter.a[0].numeric: a range is a lower bound"),
        (
            {"a": [{"numeric": [">", 5, "<", 5]}]},
            "routes[0].filter.a[0].numeric: empty range: 5 is not below 5",
        ),
        ({"a": [{"anything-but": []}]}, "routes[0].filter.a[0].anything-but: expected a non-empty list"),
        (
            {"a": [{"anything-but": ["x", 1]}]},
            "routes[0].filter.a[0].anything-but: expected a non-empty list of only",
        ),
        ({"a": [{"anything-but": None}]}, "routes[0].filter.a[0].anything-but: expected a string, a number"),
        ({"a": [{"anything-but": True}]}, "routes[0].filter.a[0].anything-but: expected a string, a number"),
        (
            {"a": [{"anything-but": {"prefix": 1}}]},
            "routes[0].filter.a[0].anything-but: expected a string, got 1",
        ),
        (
            {"a": [{"anything-but": {"wildcard": ["a**"]}}]},
            "routes[0].filter.a[0].anything-but: consecutive wildcard",
        ),
        (
            {"a": [{"anything-but": {"equals-ignore-case": [1]}}]},
            "routes[0].filter.a[0].anything-but: expected a string",
        ),
        (
            {"a": [{"anything-but": {"numeric": [">", 1]}}]},
            "routes[0].filter.a[0].anything-but: unknown operator 'numeric' inside anything-but",
        ),
        (
            {"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]},
            "routes[0].filter.a[0].anything-but: expected a string, a number",
        ),
        ({"$or": [{"a": [1]}]}, "routes[0].filter.$or: expected a list of at least 2 patterns"),
        ({"$or": {"a": [1]}}, "routes[0].filter.$or: expected a list of at least 2 patterns"),
        ({"$or": [{"a": [1]}, "b"]}, "routes[0].filter.$or: expected a list of at least 2 patterns"),
        ({"$or": [{"a": [1]}, {}]}, "routes[0].filter.$or[1]: empty pattern"),
        (
            {"$or": [{"a": [1]}, {"b": [{"sufix": "x"}]}]},
            "routes[0].filter.$or[1].b[0]: unknown operator 'sufix'",
        ),
        ({"a": ["x" * 5000]}, "routes[0].filter: pattern is 5011 characters of JSON, over Lambda's 4096"),
    ],
)
def test_problem_paths(pattern: object, expected: str) -> None:
    assert one(pattern).startswith(expected)


def test_every_problem_is_listed_not_only_the_first() -> None:
    found = problems([{"a": [{"sufix": "x"}], "b": "y"}, {"c": [{"numeric": [">", "1"]}]}])
    assert [f.split(":")[0] for f in found] == [
        "routes[0].filter[0].a[0]",
        "routes[0].filter[0].b",
        "routes[0].filter[1].c[0].numeric",
    ]


def test_router_validate_reports_filter_problems_with_paths(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    text = """
functions:
  f: {runtime: python3.11, handler: app.handler, code: fn}
sources:
  up: {kind: s3, directory: data, bucket: up}
routes:
  - source: up
    function: f
    filter: {s3: {object: {key: [{sufix: .jpg}]}}}
  - source: up
    function: f
    filter:
      - {s3: {object: {size: [{numeric: [">", big]}]}}}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text, base_dir=tmp_path)
    found = [p for p in e.value.problems if ".filter" in p]
    assert found[0].startswith("routes[0].filter.s3.object.key[0]: unknown operator 'sufix'")
    assert found[1].startswith("routes[1].filter[0].s3.object.size[0].numeric: expected a number after '>'")
    assert len(found) == 2
