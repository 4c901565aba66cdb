"""Checking a config: everything `router validate` and `serve` check, listed in one run.

`load_config(path)` / `parse_config(text)` read a file (router.config.loader), then run every check here on
what decoded: routes name existing sources and functions, ports do not collide, handlers exist in the code,
concurrency adds up, destinations are whole, filters parse, and each source kind's own checks (the
`check(settings, config, where, problems)` of `router/sources/<kind>/`). They raise `ConfigError` with
*every* problem found, each prefixed by its path
(`functions.resize.memory_mb: expected an integer between 128 and 10240, got 'big'`).

This module sits beside the daemon, at the top: it may import every layer.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from router.config import Config, Destination, FunctionConfig, RouteConfig, SourceSettings, read_config
from router.config.loader import Loaded, decode_config
from router.config.sources import KINDS, kind_traits
from router.core.errors import ConfigError
from router.dispatch.filter_syntax import pattern_problems
from router.sources import kind_module

RUNTIMES_PYTHON = re.compile(r"^python3\.\d+$")
RUNTIMES_NODE = re.compile(r"^nodejs\d+\.x$")


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Load, interpolate, decode and check a config file. Raises ConfigError listing every problem."""
    return _checked(read_config(path, env))


def parse_config(text: str, *, base_dir: str | Path = ".", env: dict[str, str] | None = None) -> Config:
    return _checked(decode_config(text, base_dir=base_dir, env=env))


def _checked(loaded: Loaded) -> Config:
    problems = list(loaded.problems)
    if loaded.config is not None:
        check(loaded.config, problems, declared=loaded.declared)
    if problems:
        raise ConfigError(problems)
    assert loaded.config is not None
    return loaded.config


def check(config: Config, problems: list[str], declared: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Checks that span sections, and those a Struct cannot express. Appends to problems.

    `declared` names functions and sources that exist in the file but failed to decode: they already have
    their own problems, so routes naming them are not reported again.
    """
    for name, f in config.functions.items():
        check_function(config, name, f, problems)
    _check_concurrency(config, problems)
    _check_ports(config, problems)
    for name, s in config.sources.items():
        source_check = getattr(kind_module(s.kind_name()), "check", None)
        if source_check is not None:
            source_check(s, config, f"sources.{name}", problems)
    for i, r in enumerate(config.routes):
        where = f"routes[{i}]"
        if r.source not in config.sources and r.source not in declared:
            problems.append(
                f"{where}.source: no source named {r.source!r} (sources: {_names(config.sources)})"
            )
        for fn in r.functions:
            if fn not in config.functions and fn not in declared:
                problems.append(
                    f"{where}.function: no function named {fn!r} (functions: {_names(config.functions)})"
                )
        if r.source in config.sources:
            _check_route_for_kind(config.sources[r.source], r, where, problems)
        if r.filter is not None:
            for p in pattern_problems(r.filter, f"{where}.filter"):
                problems.append(p)
    for name, f in config.functions.items():
        for which, dest in (("on_failure", f.async_.on_failure), ("on_success", f.async_.on_success)):
            if dest is not None:
                _check_destination(config, dest, f"functions.{name}.async.{which}", problems)
    for i, r in enumerate(config.routes):
        if r.on_error is not None and r.on_error.destination is not None:
            _check_destination(config, r.on_error.destination, f"routes[{i}].on_error.destination", problems)


def _names(d: dict[str, Any]) -> str:
    return ", ".join(sorted(d)) or "none defined"


def _check_destination(config: Config, d: Destination, where: str, problems: list[str]) -> None:
    chosen = [k for k in ("directory", "function", "kafka") if getattr(d, k) is not None]
    if len(chosen) != 1:
        problems.append(
            f"{where}: give exactly one of directory, function, kafka (got {', '.join(chosen) or 'none'})"
        )
    if d.function is not None and d.function not in config.functions:
        problems.append(f"{where}.function: no function named {d.function!r}")


def check_function(config: Config, name: str, f: FunctionConfig, problems: list[str]) -> None:
    where = f"functions.{name}"
    if not (RUNTIMES_PYTHON.match(f.runtime) or RUNTIMES_NODE.match(f.runtime) or f.runtime == "provided"):
        problems.append(
            f"{where}.runtime: unknown runtime {f.runtime!r} (expected python3.X, nodejs20.x or provided)"
        )
    env_size = sum(len(k) + len(v) for k, v in f.environment.items())
    if env_size > 4096:
        problems.append(f"{where}.environment: {env_size} bytes, over Lambda's 4 KB limit")
    if f.reserved_concurrency is not None and f.provisioned_concurrency > f.reserved_concurrency:
        problems.append(
            f"{where}.provisioned_concurrency: {f.provisioned_concurrency} is more than "
            f"reserved_concurrency {f.reserved_concurrency}"
        )
    if not f.network and config.invoker.isolation_mode == "off":
        problems.append(f"{where}.network: false needs isolation, and invoker.isolation is off")
    code = config.path(f.code)
    if not code.exists():
        problems.append(f"{where}.code: {f.code!r} does not exist")
        return
    problem = handler_problem(f.runtime, f.handler, code)
    if problem:
        problems.append(f"{where}.handler: {problem}")


def handler_problem(runtime: str, handler: str, code: Path) -> str | None:
    """None when the handler's file is in the code (a folder or a .zip); else what is wrong."""
    if code.is_file():
        if not zipfile.is_zipfile(code):
            return f"code {str(code)!r} is neither a folder nor a ZIP file"
        with zipfile.ZipFile(code) as z:
            names = set(z.namelist())
    else:
        names = {str(p.relative_to(code)) for p in code.rglob("*")} if code.is_dir() else set()
    if runtime == "provided":
        return (
            None if "bootstrap" in names else "runtime 'provided' needs an executable 'bootstrap' in the code"
        )
    module, dot, func = handler.rpartition(".")
    if not dot or not module or not func:
        return f"{handler!r} is not of the form module.function"
    base = module.replace(".", "/")
    if RUNTIMES_PYTHON.match(runtime):
        candidates = [f"{base}.py", f"{base}/__init__.py"]
    elif RUNTIMES_NODE.match(runtime):
        candidates = [f"{base}{ext}" for ext in (".js", ".mjs", ".cjs")]
    else:
        return None
    if not any(c in names for c in candidates):
        return f"module {module!r} not found in the code (looked for {', '.join(candidates)})"
    return None


def _check_concurrency(config: Config, problems: list[str]) -> None:
    reserved = sum(f.reserved_concurrency or 0 for f in config.functions.values())
    limit = config.account.concurrency - config.account.unreserved_min
    if config.account.unreserved_min > config.account.concurrency:
        problems.append(
            f"account.unreserved_min: {config.account.unreserved_min} is more than account.concurrency "
            f"{config.account.concurrency}"
        )
    elif reserved > limit:
        problems.append(
            f"functions: reserved_concurrency adds up to {reserved}, more than account.concurrency - "
            f"account.unreserved_min = {limit}"
        )


def _check_ports(config: Config, problems: list[str]) -> None:
    seen: dict[tuple[str, int], str] = {}
    listeners = [("server", config.server.host, config.server.port)]
    for name, s in config.sources.items():
        port = getattr(s, "port", None)
        if isinstance(port, int):
            listeners.append((f"sources.{name}", getattr(s, "host", "127.0.0.1"), port))
    for where, host, port in listeners:
        if port == 0:
            continue  # 0 = pick a free port
        for (h, p), other in seen.items():
            if p == port and (h == host or "0.0.0.0" in (h, host)):
                problems.append(f"{where}.port: {port} is already used by {other}")
                break
        seen[(host, port)] = where


def _check_route_for_kind(settings: SourceSettings, r: RouteConfig, where: str, problems: list[str]) -> None:
    kind, traits = settings.kind_name(), settings.traits
    if r.http is not None and not traits.request_routed:
        problems.append(
            f"{where}.http: only routes from an http source take 'http' (source kind is {kind!r})"
        )
    if traits.request_routed and r.http is None:
        problems.append(f"{where}.http: routes from an {kind} source need http: {{method, path}}")
    streams = ", ".join(k for k in KINDS if kind_traits(k).stream)
    if r.batch is not None and not traits.stream:
        problems.append(f"{where}.batch: batching applies to stream sources ({streams}), not {kind!r}")
    if r.on_error is not None and not traits.stream:
        problems.append(
            f"{where}.on_error: applies to stream sources; {kind!r} invokes asynchronously, "
            "so set the function's async: {max_retries, on_failure}"
        )
