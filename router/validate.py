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

from router.config import (
    Config,
    Destination,
    FunctionConfig,
    RouteConfig,
    SourceSettings,
    read_config,
    split_qualifier,
)
from router.config.loader import Loaded, decode_config
from router.config.sources import KINDS, kind_traits
from router.core.arn import parse_layer_version_arn
from router.core.errors import ConfigError
from router.dispatch.faults import fault_rates_problem
from router.dispatch.filter_syntax import pattern_problems
from router.sources import kind_module

RUNTIMES_PYTHON = re.compile(r"^python3\.[0-9]+\Z")
RUNTIMES_NODE = re.compile(r"^nodejs[0-9]+\.x\Z")


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
    _check_token(config.server.auth_token, problems)
    _check_concurrency(config, problems)
    _check_cluster(config, problems)
    _check_ports(config, problems)
    for name, s in config.sources.items():
        source_check = getattr(kind_module(s.kind_name()), "check", None)
        if source_check is not None:
            try:
                source_check(s, config, f"sources.{name}", problems)
            except OSError as e:  # a path that cannot even be looked at (name too long, no permission)
                problems.append(f"sources.{name}: {_os_problem(e)}")
    for i, r in enumerate(config.routes):
        where = f"routes[{i}]"
        if r.source not in config.sources and r.source not in declared:
            problems.append(
                f"{where}.source: no source named {r.source!r} (sources: {_names(config.sources)})"
            )
        for fn in (split_qualifier(f)[0] for f in r.functions):
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
        if f.async_.dead_letter is not None:
            _check_dead_letter(config, f.async_.dead_letter, f"functions.{name}.async.dead_letter", problems)
    for i, r in enumerate(config.routes):
        if r.on_error is not None and r.on_error.destination is not None:
            where = f"routes[{i}].on_error.destination"
            _check_destination(config, r.on_error.destination, where, problems, kinds=STREAM_DESTINATIONS)


def _names(d: dict[str, Any]) -> str:
    return ", ".join(sorted(d)) or "none defined"


ASYNC_DESTINATIONS = ("directory", "function", "kafka", "sqs", "sns", "eventbridge")
STREAM_DESTINATIONS = ("directory", "function", "kafka")  # stream failure sinks (sources/stream/failure.py)
AWS_ARNS = {
    "sqs": re.compile(r"^(arn:aws[a-zA-Z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[\w.-]+|https?://\S+)\Z"),
    "sns": re.compile(r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:[0-9]{12}:[\w.-]+\Z"),
    "eventbridge": re.compile(
        r"^(arn:aws[a-zA-Z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[\w./-]+|[\w./-]+)\Z"
    ),
}


def _check_destination(
    config: Config,
    d: Destination,
    where: str,
    problems: list[str],
    kinds: tuple[str, ...] = ASYNC_DESTINATIONS,
) -> None:
    chosen = [k for k in ASYNC_DESTINATIONS if getattr(d, k) is not None]
    if len(chosen) != 1 or chosen[0] not in kinds:
        got = ", ".join(chosen) or "none"
        problems.append(f"{where}: give exactly one of {', '.join(kinds)} (got {got})")
    if d.function is not None and split_qualifier(d.function)[0] not in config.functions:
        problems.append(f"{where}.function: no function named {d.function!r}")
    for kind, pattern in AWS_ARNS.items():
        value = getattr(d, kind)
        if value is not None and not pattern.match(value):
            problems.append(f"{where}.{kind}: {value!r} is not an {kind} ARN")


def _check_dead_letter(config: Config, d: Destination, where: str, problems: list[str]) -> None:
    _check_destination(config, d, where, problems, kinds=("sqs", "sns"))


def check_function(config: Config, name: str, f: FunctionConfig, problems: list[str]) -> None:
    where = f"functions.{name}"
    if f.target is not None:
        _check_target(f, where, problems)
        return
    missing = [k for k in ("runtime", "handler", "code") if not getattr(f, k)]
    for key in missing:
        problems.append(f"{where}: missing required key {key!r} (or a target: {{lambda: ...}})")
    if missing:
        return
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
    _check_layers(config, f, where, problems)
    if f.faults is not None:
        problem = fault_rates_problem(f.faults)
        if problem:
            problems.append(f"{where}.faults: {problem}")
    if not f.network and config.invoker.isolation_mode == "off":
        problems.append(f"{where}.network: false needs isolation, and invoker.isolation is off")
    code = config.path(f.code)
    try:
        if not code.exists():
            problems.append(f"{where}.code: {f.code!r} does not exist")
            return
        problem = handler_problem(f.runtime, f.handler, code)
    except OSError as e:
        problems.append(f"{where}.code: {_os_problem(e)}")
        return
    if problem:
        problems.append(f"{where}.handler: {problem}")


MAX_LAYERS = 5  # Lambda's limit per function
LOCAL_ONLY = ("runtime", "handler", "code", "layers", "provisioned_concurrency", "cpu")


def _check_target(f: FunctionConfig, where: str, problems: list[str]) -> None:
    """A function with a target runs elsewhere: what only local instances use would be silently ignored."""
    default = FunctionConfig()
    for key in LOCAL_ONLY:
        if getattr(f, key) != getattr(default, key):
            problems.append(f"{where}.{key}: a function with a target runs elsewhere; remove {key!r}")
    if not f.target.lambda_.function_name.strip():  # type: ignore[union-attr]
        problems.append(f"{where}.target.lambda.function_name: empty")


def _check_cluster(config: Config, problems: list[str]) -> None:
    cluster = config.cluster
    if cluster is None:
        return
    if not cluster.kafka.brokers:
        problems.append("cluster.kafka.brokers: give at least one broker (host:port)")
    if cluster.node_id and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$", cluster.node_id):
        problems.append(f"cluster.node_id: {cluster.node_id!r}: letters, digits and _.:- only, at most 128")
    leases = cluster.leases
    renew = leases.renew_interval_s
    for key in ("lease_timeout_s", "node_timeout_s"):
        if getattr(leases, key) <= renew * 2:
            problems.append(
                f"cluster.leases.{key}: {getattr(leases, key):g} must be more than twice renew_s ({renew:g})"
            )


def _check_layers(config: Config, f: FunctionConfig, where: str, problems: list[str]) -> None:
    if len(f.layers) > MAX_LAYERS:
        problems.append(f"{where}.layers: {len(f.layers)} layers, Lambda's limit is {MAX_LAYERS}")
    for i, layer in enumerate(f.layers):
        if layer.startswith("arn:"):
            if parse_layer_version_arn(layer) is None:
                problems.append(f"{where}.layers[{i}]: {layer!r} is not a layer version ARN")
        elif not config.path(layer).exists():
            problems.append(f"{where}.layers[{i}]: {layer!r} does not exist (a folder, a ZIP or an ARN)")


def _os_problem(e: OSError) -> str:
    name = str(e.filename or "")
    return f"cannot check {name[:100]!r}{'...' if len(name) > 100 else ''}: {e.strerror or e}"


def handler_problem(runtime: str, handler: str, code: Path) -> str | None:
    """None when the handler's file is in the code (a folder or a .zip); else what is wrong.

    A folder is probed for the few files the handler could be in, never listed: `code: /` must not walk
    the whole file system."""
    names: set[str] | None = None  # a ZIP's entries; None: probe the folder
    if code.is_file():
        if not zipfile.is_zipfile(code):
            return f"code {str(code)!r} is neither a folder nor a ZIP file"
        try:
            with zipfile.ZipFile(code) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, ValueError, EOFError) as e:
            return f"code {str(code)!r} is not a readable ZIP file ({e})"
    elif not code.is_dir():
        names = set()

    def present(rel: str) -> bool:
        if names is not None:
            return rel in names
        return not rel.startswith("/") and ".." not in rel.split("/") and (code / rel).exists()

    if runtime == "provided":
        return (
            None if present("bootstrap") else "runtime 'provided' needs an executable 'bootstrap' in the code"
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
    if not any(present(c) for c in candidates):
        return f"module {module!r} not found in the code (looked for {', '.join(candidates)})"
    return None


def _check_token(token: str, problems: list[str]) -> None:
    """A token a client can present: not blank (it would count as set, yet nothing can match it), and
    without surrounding whitespace (Authorization header values are trimmed)."""
    if token and not token.strip():
        problems.append("server.auth_token: blank (only whitespace) is not a token; leave it empty for none")
    elif token != token.strip():
        problems.append("server.auth_token: leading or trailing whitespace, which no client can send")


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
    batched = ", ".join(k for k in KINDS if kind_traits(k).stream or kind_traits(k).batched)
    if r.batch is not None and not (traits.stream or traits.batched):
        problems.append(f"{where}.batch: batching applies to {batched} sources, not {kind!r}")
    windowed = ", ".join(k for k in KINDS if kind_traits(k).tumbling_windows)
    if r.batch is not None and r.batch.tumbling_window_s and not traits.tumbling_windows:
        problems.append(
            f"{where}.batch.tumbling_window_s: tumbling windows apply to {windowed}, not {kind!r}"
        )
    if r.on_error is not None and not (traits.stream or traits.batched):
        problems.append(
            f"{where}.on_error: applies to {batched} sources; {kind!r} invokes asynchronously, "
            "so set the function's async: {max_retries, on_failure}"
        )
