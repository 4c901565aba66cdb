"""msgspec's validation errors, rewritten as our config problems: `path.to.key: what was expected, got X`.

`convert(raw, typ, path, problems)` is msgspec.convert that reports *every* problem of one Struct: msgspec
stops at the first error, so the offending key is dropped from a copy of the input and the conversion
retried, until it succeeds or the problem cannot be dropped. It parses msgspec's English messages ("Expected
`int`, got `str` - at `$.memory_mb`", "Object contains unknown field `x`", "Object missing required field
`y`"); tests/unit/test_config_messages.py pins those forms against the installed msgspec, so an upgrade that
changes them fails there first.

May import: router.core only.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import msgspec

MAX_RETRIES = 100  # problems reported per Struct at most, then the rest is dropped silently


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_AT = re.compile(r" - at `\$(.*)`$")


def _describe(t: msgspec.inspect.Type) -> str | None:
    if isinstance(t, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        noun = "an integer" if isinstance(t, msgspec.inspect.IntType) else "a number"
        lo, hi = t.ge, t.le
        if lo is not None and hi is not None:
            return f"expected {noun} between {lo:g} and {hi:g}"
        if lo is not None:
            return f"expected {noun} >= {lo:g}"
        return f"expected {noun}"
    if isinstance(t, msgspec.inspect.StrType):
        # Patterns end in \Z (a trailing newline does not pass, as it would with $); shown as the usual $.
        pattern = t.pattern
        if pattern and pattern.endswith("\\Z"):
            pattern = pattern.removesuffix("\\Z") + "$"
        return f"expected a string matching {pattern}" if pattern else "expected a string"
    if isinstance(t, msgspec.inspect.BoolType):
        return "expected true or false"
    if isinstance(t, msgspec.inspect.ListType):
        return "expected a list"
    if isinstance(t, msgspec.inspect.DictType | msgspec.inspect.StructType):
        return "expected a mapping"
    if isinstance(t, msgspec.inspect.LiteralType):
        return "expected one of " + ", ".join(repr(v) for v in t.values)
    if isinstance(t, msgspec.inspect.UnionType):
        parts = [
            d for d in (_describe(x) for x in t.types if not isinstance(x, msgspec.inspect.NoneType)) if d
        ]
        if len(parts) == 1:
            return parts[0]
        return "expected " + " or ".join(p.removeprefix("expected ") for p in parts) if parts else None
    return None


def _field_type(root: type, steps: list[str]) -> msgspec.inspect.Type | None:
    t: msgspec.inspect.Type | None = msgspec.inspect.type_info(root)
    for step in steps:
        while isinstance(t, msgspec.inspect.UnionType):
            structs = [
                x for x in t.types if isinstance(x, msgspec.inspect.StructType | msgspec.inspect.DictType)
            ]
            t = structs[0] if structs else None
        if isinstance(t, msgspec.inspect.StructType):
            t = next((f.type for f in t.fields if f.encode_name == step), None)
        elif isinstance(t, msgspec.inspect.DictType):
            t = t.value_type
        elif isinstance(t, msgspec.inspect.ListType):
            t = t.item_type
        else:
            return None
    return t


def _lookup(raw: Any, steps: list[str]) -> Any:
    for step in steps:
        if isinstance(raw, dict) and step in raw:
            raw = raw[step]
        elif isinstance(raw, list) and step.isdigit() and int(step) < len(raw):
            raw = raw[int(step)]
        else:
            return msgspec.UNSET
    return raw


def _steps(jsonpath: str) -> list[str]:
    return [a or b for a, b in re.findall(r"\.([^.\[\]]+)|\[([^\]]*)\]", jsonpath)]


def convert(raw: Any, typ: type, path: str, problems: list[str], *, partial: bool = False) -> Any:
    """msgspec.convert with errors in our format (`path.to.key: what was expected, got X`), all of them.

    msgspec stops at the first error; to list every problem of one Struct, the offending key is dropped from
    a copy of the input and the conversion retried, until it succeeds or the problem cannot be dropped.
    Returns None when there was any problem, unless `partial`: then what decoded once the offending keys
    were dropped (their defaults in their place), so later checks can look at the rest of it; the problems
    already listed keep such a value from ever being used.
    """
    raw = copy.deepcopy(raw)
    failed = False
    for _ in range(MAX_RETRIES):
        try:
            result: Any = msgspec.convert(raw, type=typ, strict=False)
        except msgspec.ValidationError as e:
            failed = True
            steps = _report(e, raw, typ, path, problems)
            if not steps or not _drop(raw, steps):
                return None
            continue
        return None if failed and not partial else result
    return None


def _drop(raw: Any, steps: list[str]) -> bool:
    parent = _lookup(raw, steps[:-1])
    last = steps[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
        return True
    return False


def _report(e: msgspec.ValidationError, raw: Any, typ: type, path: str, problems: list[str]) -> list[str]:
    """Append one problem for a msgspec error; return the steps to the offending key ([] if not droppable)."""
    msg = str(e)
    m = _AT.search(msg)
    steps = _resolve_keys(raw, typ, _steps(m.group(1)) if m else [])
    text = msg[: m.start()] if m else msg
    value = _lookup(raw, steps)
    droppable = True
    if text.startswith("Object contains unknown field"):
        known = _known_fields(typ, steps)
        unknown = re.search(r"`([^`]*)`", text)
        if unknown:
            steps = [*steps, unknown.group(1)]
        text = "unknown key" + (f" (known keys: {', '.join(known)})" if known else "")
    elif text.startswith("Object missing required field"):
        text = text.replace("Object missing required field", "missing required key").replace("`", "'")
        droppable = False
    else:
        ftype = _field_type(typ, steps) if steps else None
        described = _describe(ftype) if ftype is not None else None
        if described:
            text = f"{described}, got {value!r}"
        else:
            text = text[0].lower() + text[1:].replace("`", "'")
            if value is not msgspec.UNSET and not isinstance(value, dict | list):
                text += f", got {value!r}"
    where = path
    for step in steps:
        where = f"{where}[{step}]" if step.isdigit() else _join(where, step)
    problems.append(f"{where or '<root>'}: {text}")
    return steps if droppable else []


def _resolve_keys(raw: Any, typ: type, steps: list[str]) -> list[str]:
    """msgspec writes a dict key as '...'; find the key whose value fails to convert."""
    out: list[str] = []
    for step in steps:
        if step == "...":
            parent = _lookup(raw, out)
            vtype = _field_type(typ, [*out, "..."])
            for key, value in parent.items() if isinstance(parent, dict) else []:
                try:
                    msgspec.convert(value, type=_python_type(vtype), strict=False)
                except (msgspec.ValidationError, TypeError):
                    step = str(key)
                    break
        out.append(step)
    return out


def _python_type(t: msgspec.inspect.Type | None) -> Any:
    simple = {
        msgspec.inspect.StrType: str,
        msgspec.inspect.IntType: int,
        msgspec.inspect.FloatType: float,
        msgspec.inspect.BoolType: bool,
    }
    for k, v in simple.items():
        if isinstance(t, k):
            return v
    return getattr(t, "cls", Any)


def _known_fields(typ: type, steps: list[str]) -> list[str]:
    t = _field_type(typ, steps) if steps else msgspec.inspect.type_info(typ)
    while isinstance(t, msgspec.inspect.UnionType):
        t = next((x for x in t.types if isinstance(x, msgspec.inspect.StructType)), None)
    if isinstance(t, msgspec.inspect.StructType):
        return [f.encode_name for f in t.fields]
    return []
