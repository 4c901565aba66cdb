"""Property test: the compiled matcher agrees with a plain reference interpreter of the filter semantics.

The reference below reads the pattern afresh for every event, implements wildcards by recursion (no regex)
and numeric ranges with the operator module, so it shares no code with router.dispatch.filters.
"""

from __future__ import annotations

import ipaddress
import operator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.dispatch.filters import compile_patterns, pattern_problems

# --- the reference semantics ------------------------------------------------------------------------------

_MISSING = object()


def ref_any(patterns: Any, event: Any) -> bool:
    event = event if isinstance(event, dict) else {}
    return any(ref_object(p, event) for p in (patterns if isinstance(patterns, list) else [patterns]))


def ref_object(pattern: dict[str, Any], obj: dict[str, Any]) -> bool:
    return all(ref_field(key, value, obj) for key, value in pattern.items())


def flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in flatten(v)]
    return [value]


def ref_field(key: str, pat: Any, obj: dict[str, Any]) -> bool:
    if key == "$or":
        return any(ref_object(p, obj) for p in pat)
    value = obj.get(key, _MISSING)
    items = [] if value is _MISSING else flatten(value)
    if isinstance(pat, dict):
        objects = [x for x in items if isinstance(x, dict)]
        return any(ref_object(pat, o) for o in objects) if objects else ref_object(pat, {})
    leaves = [x for x in items if not isinstance(x, dict)]
    for matcher in pat:
        if isinstance(matcher, dict) and "exists" in matcher:
            if bool(leaves) == matcher["exists"]:
                return True
        elif any(ref_value(matcher, x) for x in leaves):
            return True
    return False


def is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def glob(pattern: str, text: str) -> bool:
    if not pattern:
        return not text
    if pattern[0] == "\\":
        return bool(text) and text[0] == pattern[1] and glob(pattern[2:], text[1:])
    if pattern[0] == "*":
        return any(glob(pattern[1:], text[i:]) for i in range(len(text) + 1))
    return bool(text) and text[0] == pattern[0] and glob(pattern[1:], text[1:])


OPS = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def ref_value(m: Any, x: Any) -> bool:
    if not isinstance(m, dict):
        return type(m) is type(x) and m == x
    ((op, arg),) = m.items()
    if op in ("prefix", "suffix"):
        if not isinstance(x, str):
            return False
        s, text = (arg, x) if isinstance(arg, str) else (arg["equals-ignore-case"].lower(), x.lower())
        return text.startswith(s) if op == "prefix" else text.endswith(s)
    if op == "equals-ignore-case":
        args = arg if isinstance(arg, list) else [arg]
        return isinstance(x, str) and any(x.lower() == a.lower() for a in args)
    if op == "wildcard":
        args = arg if isinstance(arg, list) else [arg]
        return isinstance(x, str) and any(glob(a, x) for a in args)
    if op == "numeric":
        return is_num(x) and all(OPS[arg[i]](x, arg[i + 1]) for i in range(0, len(arg), 2))
    if op == "cidr":
        try:
            return isinstance(x, str) and ipaddress.ip_address(x) in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    assert op == "anything-but"
    if isinstance(arg, dict):
        return not ref_value(arg, x)
    args = arg if isinstance(arg, list) else [arg]
    if isinstance(args[0], str):
        return not (isinstance(x, str) and x in args)
    return not (is_num(x) and any(x == a for a in args))


# --- strategies: small alphabets so that matches are frequent ---------------------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
STRINGS = st.sampled_from(["", "x", "xy", "yx", "X", "Xy", "a*b", "a\\b", "10.0.0.7", "10.0.1.7", "::1"])
NUMBERS = st.one_of(st.integers(-3, 3), st.sampled_from([0.0, 1.0, 1.5, -2.5, 2.0]))
SCALARS = st.one_of(STRINGS, NUMBERS, st.booleans(), st.none())

EVENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, min_size=1, max_size=3)
    ),
    max_leaves=12,
)
WILDCARDS = st.sampled_from(["*", "x*", "*y", "x*y", "X*", "a\\*b", "a\\\\b", "*x*", ""])
FRAGMENTS = st.sampled_from(["", "x", "X", "y", "xy"])


def _fold(s: str) -> Any:
    return st.sampled_from([s, {"equals-ignore-case": s}])


NUMERIC = st.one_of(
    st.tuples(st.sampled_from(["=", "<", "<=", ">", ">="]), NUMBERS).map(list),
    st.tuples(st.sampled_from([">", ">="]), st.sampled_from(["<", "<="]), NUMBERS, NUMBERS)
    .filter(lambda t: t[2] < t[3])
    .map(lambda t: [t[0], t[2], t[1], t[3]]),
)
ANYTHING_BUT = st.one_of(
    STRINGS,
    NUMBERS,
    st.lists(STRINGS, min_size=1, max_size=3),
    st.lists(NUMBERS, min_size=1, max_size=3),
    FRAGMENTS.map(lambda s: {"prefix": s}),
    FRAGMENTS.map(lambda s: {"suffix": s}),
    st.lists(FRAGMENTS, min_size=1, max_size=2).map(lambda s: {"equals-ignore-case": s}),
    st.lists(WILDCARDS, min_size=1, max_size=2).map(lambda s: {"wildcard": s}),
)
MATCHERS = st.one_of(
    SCALARS,
    FRAGMENTS.flatmap(_fold).map(lambda a: {"prefix": a}),
    FRAGMENTS.flatmap(_fold).map(lambda a: {"suffix": a}),
    FRAGMENTS.map(lambda s: {"equals-ignore-case": s}),
    WILDCARDS.map(lambda s: {"wildcard": s}),
    NUMERIC.map(lambda n: {"numeric": n}),
    st.booleans().map(lambda b: {"exists": b}),
    st.sampled_from(["10.0.0.0/24", "::/0"]).map(lambda c: {"cidr": c}),
    ANYTHING_BUT.map(lambda a: {"anything-but": a}),
)
LEAVES = st.lists(MATCHERS, min_size=1, max_size=4)


def _patterns(children: Any) -> Any:
    fields = st.dictionaries(KEYS, st.one_of(LEAVES, children), min_size=1, max_size=2)
    with_or = st.tuples(fields, st.lists(fields, min_size=2, max_size=3)).map(lambda t: {**t[0], "$or": t[1]})
    return st.one_of(fields, with_or)


PATTERNS = st.recursive(st.dictionaries(KEYS, LEAVES, min_size=1, max_size=2), _patterns, max_leaves=6)
TOP_EVENTS = st.dictionaries(KEYS, EVENTS, min_size=2, max_size=3)
PATTERN_LISTS = st.one_of(PATTERNS, st.lists(PATTERNS, min_size=1, max_size=5))


@settings(max_examples=400, deadline=None)
@given(PATTERN_LISTS, st.lists(TOP_EVENTS, min_size=1, max_size=8))
def test_compiled_matcher_agrees_with_reference(patterns: Any, events: list[Any]) -> None:
    assert pattern_problems(patterns, "filter") == []
    match = compile_patterns(patterns)
    for event in events:
        assert match(event) == ref_any(patterns, event), (patterns, event)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        SCALARS, lambda i: st.one_of(st.lists(i, max_size=3), st.dictionaries(SCALARS, i, max_size=3))
    )
)
def test_pattern_problems_never_raises(anything: Any) -> None:
    found = pattern_problems(anything, "routes[0].filter")
    assert all(p.startswith("routes[0].filter") for p in found)
