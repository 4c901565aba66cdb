"""Reading a config file: YAML in, `Config` out, every decoding problem listed with its path.

`read_config(path)` and `decode_config(text)` read the YAML with the safe loader, interpolate `${VAR}` /
`${VAR:-default}` from the environment and decode each section into frozen Structs (router.config.model),
each source through the tagged union on `kind`. They never raise for a bad file: they return a `Loaded`
with what decoded and every problem found. Checks across sections (routes name existing functions, ports,
handlers, per-kind checks) are `router.validate`'s; it is what `serve` and `validate` call.

Any file is read in bounded time and memory (docs/hardening.md): at most MAX_CONFIG_BYTES are read; the
text must be UTF-8; YAML nesting deeper than MAX_DEPTH, more than MAX_ALIASES aliases, a document that
expands through its aliases to more than MAX_VALUES values or deeper than MAX_DEPTH (a "billion laughs"
bomb), or an alias inside the node it names, is a problem reported before anything is built from it, as
YAML libraries guard against alias bombs (SnakeYAML's alias limit, go-yaml's expansion ratio).

May import: router.core and the rest of router.config.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from router.config.messages import convert
from router.config.model import Config, FunctionConfig, RouteConfig
from router.config.sources import KINDS, SETTINGS

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 100
MAX_ALIASES = 1000
MAX_VALUES = 100_000


@dataclass
class Loaded:
    """What a config file decoded into. `config` is None when the top level did not decode; `declared`
    names the functions and sources present in the file (decoded or not), so checks do not report a route
    to a function that already has its own problems. A function or route with a bad value is kept with that
    key at its default (its problem listed), so `router validate` checks the rest of it in the same run
    (a bad `code` path beside a bad `memory_mb`); a Loaded with problems is never served."""

    config: Config | None
    problems: list[str] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)


def read_config(path: str | Path, env: dict[str, str] | None = None) -> Loaded:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        return Loaded(None, [f"{path}: cannot read config: {e.strerror or e}"])
    if len(data) > MAX_CONFIG_BYTES:
        size = MAX_CONFIG_BYTES // (1024 * 1024)
        return Loaded(None, [f"{path}: larger than {size} MB, not a config file"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return Loaded(None, [f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} on line {line})"])
    return decode_config(text, base_dir=path.parent, env=env)


def decode_config(text: str, *, base_dir: str | Path = ".", env: dict[str, str] | None = None) -> Loaded:
    try:
        raw = yaml.load(text, Loader=BoundedLoader)  # a SafeLoader, with limits
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(e, "problem", None) or str(e)
        return Loaded(None, [f"<yaml> {where}: {problem}"])
    except (ValueError, OverflowError, RecursionError) as e:
        # A value the safe constructor cannot build: an int of more than 4300 digits, a date out of range.
        return Loaded(None, [f"<yaml>: cannot load a value: {e}"])
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return Loaded(None, [f"<root>: expected a mapping of sections, got {type(raw).__name__}"])
    problems: list[str] = []
    raw = interpolate(raw, dict(os.environ) if env is None else env, problems)
    if problems:  # values built from a missing variable would only add noise
        return Loaded(None, problems)
    config = _decode(raw, str(base_dir), problems)
    declared = {str(n) for n in (*_mapping(raw, "functions", []), *_mapping(raw, "sources", []))}
    return Loaded(config, problems, declared)


class LimitExceeded(yaml.MarkedYAMLError):
    pass


class BoundedLoader(yaml.SafeLoader):
    """yaml's SafeLoader, refusing documents too deep or too large once their aliases are expanded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # Checked in the scanner too: it reads up to 1 KB ahead of the parser through nested flow
        # collections, at a cost quadratic in their depth (seconds for a thousand '[').
        if self.flow_level >= MAX_DEPTH:
            raise LimitExceeded(
                problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=self.get_mark()
            )
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise self._refuse(f"more than {MAX_ALIASES} aliases")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise self._refuse(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        found = expansion_problem(node)
        if found is not None:
            problem, where = found
            raise LimitExceeded(problem=problem, problem_mark=where.start_mark)
        return super().construct_document(node)

    def _refuse(self, problem: str) -> LimitExceeded:
        return LimitExceeded(problem=problem, problem_mark=self.peek_event().start_mark)


def expansion_problem(root: yaml.Node) -> tuple[str, yaml.Node] | None:
    """What is wrong with the node graph once every alias is expanded (too many values, too deep, or an
    alias inside the node it names), and the first node where it is. Walked without recursion, each node
    once (sizes are memoised), so a bomb of 10^9 values costs as much as its few dozen nodes."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) expanded
    open_nodes: set[int] = set()  # nodes whose children are being walked: the current path
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, walked = stack.pop()
        key = id(node)
        kids = _children(node)
        if walked:
            open_nodes.discard(key)
            values = min(MAX_VALUES + 1, 1 + sum(done[id(k)][0] for k in kids))
            depth = 1 + max((done[id(k)][1] for k in kids), default=0)
            if values > MAX_VALUES:
                return f"expands through its aliases to more than {MAX_VALUES} values", node
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep once its aliases are expanded", node
            done[key] = (values, depth)
        elif key in open_nodes:
            return "an alias refers to a node that contains it (a recursive structure)", node
        elif key not in done:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in done)
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str], problems: list[str], path: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string; a missing VAR without default is a problem."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and (env[name] != "" or default is None):
                return env[name]
            if default is not None:
                return default
            problems.append(
                f"{path or '<root>'}: environment variable {name} is not set (use ${{{name}:-default}})"
            )
            return ""

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env, problems, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, problems, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _decode(raw: dict[str, Any], base_dir: str, problems: list[str]) -> Config | None:
    top = {k: v for k, v in raw.items() if k not in ("functions", "sources", "routes")}
    config = convert(top, Config, "", problems)

    functions: dict[str, FunctionConfig] = {}
    for name, fraw in _mapping(raw, "functions", problems).items():
        if not FUNCTION_NAME.match(str(name)):
            problems.append(f"functions.{name}: invalid function name (1-64 of letters, digits, '-' and '_')")
        if not isinstance(fraw, dict):
            problems.append(f"functions.{name}: expected a mapping, got {fraw!r}")
            continue
        f = convert(fraw, FunctionConfig, f"functions.{name}", problems, partial=True)
        if f is not None:
            functions[str(name)] = f

    sources: dict[str, Any] = {}
    for name, sraw in _mapping(raw, "sources", problems).items():
        if not isinstance(sraw, dict):
            problems.append(f"sources.{name}: expected a mapping, got {sraw!r}")
            continue
        kind = sraw.get("kind")
        if not isinstance(kind, str) or kind not in SETTINGS:
            problems.append(
                f"sources.{name}.kind: unknown source kind {kind!r} (known kinds: {', '.join(KINDS)})"
            )
            continue
        s = convert(sraw, SETTINGS[kind], f"sources.{name}", problems)
        if s is not None:
            sources[str(name)] = s

    routes: list[RouteConfig] = []
    rraw = raw.get("routes") or []
    if not isinstance(rraw, list):
        problems.append(f"routes: expected a list of routes, got {rraw!r}")
        rraw = []
    for i, r in enumerate(rraw):
        route = convert(r, RouteConfig, f"routes[{i}]", problems, partial=True)
        if route is not None:
            routes.append(route)

    if config is None:
        return None
    return msgspec.structs.replace(
        config, functions=functions, sources=sources, routes=routes, base_dir=base_dir
    )


def _mapping(raw: dict[str, Any], key: str, problems: list[str]) -> dict[Any, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        problems.append(f"{key}: expected a mapping of name to settings, got {value!r}")
        return {}
    return value
