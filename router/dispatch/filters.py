"""Event filtering in EventBridge pattern syntax, applied as Lambda applies FilterCriteria (1 to 5 patterns).

Contract:

* `pattern_problems(patterns, where)` (from `filter_syntax`) lists every invalid part of a route's `filter`
  (a pattern or a list of up to `MAX_PATTERNS`), each prefixed by its path:
  `routes[0].filter.s3.object.key[0]: unknown operator 'sufix'`. `router validate` and `serve` list them all.
* `compile_filter(patterns, kind)` compiles valid patterns once into a predicate over an `Envelope`: it
  matches `envelope.record`, the native record as the function receives it. For kafka the base64
  `key`/`value`, for kinesis `kinesis.data` (also reachable as top-level `data`, the path Lambda's docs use)
  and for http the `body` are matched decoded: as JSON when they parse as JSON, else as the UTF-8 string.
  Decoding happens only when a pattern names those fields. `compile_patterns(patterns)` is the same over a
  plain dict (e.g. for the inspection API's wait-for-pattern).

Semantics (docs/filters.md has the user's version): an event passes if ANY pattern matches; a pattern matches
if ALL its fields match; `$or: [p1, p2, ...]` matches if any sub-pattern matches the same object. A leaf list
matches if any of its matchers matches any of the field's values: a scalar, or every scalar in an array
(nested arrays crushed). Objects are not values, so `exists` sees only leaves. A nested pattern against an
array of objects must match within ONE element (array consistency, as EventBridge's JSON matching). Exact
values compare type and value: strings byte for byte, 300 (int) is not 300.0 (float), true is not 1.
`numeric` compares any JSON number numerically. `anything-but` needs the field present and matches every
value the positive form would not match.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from router.core.errors import ConfigError
from router.dispatch.filter_syntax import MAX_PATTERNS, OPERATORS, OR, pattern_problems

if TYPE_CHECKING:
    from router.core.envelope import Envelope
    from router.core.kinds import KindTraits


Match = Callable[[Any], bool]
_NUMBER = (int, float)
__all__ = [
    "MAX_PATTERNS",
    "OPERATORS",
    "compile_filter",
    "compile_patterns",
    "decode_data",
    "matches",
    "pattern_problems",
]
_EMPTY: dict[str, Any] = {}
_json = msgspec.json.Decoder()

# ---------------------------------------------------------------------------------------------------------
# Compilation: each pattern becomes nested closures; per event only dict lookups and the operators run.


def compile_patterns(patterns: Any) -> Match:
    """A predicate over a plain event (dict) for valid patterns: a pattern or a list (any may match)."""
    problems = pattern_problems(patterns, "filter")
    if problems:
        raise ConfigError(problems)
    matchers = [_object(p) for p in (patterns if isinstance(patterns, list) else [patterns])]
    if len(matchers) == 1:
        only = matchers[0]
        return lambda event: only(event if isinstance(event, dict) else _EMPTY)

    def any_pattern(event: Any) -> bool:
        obj = event if isinstance(event, dict) else _EMPTY
        return any(m(obj) for m in matchers)

    return any_pattern


def matches(patterns: Any, event: Any) -> bool:
    """One-off match (compiles every time; use compile_patterns on hot paths)."""
    return compile_patterns(patterns)(event)


def _object(pattern: dict[str, Any]) -> Match:
    checks: list[Match] = []
    for key, value in pattern.items():
        if key == OR:
            checks.append(_any_of([_object(p) for p in value]))
        elif isinstance(value, dict):
            checks.append(_nested(key, _object(value)))
        else:
            checks.append(_leaf(key, value))
    if len(checks) == 1:
        return checks[0]

    def all_fields(obj: dict[str, Any]) -> bool:
        for check in checks:
            if not check(obj):
                return False
        return True

    return all_fields


def _any_of(alternatives: list[Match]) -> Match:
    return lambda obj: any(a(obj) for a in alternatives)


def _nested(key: str, sub: Match) -> Match:
    on_empty = sub(_EMPTY)  # a missing field or a scalar: only exists:false sub-fields can hold

    def nested(obj: dict[str, Any]) -> bool:
        v = obj.get(key)
        if type(v) is dict:
            return sub(v)
        if type(v) is list:
            elements = [x for x in _crush(v) if type(x) is dict]
            if elements:
                return any(sub(x) for x in elements)
        return on_empty

    return nested


def _crush(values: list[Any]) -> Iterator[Any]:
    for v in values:
        if type(v) is list:
            yield from _crush(v)
        else:
            yield v


def _leaf(key: str, matchers: list[Any]) -> Match:
    exact: set[tuple[type, Any]] = set()
    preds: list[Match] = []
    exists_true = exists_false = False
    for m in matchers:
        if not isinstance(m, dict):
            exact.add((type(m), m))
        elif "exists" in m:
            exists_true, exists_false = exists_true or m["exists"], exists_false or not m["exists"]
        else:
            ((op, arg),) = m.items()
            preds.append(_OPERATORS[op](arg))
    value = _value_predicate(exact, preds)

    def leaf(obj: dict[str, Any]) -> bool:
        v = obj.get(key, _MISSING)
        t = type(v)
        if t is list:
            values = [x for x in _crush(v) if type(x) is not dict]
            if not values:
                return exists_false
            return exists_true or any(value(x) for x in values)
        if v is _MISSING or t is dict:
            return exists_false
        return exists_true or value(v)

    return leaf


_MISSING = object()


def _value_predicate(exact: set[tuple[type, Any]], preds: list[Match]) -> Match:
    if not preds:
        return lambda x: (type(x), x) in exact
    if not exact and len(preds) == 1:
        return preds[0]
    return lambda x: (type(x), x) in exact or any(p(x) for p in preds)


# Operators: each compiles its argument into a predicate over one scalar value.


def _fold(arg: Any) -> tuple[str, bool]:
    """(string, ignore_case) from 'abc' or {equals-ignore-case: 'abc'}."""
    if isinstance(arg, dict):
        return arg["equals-ignore-case"].lower(), True
    return arg, False


def _prefix(arg: Any) -> Match:
    s, fold = _fold(arg)
    if fold:
        return lambda x: type(x) is str and x.lower().startswith(s)
    return lambda x: type(x) is str and x.startswith(s)


def _suffix(arg: Any) -> Match:
    s, fold = _fold(arg)
    if fold:
        return lambda x: type(x) is str and x.lower().endswith(s)
    return lambda x: type(x) is str and x.endswith(s)


def _equals_ignore_case(arg: Any) -> Match:
    values = {v.lower() for v in (arg if isinstance(arg, list) else [arg])}
    return lambda x: type(x) is str and x.lower() in values


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts, chars = [], iter(pattern)
    for c in chars:
        if c == "\\":
            parts.append(re.escape(next(chars)))
        elif c == "*":
            parts.append(".*")
        else:
            parts.append(re.escape(c))
    return re.compile("".join(parts), re.DOTALL)


def _wildcard_match(arg: Any) -> Match:
    regexes = [_wildcard_regex(p).fullmatch for p in (arg if isinstance(arg, list) else [arg])]
    if len(regexes) == 1:
        one = regexes[0]
        return lambda x: type(x) is str and one(x) is not None
    return lambda x: type(x) is str and any(r(x) is not None for r in regexes)


def _numeric_match(arg: list[Any]) -> Match:
    tests = [_COMPARE[arg[i]](float(arg[i + 1])) for i in range(0, len(arg), 2)]
    if len(tests) == 1:
        one = tests[0]
        return lambda x: type(x) in _NUMBER and one(x)
    lo, hi = tests
    return lambda x: type(x) in _NUMBER and lo(x) and hi(x)


_COMPARE: dict[str, Callable[[float], Match]] = {
    "=": lambda n: lambda x: x == n,
    "<": lambda n: lambda x: x < n,
    "<=": lambda n: lambda x: x <= n,
    ">": lambda n: lambda x: x > n,
    ">=": lambda n: lambda x: x >= n,
}


def _cidr_match(arg: str) -> Match:
    network = ipaddress.ip_network(arg, strict=False)

    def in_network(x: Any) -> bool:
        if type(x) is not str:
            return False
        try:
            return ipaddress.ip_address(x) in network
        except ValueError:
            return False

    return in_network


def _anything_but_match(arg: Any) -> Match:
    if isinstance(arg, dict):
        ((op, value),) = arg.items()
        positive = _OPERATORS[op](value)
        return lambda x: not positive(x)
    values = arg if isinstance(arg, list) else [arg]
    if isinstance(values[0], str):
        strings = set(values)
        return lambda x: not (type(x) is str and x in strings)
    numbers = {float(v) for v in values}
    return lambda x: not (type(x) in _NUMBER and x in numbers)


_OPERATORS: dict[str, Callable[[Any], Match]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard_match,
    "numeric": _numeric_match,
    "cidr": _cidr_match,
    "anything-but": _anything_but_match,
}

# ---------------------------------------------------------------------------------------------------------
# Per-kind views: what the pattern sees of an envelope's record.


def compile_filter(patterns: Any, traits: KindTraits | str | None = None) -> Callable[[Envelope], bool]:
    """A predicate over envelopes of a source kind (its traits, or its name: they say which fields filters
    see decoded); no patterns (None) lets everything through."""
    if patterns is None:
        return lambda envelope: True
    if isinstance(traits, str):
        from router.config.sources import kind_traits

        traits = kind_traits(traits)
    match = compile_patterns(patterns)
    view = _view(traits.filter_fields if traits is not None else (), _top_keys(patterns))
    if view is None:
        return lambda envelope: match(envelope.record)
    return lambda envelope: match(view(envelope.record))


def _top_keys(patterns: Any) -> set[str]:
    keys: set[str] = set()
    for p in patterns if isinstance(patterns, list) else [patterns]:
        for key, value in p.items():
            keys.update(_top_keys(value) if key == OR else {key})
    return keys


def _view(fields: tuple[tuple[str, bool], ...], keys: set[str]) -> Callable[[Any], Any] | None:
    """The record as filters see it: the kind's encoded fields decoded, only those a pattern names."""
    wanted = [
        (path.split("."), b64) for path, b64 in fields if {path.split(".")[0], path.split(".")[-1]} & keys
    ]
    if not wanted:
        return None

    def view(rec: Any) -> Any:
        if not isinstance(rec, dict):
            return rec
        out = dict(rec)
        for parts, b64 in wanted:
            out = _decoded(out, parts, b64)
        return out

    return view


def _decoded(rec: dict[str, Any], parts: list[str], b64: bool) -> dict[str, Any]:
    """A copy of rec with the field at `parts` decoded; a nested field is also set under its last part."""
    if len(parts) == 1:
        value = rec.get(parts[0])
        if not isinstance(value, str):
            return rec
        # A text field is base64 only where the record says so (API Gateway's isBase64Encoded).
        encoded = b64 or bool(rec.get("isBase64Encoded"))
        return {**rec, parts[0]: decode_data(value) if encoded else _parse_text(value)}
    inner = rec.get(parts[0])
    if not isinstance(inner, dict) or parts[-1] not in _lookup(inner, parts[1:-1]):
        return rec
    decoded = _decoded(inner, parts[1:], b64)
    return {**rec, parts[0]: decoded, parts[-1]: _lookup(decoded, parts[1:-1])[parts[-1]]}


def _lookup(rec: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    for part in parts:
        inner = rec.get(part)
        rec = inner if isinstance(inner, dict) else {}
    return rec


def decode_data(b64: Any) -> Any:
    """Base64 data as Lambda filters it: the JSON value if it is JSON, else the UTF-8 text, else unchanged."""
    if not isinstance(b64, str):
        return b64
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        return b64
    try:
        return _json.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested too deeply: filtered as text
        pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return b64


def _parse_text(text: str) -> Any:
    try:
        return _json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return text
