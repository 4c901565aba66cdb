"""The syntax of filter patterns (EventBridge syntax as Lambda accepts it): what `router validate` checks.

`pattern_problems(patterns, where)` lists every invalid part of a route's `filter` (one pattern or a list of
up to `MAX_PATTERNS`), each prefixed by its path, e.g. `routes[0].filter.s3.object.key[0]: unknown operator
'sufix' (did you mean 'suffix'? ...)`. It never raises, whatever YAML produced. Matching lives in
`router/dispatch/filters.py`, which only compiles patterns this module found valid.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
from collections.abc import Callable
from typing import Any

MAX_PATTERNS = 5
MAX_PATTERN_CHARS = 4096  # Lambda's limit on one FilterCriteria pattern
NUMERIC_LIMIT = 5.0e9  # EventBridge's numeric matching range
OPERATORS = (
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "equals-ignore-case",
    "wildcard",
    "cidr",
)
NUMERIC_OPS = ("=", "<", "<=", ">", ">=")
ANYTHING_BUT_OPS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
OR = "$or"
_NUMBER = (int, float)


def pattern_problems(patterns: Any, where: str) -> list[str]:
    out: list[str] = []
    if patterns is None:
        return out
    if isinstance(patterns, dict):
        items = [(where, patterns)]
    elif isinstance(patterns, list):
        items = [(f"{where}[{i}]", p) for i, p in enumerate(patterns)]
        if not patterns:
            out.append(f"{where}: empty list of patterns (give 1 to {MAX_PATTERNS}, or leave the filter out)")
        elif len(patterns) > MAX_PATTERNS:
            out.append(
                f"{where}: {len(patterns)} patterns, at most {MAX_PATTERNS} per route (any one may match)"
            )
    else:
        return [
            f"{where}: expected a pattern (a mapping) or a list of up to {MAX_PATTERNS}, got {patterns!r}"
        ]
    for path, p in items:
        if not isinstance(p, dict):
            out.append(f"{path}: expected a pattern (a mapping of field names), got {p!r}")
        elif not p:
            out.append(f"{path}: empty pattern (it would match every event; leave the filter out instead)")
        else:
            _check_object(p, path, out)
            size = len(json.dumps(p, default=str))
            if size > MAX_PATTERN_CHARS:
                out.append(f"{path}: pattern is {size} characters of JSON, over Lambda's {MAX_PATTERN_CHARS}")
    return out


def _check_object(obj: dict[Any, Any], path: str, out: list[str]) -> None:
    for key, value in obj.items():
        if not isinstance(key, str):
            out.append(f"{path}: field names are strings, got {key!r} (quote it)")
            continue
        here = f"{path}.{key}"
        if key == OR:
            _check_or(value, here, out)
        elif isinstance(value, dict):
            if value:
                _check_object(value, here, out)
            else:
                out.append(f"{here}: empty object (give the fields to match inside it)")
        elif isinstance(value, list):
            _check_leaf(value, here, out)
        elif key in OPERATORS:
            out.append(f"{here}: {key!r} is an operator, so it goes inside a list: [{{{key}: {value!r}}}]")
        else:
            out.append(f"{here}: expected a list of values or matchers (e.g. [{value!r}]), got {value!r}")


def _check_or(value: Any, path: str, out: list[str]) -> None:
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(p, dict) for p in value):
        out.append(f"{path}: expected a list of at least 2 patterns (mappings), got {value!r}")
        return
    for i, p in enumerate(value):
        if p:
            _check_object(p, f"{path}[{i}]", out)
        else:
            out.append(f"{path}[{i}]: empty pattern")


def _check_leaf(values: list[Any], path: str, out: list[str]) -> None:
    if not values:
        out.append(f"{path}: empty list (it matches nothing; give at least one value or matcher)")
    for i, m in enumerate(values):
        here = f"{path}[{i}]"
        if isinstance(m, dict):
            _check_matcher(m, here, out)
        elif isinstance(m, list):
            out.append(f"{here}: nested lists are not allowed in a pattern, got {m!r}")
        elif not (m is None or isinstance(m, str | bool | int | float)):
            out.append(f"{here}: unsupported value {m!r} ({type(m).__name__}); quote it to match a string")


def _check_matcher(m: dict[Any, Any], path: str, out: list[str]) -> None:
    if len(m) != 1:
        got = ", ".join(map(str, m)) or "nothing"
        out.append(f"{path}: a matcher has exactly one operator, got {got}")
    for op, arg in m.items():
        if op not in OPERATORS:
            out.append(f"{path}: unknown operator {op!r}{_suggest(op, OPERATORS)}")
            continue
        problem = _OPERATOR_CHECKS[op](arg)
        if problem:
            out.append(f"{path}.{op}: {problem}")


def _suggest(op: Any, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(op), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f" ({hint}known: {', '.join(known)})"


def _is_number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool)


def _string_or_ignore_case(arg: Any) -> str | None:
    if isinstance(arg, str):
        return None
    if (
        isinstance(arg, dict)
        and list(arg) == ["equals-ignore-case"]
        and isinstance(arg["equals-ignore-case"], str)
    ):
        return None
    return f"expected a string or {{equals-ignore-case: string}}, got {arg!r}"


def _string(arg: Any) -> str | None:
    return None if isinstance(arg, str) else f"expected a string, got {arg!r}"


def _exists(arg: Any) -> str | None:
    return None if isinstance(arg, bool) else f"expected true or false, got {arg!r}"


def _cidr(arg: Any) -> str | None:
    try:
        ipaddress.ip_network(arg, strict=False)
    except (TypeError, ValueError):
        return f"expected an IP network such as '10.0.0.0/24', got {arg!r}"
    return None


def _wildcard(arg: Any) -> str | None:
    if not isinstance(arg, str):
        return f"expected a string, got {arg!r}"
    prev_star = False
    chars = iter(arg)
    for c in chars:
        if c == "\\":
            if next(chars, None) not in ("*", "\\"):
                return f"in {arg!r} a backslash may only escape '*' or '\\'"
            prev_star = False
        elif c == "*":
            if prev_star:
                return f"consecutive wildcard characters are not allowed in {arg!r}"
            prev_star = True
        else:
            prev_star = False
    return None


def _numeric(arg: Any) -> str | None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        return f"expected [op, number] or [lower-op, number, upper-op, number], got {arg!r}"
    pairs = [(arg[i], arg[i + 1]) for i in range(0, len(arg), 2)]
    for op, num in pairs:
        if op not in NUMERIC_OPS:
            return f"unknown comparison {op!r} (known: {', '.join(NUMERIC_OPS)})"
        if not _is_number(num):
            return f"expected a number after {op!r}, got {num!r}"
        if abs(num) > NUMERIC_LIMIT:
            return f"{num!r} is outside the numeric range -5e9 to 5e9"
    if len(pairs) == 2:
        (lo_op, lo), (hi_op, hi) = pairs
        if lo_op not in (">", ">=") or hi_op not in ("<", "<="):
            return f"a range is a lower bound ('>' or '>=') then an upper bound ('<' or '<='), got {arg!r}"
        if lo >= hi:
            return f"empty range: {lo!r} is not below {hi!r}"
    return None


def _anything_but(arg: Any) -> str | None:
    if isinstance(arg, str) or _is_number(arg):
        return None
    if isinstance(arg, list):
        if arg and (all(isinstance(v, str) for v in arg) or all(_is_number(v) for v in arg)):
            return None
        return f"expected a non-empty list of only strings or only numbers, got {arg!r}"
    if isinstance(arg, dict) and len(arg) == 1:
        ((op, value),) = arg.items()
        if op in ("prefix", "suffix"):
            return _string(value)
        if op in ("equals-ignore-case", "wildcard"):
            values = value if isinstance(value, list) and value else [value]
            check = _string if op == "equals-ignore-case" else _wildcard
            return next((p for p in map(check, values) if p), None)
        return f"unknown operator {op!r} inside anything-but{_suggest(op, ANYTHING_BUT_OPS)}"
    ops = ", ".join(ANYTHING_BUT_OPS)
    return f"expected a string, a number, a list of them, or one of {{{ops}}}, got {arg!r}"


_OPERATOR_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "prefix": _string_or_ignore_case,
    "suffix": _string_or_ignore_case,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
    "equals-ignore-case": _string,
    "wildcard": _wildcard,
    "cidr": _cidr,
}
