"""The msgspec error rewriter (router/config/messages.py), pinned against the installed msgspec.

`convert` parses msgspec's English validation messages; these tests fix the forms it relies on, so a msgspec
upgrade that changes them fails here, with the message that changed, before users see a worse error.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import pytest

from router.config.base import Strict
from router.config.messages import MAX_RETRIES, convert


class Inner(Strict):
    size: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1


class Outer(Strict):
    name: str
    memory_mb: Annotated[int, msgspec.Meta(ge=128, le=10240)] = 128
    mode: Literal["a", "b"] = "a"
    inner: Inner = msgspec.field(default_factory=Inner)
    env: dict[str, str] = {}
    items: list[Inner] = []


def msgspec_message(raw: object) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(raw, type=Outer, strict=False)
    return str(info.value)


@pytest.mark.parametrize(
    ("raw", "form"),
    [
        ({"name": "x", "memory_mb": "big"}, "Expected `int`, got `str` - at `$.memory_mb`"),
        ({"name": "x", "memory_mb": 5}, "Expected `int` >= 128 - at `$.memory_mb`"),
        ({"name": "x", "nope": 1}, "Object contains unknown field `nope`"),
        ({}, "Object missing required field `name`"),
        ({"name": "x", "env": {"A": 1}}, "- at `$.env[...]`"),
        ({"name": "x", "items": [{}, {"size": 0}]}, "- at `$.items[1].size`"),
    ],
)
def test_msgspec_still_speaks_the_forms_we_parse(raw: object, form: str) -> None:
    assert form in msgspec_message(raw)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            {"name": "x", "memory_mb": "big"},
            "f.memory_mb: expected an integer between 128 and 10240, got 'big'",
        ),
        ({"name": "x", "mode": "c"}, "f.mode: expected one of 'a', 'b', got 'c'"),
        (
            {"name": "x", "nope": 1},
            "f.nope: unknown key (known keys: name, memory_mb, mode, inner, env, items)",
        ),
        ({}, "f: missing required key 'name'"),
        ({"name": "x", "env": {"A": "ok", "B": 1}}, "f.env.B: expected a string, got 1"),
        (
            {"name": "x", "items": [{}, {"size": 0}]},
            "f.items[1].size: expected an integer between 1 and 10, got 0",
        ),
        ({"name": "x", "inner": {"size": 11}}, "f.inner.size: expected an integer between 1 and 10, got 11"),
    ],
)
def test_problems_name_the_key_and_the_value(raw: object, problem: str) -> None:
    problems: list[str] = []
    assert convert(raw, Outer, "f", problems) is None
    assert problems == [problem]


def test_every_problem_of_one_struct_is_listed() -> None:
    problems: list[str] = []
    raw = {"name": "x", "memory_mb": "big", "mode": "c", "nope": 1}
    assert convert(raw, Outer, "f", problems) is None
    assert sorted(problems) == sorted(
        [
            "f.memory_mb: expected an integer between 128 and 10240, got 'big'",
            "f.mode: expected one of 'a', 'b', got 'c'",
            "f.nope: unknown key (known keys: name, memory_mb, mode, inner, env, items)",
        ]
    )
    assert raw == {"name": "x", "memory_mb": "big", "mode": "c", "nope": 1}  # the input is not changed


def test_the_retries_are_bounded() -> None:
    problems: list[str] = []
    raw = {"name": "x", **{f"k{i}": i for i in range(MAX_RETRIES + 50)}}
    assert convert(raw, Outer, "f", problems) is None
    assert len(problems) == MAX_RETRIES


def test_a_valid_struct_converts() -> None:
    problems: list[str] = []
    assert convert({"name": "x"}, Outer, "f", problems) == Outer(name="x")
    assert problems == []
