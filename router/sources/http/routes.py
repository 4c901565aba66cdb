"""The HTTP gateway's route table: API Gateway route keys, matched most specific first.

A route key is `METHOD /path/template` or `$default`, as in an API Gateway HTTP API. A template is made of
literal segments, `{name}` (exactly one segment) and, last only, `{name+}` (one or more segments, greedy).
`RouteTable.resolve(method, raw_path)` returns every route whose key matches, most specific first:

* segment by segment, a literal beats `{param}`, which beats `{greedy+}`;
* on the same template, a named method beats `ANY`; routes with the same key keep their config order
  (a route's filter may reject the request, and the next candidate is tried);
* `$default` comes last and catches everything else.

When nothing matches, resolve says whether the path matched under other methods (405, with the Allow
list) or not at all (404). Path parameters are percent-decoded per segment, so `%2F` stays in its segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

DEFAULT_ROUTE = "$default"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
_PARAM = re.compile(r"^\{([A-Za-z0-9_.-]+)(\+?)\}\Z")

_LITERAL, _PARAM_RANK, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class Segment:
    rank: int  # _LITERAL, _PARAM_RANK or _GREEDY
    value: str  # the literal text, or the parameter name


@dataclass(frozen=True)
class RouteKey:
    method: str  # upper case, or "ANY"; "ANY" for $default
    path: str  # the template as written, or "$default"
    segments: tuple[Segment, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.path == DEFAULT_ROUTE

    @property
    def text(self) -> str:
        """The routeKey AWS puts into events: 'GET /items/{id}' or '$default'."""
        return DEFAULT_ROUTE if self.is_default else f"{self.method} {self.path}"

    @property
    def order(self) -> tuple[Any, ...]:
        """Sort key: most specific first (see module docstring)."""
        if self.is_default:
            return (1, (), 1)
        return (0, tuple(s.rank for s in self.segments), int(self.method == "ANY"))


def parse_route_key(method: str, path: str) -> RouteKey | str:
    """A RouteKey, or a message saying what is wrong. `path` may carry the method ('GET /items/{id}')."""
    method = (method or "ANY").strip().upper()
    path = (path or DEFAULT_ROUTE).strip()
    if " " in path:
        given, _, path = path.partition(" ")
        given, path = given.upper(), path.strip()
        if method not in ("ANY", given):
            return f"method {method!r} and route key {given + ' ' + path!r} disagree"
        method = given
    if path == DEFAULT_ROUTE:
        return RouteKey(method="ANY", path=DEFAULT_ROUTE)
    if method not in METHODS:
        return f"unknown method {method!r} (expected one of {', '.join(METHODS)})"
    if not path.startswith("/"):
        return f"path {path!r} must start with '/' (or be '$default')"
    segments: list[Segment] = []
    names: set[str] = set()
    parts = _split(path)
    for i, part in enumerate(parts):
        m = _PARAM.match(part)
        if m is None:
            if "{" in part or "}" in part:
                return f"path {path!r}: segment {part!r} is not a literal, {{name}} or {{name+}}"
            segments.append(Segment(_LITERAL, part))
            continue
        name, greedy = m.group(1), m.group(2) == "+"
        if name in names:
            return f"path {path!r}: parameter {name!r} appears twice"
        if greedy and i != len(parts) - 1:
            return f"path {path!r}: greedy parameter {{{name}+}} must be the last segment"
        names.add(name)
        segments.append(Segment(_GREEDY if greedy else _PARAM_RANK, name))
    return RouteKey(method=method, path=path, segments=tuple(segments))


def _split(path: str) -> list[str]:
    """Segments of a path; '/' has none, and one trailing slash is ignored ('/items/' is '/items')."""
    trimmed = path[1:]
    if trimmed.endswith("/"):
        trimmed = trimmed[:-1]
    return trimmed.split("/") if trimmed else []


def match_path(key: RouteKey, raw_segments: list[str]) -> dict[str, str] | None:
    """The decoded path parameters if the template matches the (still encoded) segments, else None."""
    segs = key.segments
    params: dict[str, str] = {}
    for i, seg in enumerate(segs):
        if seg.rank == _GREEDY:
            rest = raw_segments[i:]
            if not rest:
                return None
            params[seg.value] = unquote("/".join(rest))
            return params
        if i >= len(raw_segments):
            return None
        raw = raw_segments[i]
        if seg.rank == _LITERAL:
            if unquote(raw) != seg.value:
                return None
        else:
            if raw == "":
                return None
            params[seg.value] = unquote(raw)
    return params if len(raw_segments) == len(segs) else None


@dataclass(frozen=True)
class Candidate:
    route: Any  # what the table was built with (a RoutePort in the gateway)
    key: RouteKey
    path_params: dict[str, str]


@dataclass(frozen=True)
class Resolution:
    """Matching routes, most specific first; when empty, `allow` lists the methods the path has (405)."""

    candidates: list[Candidate] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)


class RouteTable:
    def __init__(self, entries: list[tuple[RouteKey, Any]]) -> None:
        indexed = sorted(enumerate(entries), key=lambda ie: (ie[1][0].order, ie[0]))
        self._entries = [(key, route) for _, (key, route) in indexed]

    def __len__(self) -> int:
        return len(self._entries)

    def resolve(self, method: str, raw_path: str) -> Resolution:
        method = method.upper()
        raw_segments = _split(raw_path) if raw_path.startswith("/") else [raw_path]
        candidates: list[Candidate] = []
        allow: set[str] = set()
        for key, route in self._entries:
            if key.is_default:
                candidates.append(Candidate(route, key, {}))
                continue
            params = match_path(key, raw_segments)
            if params is None:
                continue
            if key.method in ("ANY", method):
                candidates.append(Candidate(route, key, params))
            else:
                allow.add(key.method)
        if candidates:
            return Resolution(candidates=candidates)
        return Resolution(allow=sorted(allow))
