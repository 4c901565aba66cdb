"""The HTTP gateway's route table: route keys, most-specific-first matching, 404/405 resolution."""

from __future__ import annotations

import pytest

from router.sources.http.routes import RouteKey, RouteTable, parse_route_key


def key(method: str, path: str) -> RouteKey:
    k = parse_route_key(method, path)
    assert isinstance(k, RouteKey), k
    return k


def table(*keys: str) -> RouteTable:
    entries = []
    for text in keys:
        method, _, path = text.partition(" ")
        entries.append((key(method, path) if path else key("ANY", text), text))
    return RouteTable(entries)


def chosen(t: RouteTable, method: str, path: str) -> list[str]:
    return [c.route for c in t.resolve(method, path).candidates]


@pytest.mark.parametrize(
    ("method", "path", "text"),
    [
        ("GET", "/items/{id}", "GET /items/{id}"),
        ("get", "/items", "GET /items"),
        ("ANY", "/files/{proxy+}", "ANY /files/{proxy+}"),
        ("ANY", "$default", "$default"),
        ("ANY", "GET /items/{id}", "GET /items/{id}"),  # the method may be written into the path
        ("GET", "GET /", "GET /"),
    ],
)
def test_route_keys_parse_into_the_text_aws_puts_in_events(method: str, path: str, text: str) -> None:
    assert key(method, path).text == text


@pytest.mark.parametrize(
    ("method", "path", "needle"),
    [
        ("FETCH", "/x", "unknown method 'FETCH'"),
        ("GET", "items", "must start with '/'"),
        ("GET", "/a/{rest+}/b", "must be the last segment"),
        ("GET", "/a/{id}/{id}", "appears twice"),
        ("GET", "/a/x{id}", "is not a literal"),
        ("POST", "GET /a", "disagree"),
    ],
)
def test_bad_route_keys_say_what_is_wrong(method: str, path: str, needle: str) -> None:
    problem = parse_route_key(method, path)
    assert isinstance(problem, str)
    assert needle in problem


def test_literal_beats_parameter_beats_greedy_then_default() -> None:
    t = table("$default", "ANY /{proxy+}", "GET /items/{id}", "GET /items/special", "ANY /items/{id}")
    assert chosen(t, "GET", "/items/special") == [
        "GET /items/special",
        "GET /items/{id}",
        "ANY /items/{id}",
        "ANY /{proxy+}",
        "$default",
    ]
    assert chosen(t, "DELETE", "/items/7") == ["ANY /items/{id}", "ANY /{proxy+}", "$default"]
    assert chosen(t, "GET", "/") == ["$default"]  # a greedy parameter needs at least one segment


def test_an_earlier_literal_segment_wins_over_a_later_one() -> None:
    t = table("GET /{a}/b/c", "GET /a/{b}/c")
    assert chosen(t, "GET", "/a/b/c") == ["GET /a/{b}/c", "GET /{a}/b/c"]


def test_path_parameters_are_decoded_per_segment() -> None:
    t = table("GET /items/{id}", "GET /files/{path+}")
    (c,) = t.resolve("GET", "/items/a%2Fb%20c").candidates
    assert c.path_params == {"id": "a/b c"}
    (c,) = t.resolve("GET", "/files/dir/sub/file%20name.txt").candidates
    assert c.path_params == {"path": "dir/sub/file name.txt"}
    assert t.resolve("GET", "/items/a/b").candidates == []
    assert t.resolve("GET", "/items/").candidates == []  # an empty segment is no parameter


def test_a_trailing_slash_is_ignored() -> None:
    t = table("GET /items")
    assert chosen(t, "GET", "/items/") == ["GET /items"]


def test_a_path_under_other_methods_gives_the_allow_list_else_nothing() -> None:
    t = table("GET /items/{id}", "DELETE /items/{id}", "POST /items")
    r = t.resolve("PUT", "/items/3")
    assert r.candidates == [] and r.allow == ["DELETE", "GET"]
    r = t.resolve("GET", "/nothing")
    assert r.candidates == [] and r.allow == []


def test_default_route_catches_what_would_be_405() -> None:
    t = table("GET /items", "$default")
    assert chosen(t, "POST", "/items") == ["$default"]


def test_routes_with_the_same_key_keep_config_order() -> None:
    k = key("GET", "/x")
    t = RouteTable([(k, "first"), (key("ANY", "/x"), "any"), (k, "second")])
    assert chosen(t, "GET", "/x") == ["first", "second", "any"]
