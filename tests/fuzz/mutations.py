"""Mutations of real config files, the way a careless user or a fuzzer breaks them.

`mutants(seeds, n, seed)` yields `n` (name, bytes) pairs, deterministic for a given `seed`: each takes one of
the seed configs and applies one to three mutations, at the text level (lines dropped, doubled, swapped,
re-indented, truncated; bytes flipped or made non-UTF-8) or at the YAML level (a value replaced by a value of
another type: a list, a mapping, a huge or negative number, a deep nesting, an alias bomb, a recursive
alias, `null`, a date, a huge string; a key renamed; a section replaced).
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from router.config.loader import BoundedLoader

Mutation = Callable[[bytes, random.Random], bytes]

WEIRD_VALUES: list[str] = [
    "[1]",
    "{a: 1}",
    "[[[[]]]]",
    "null",
    "~",
    "true",
    "-1",
    "0",
    "1e309",
    ".nan",
    "-.inf",
    "9" * 5000,
    "0x7fffffffffffffffffff",
    "2001-12-14",
    "2001-13-45",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    '"' + "x" * 10000 + '"',
    "'${NOT_SET}'",
    "'${A:-${B}}'",
    "/",
    "..",
    "'\\u0000'",
    "!!python/object:os.system x",
    "&x [*x]",
    "[" * 300 + "]" * 300,
    "{" * 300 + "}" * 300,
    "? [a, b]\n  : c",
    "*undefined_alias",
    "|\n  text",
]


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


STRUCTURAL_VALUES: list[Any] = [
    [1],
    {"a": 1},
    [[[[]]]],
    None,
    True,
    -1,
    0,
    float("inf"),
    float("nan"),
    10**30,
    datetime.date(2001, 12, 14),
    b"hello",
    {"a": None, "b": None},
    "x" * 10000,
    "${NOT_SET}",
    "${A:-${B}}",
    "/",
    "..",
    "\x00",
    _nested(300),
]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def drop_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def double_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return b"\n".join(lines)


def swap_lines(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def reindent(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines[i] = b" " * rng.choice([0, 1, 3, 7, 40]) + lines[i].lstrip()
    return b"\n".join(lines)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def insert_chars(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    junk = rng.choice(
        [b":", b"- ", b"{", b"}", b"[", b"]", b"&a ", b"*a", b"!!", b"\t", b"'", b'"', b"#", b"%"]
    )
    return data[:i] + junk * rng.randint(1, 3) + data[i:]


def replace_value(data: bytes, rng: random.Random) -> bytes:
    """Put a weird value after some `key:` of the text."""
    lines = _lines(data)
    keyed = [i for i, line in enumerate(lines) if b": " in line or line.rstrip().endswith(b":")]
    if not keyed:
        return data
    i = rng.choice(keyed)
    head, _, _ = lines[i].partition(b":")
    lines[i] = head + b": " + rng.choice(WEIRD_VALUES).encode()
    return b"\n".join(lines)


def structural(data: bytes, rng: random.Random) -> bytes:
    """Load the YAML, replace one node anywhere with a weird value or rename a key, dump it again."""
    try:
        doc = yaml.load(data, Loader=BoundedLoader)
    except (yaml.YAMLError, ValueError, OverflowError):
        return data
    if not isinstance(doc, dict):
        return data
    paths = list(_paths(doc, ()))
    if not paths:
        return data
    path = rng.choice(paths)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    choice = rng.random()
    if choice < 0.2 and isinstance(parent, dict):
        parent[rng.choice(["", "kind", "1", "x" * 300, "<<"])] = parent.pop(last)
    else:
        parent[last] = rng.choice(STRUCTURAL_VALUES)
    return yaml.safe_dump(doc, default_flow_style=rng.random() < 0.5).encode()


def alias_bomb(data: bytes, rng: random.Random) -> bytes:
    levels = rng.randint(5, 10)
    lines = ['  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    section = rng.choice([b"stage_variables", b"environment", b"filter"])
    return (
        data + b"\nbomb:\n" + "\n".join(lines).encode() + b"\n" + section + b": *l" + str(levels - 1).encode()
    )


def deep(data: bytes, rng: random.Random) -> bytes:
    n = rng.choice([150, 1000, 20000])
    return data + b"\ndeep: " + b"[" * n + b"]" * n + b"\n"


MUTATIONS: list[Mutation] = [
    drop_line,
    double_line,
    swap_lines,
    reindent,
    truncate,
    flip_bytes,
    insert_chars,
    replace_value,
    replace_value,
    structural,
    structural,
    structural,
    alias_bomb,
    deep,
]


def _paths(value: Any, prefix: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def mutants(seeds: dict[str, bytes], n: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    names = sorted(seeds)
    for i in range(n):
        name = rng.choice(names)
        data = seeds[name]
        applied = []
        for _ in range(rng.randint(1, 3)):
            mutation = rng.choice(MUTATIONS)
            data = mutation(data, rng)
            applied.append(mutation.__name__)
        yield f"{i}:{name}:{'+'.join(applied)}", data
