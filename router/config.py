"""The router's config: YAML in, strict msgspec Structs out, every problem reported with its path.

`load_config(path)` is what both `router serve` and `router validate` call: it reads the YAML with the safe
loader, interpolates `${VAR}` / `${VAR:-default}` from the environment, decodes each section into frozen
Structs, then runs the cross-checks (routes name existing sources and functions, ports do not collide,
handlers exist, per-kind checks of each source). It raises `ConfigError` with *every* problem found, each
prefixed by its path (`functions.resize.memory_mb: expected an integer between 128 and 10240, got 'big'`).

Source kinds own their config Struct (`router/sources/<kind>.py: Config`); this module only looks them up by
kind through `router.sources.config_type`, so it stays free of the heavy client libraries.
"""

from __future__ import annotations

import copy
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from router.errors import ConfigError

# ---------------------------------------------------------------------------------------------------------
# Structs

MemoryMB = Annotated[int, msgspec.Meta(ge=128, le=10240)]
TimeoutS = Annotated[int, msgspec.Meta(ge=1, le=900)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]

RUNTIMES_PYTHON = re.compile(r"^python3\.\d+$")
RUNTIMES_NODE = re.compile(r"^nodejs\d+\.x$")
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config Struct: immutable, keyword-only, unknown keys rejected."""


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: Port = 9000
    auth_token: str = ""
    max_body_mb: Annotated[int, msgspec.Meta(ge=1, le=100)] = (
        16  # request bodies (ZIP uploads) above are refused
    )


class AccountConfig(Strict):
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 1000
    unreserved_min: NonNegInt = 100
    region: str = "us-east-1"
    account_id: Annotated[str, msgspec.Meta(pattern=r"^\d{12}$")] = "123456789012"


class BillingConfig(Strict):
    granularity_ms: Annotated[int, msgspec.Meta(ge=1, le=60000)] = 1
    gb_second_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0000166667
    request_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0000002


class Destination(Strict):
    """Where given-up (or succeeded) events go: a directory of JSON records, a function, or a Kafka topic."""

    directory: str | None = None
    function: str | None = None
    kafka: KafkaDestination | None = None


class KafkaDestination(Strict):
    brokers: list[str]
    topic: str


class AsyncConfig(Strict):
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=2)] = 2
    max_event_age_s: Annotated[int, msgspec.Meta(ge=60, le=21600)] = 21600
    on_failure: Destination | None = None
    on_success: Destination | None = None


class FunctionConfig(Strict):
    runtime: str
    handler: str
    code: str
    memory_mb: MemoryMB = 128
    timeout_s: TimeoutS = 3
    reserved_concurrency: NonNegInt | None = None
    provisioned_concurrency: NonNegInt = 0
    idle_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 600
    environment: dict[str, str] = {}
    event_format: Literal["aws", "cloudevents"] = "aws"
    async_: AsyncConfig = msgspec.field(default_factory=AsyncConfig, name="async")
    description: str = ""
    python_zygote: bool | None = None  # None: invoker.python_zygote (docs/invoker.md)


class BatchConfig(Strict):
    size: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 100
    window_s: Annotated[float, msgspec.Meta(ge=0, le=300)] | None = None  # None: the source kind's default
    max_bytes: Annotated[int, msgspec.Meta(ge=1, le=6 * 1024 * 1024)] = 6 * 1024 * 1024
    parallelization_factor: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1


class OnErrorConfig(Strict):
    max_retries: Annotated[int, msgspec.Meta(ge=-1, le=10000)] = -1
    max_record_age_s: Annotated[int, msgspec.Meta(ge=-1, le=604800)] = -1
    bisect: bool = False
    report_batch_item_failures: bool = False
    destination: Destination | None = None


class HttpRouteConfig(Strict):
    method: str = "ANY"
    path: str = "$default"


class RouteConfig(Strict):
    source: str
    function: str | list[str]
    filter: dict[str, Any] | list[dict[str, Any]] | None = None
    batch: BatchConfig | None = None
    on_error: OnErrorConfig | None = None
    http: HttpRouteConfig | None = None
    event_format: Literal["aws", "cloudevents"] | None = None  # overrides the function's
    events: list[str] | None = None  # e.g. ["ObjectCreated:*", "ObjectRemoved:*"] for s3
    enabled: bool = True

    @property
    def functions(self) -> list[str]:
        return [self.function] if isinstance(self.function, str) else list(self.function)


class InspectConfig(Strict):
    enabled: bool = True
    ring_size: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 100
    max_payload_kb: Annotated[int, msgspec.Meta(ge=1, le=6144)] = 256  # longer events/results: truncated


class InvokerConfig(Strict):
    python_zygote: bool = True  # fork Python instances from a pre-started interpreter (docs/invoker.md)


class LimitsConfig(Strict):
    max_loop_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    drain_grace_s: Annotated[float, msgspec.Meta(ge=0, le=900)] = 10


class Config(Strict):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    state_dir: str = ".router"
    account: AccountConfig = msgspec.field(default_factory=AccountConfig)
    billing: BillingConfig = msgspec.field(default_factory=BillingConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    inspect: InspectConfig = msgspec.field(default_factory=InspectConfig)
    invoker: InvokerConfig = msgspec.field(default_factory=InvokerConfig)
    functions: dict[str, FunctionConfig] = {}
    sources: dict[str, Any] = {}  # name -> the kind's Config Struct
    routes: list[RouteConfig] = []
    base_dir: str = "."  # folder of the config file; relative paths in it are resolved against it

    def path(self, value: str) -> Path:
        """Resolve a path from the config (code, directories) against the config file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def state_path(self) -> Path:
        return self.path(self.state_dir)


# ---------------------------------------------------------------------------------------------------------
# Interpolation

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


# ---------------------------------------------------------------------------------------------------------
# Decoding with errors that name the culprit

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
    if isinstance(t, msgspec.inspect.StrType) and t.pattern:
        return f"expected a string matching {t.pattern}"
    if isinstance(t, msgspec.inspect.LiteralType):
        return "expected one of " + ", ".join(repr(v) for v in t.values)
    if isinstance(t, msgspec.inspect.UnionType):
        parts = [
            d for d in (_describe(x) for x in t.types if not isinstance(x, msgspec.inspect.NoneType)) if d
        ]
        return parts[0] if len(parts) == 1 else None
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


def convert(raw: Any, typ: type, path: str, problems: list[str]) -> Any:
    """msgspec.convert with errors in our format (`path.to.key: what was expected, got X`), all of them.

    msgspec stops at the first error; to list every problem of one Struct, the offending key is dropped from
    a copy of the input and the conversion retried, until it succeeds or the problem cannot be dropped.
    """
    raw = copy.deepcopy(raw)
    failed = False
    for _ in range(100):
        try:
            result: Any = msgspec.convert(raw, type=typ, strict=False)
        except msgspec.ValidationError as e:
            failed = True
            steps = _report(e, raw, typ, path, problems)
            if not steps or not _drop(raw, steps):
                return None
            continue
        return None if failed else result
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


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Load, interpolate, decode and check a config file. Raises ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read config: {e.strerror}"]) from None
    return parse_config(text, base_dir=path.parent, env=env)


def parse_config(text: str, *, base_dir: str | Path = ".", env: dict[str, str] | None = None) -> Config:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([f"<yaml> {where}: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"<root>: expected a mapping of sections, got {type(raw).__name__}"])
    problems: list[str] = []
    raw = interpolate(raw, dict(os.environ) if env is None else env, problems)
    if problems:  # values built from a missing variable would only add noise
        raise ConfigError(problems)
    config = _decode(raw, str(base_dir), problems)
    if config is not None:
        declared = set(_mapping(raw, "functions", [])) | set(_mapping(raw, "sources", []))
        check(config, problems, declared={str(n) for n in declared})
    if problems:
        raise ConfigError(problems)
    assert config is not None
    return config


def _decode(raw: dict[str, Any], base_dir: str, problems: list[str]) -> Config | None:
    from router.sources import config_type

    top = {k: v for k, v in raw.items() if k not in ("functions", "sources", "routes")}
    config = convert(top, Config, "", problems)

    functions: dict[str, FunctionConfig] = {}
    for name, fraw in _mapping(raw, "functions", problems).items():
        if not FUNCTION_NAME.match(str(name)):
            problems.append(f"functions.{name}: invalid function name (1-64 of letters, digits, '-' and '_')")
        if not isinstance(fraw, dict):
            problems.append(f"functions.{name}: expected a mapping, got {fraw!r}")
            continue
        f = convert(fraw, FunctionConfig, f"functions.{name}", problems)
        if f is not None:
            functions[str(name)] = f

    sources: dict[str, Any] = {}
    for name, sraw in _mapping(raw, "sources", problems).items():
        if not isinstance(sraw, dict):
            problems.append(f"sources.{name}: expected a mapping, got {sraw!r}")
            continue
        kind = sraw.get("kind")
        try:
            typ = config_type(kind)
        except KeyError as e:
            problems.append(f"sources.{name}.kind: {e.args[0]}")
            continue
        s = convert(sraw, typ, f"sources.{name}", problems)
        if s is not None:
            sources[str(name)] = s

    routes: list[RouteConfig] = []
    rraw = raw.get("routes") or []
    if not isinstance(rraw, list):
        problems.append(f"routes: expected a list of routes, got {rraw!r}")
        rraw = []
    for i, r in enumerate(rraw):
        route = convert(r, RouteConfig, f"routes[{i}]", problems)
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


# ---------------------------------------------------------------------------------------------------------
# Cross-checks


def check(config: Config, problems: list[str], declared: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Checks that span sections, and those a Struct cannot express. Appends to problems.

    `declared` names functions and sources that exist in the file but failed to decode: they already have
    their own problems, so routes naming them are not reported again.
    """
    from router.sources import source_kind

    for name, f in config.functions.items():
        check_function(config, name, f, problems)
    _check_concurrency(config, problems)
    _check_ports(config, problems)
    for name, s in config.sources.items():
        source_check: Callable[[Config, str, list[str]], None] | None = getattr(s, "check", None)
        if source_check is not None:
            source_check(config, f"sources.{name}", problems)
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
        kind = source_kind(config.sources[r.source]) if r.source in config.sources else None
        if kind is not None:
            _check_route_for_kind(kind, r, where, problems)
        if r.filter is not None:
            from router.dispatch.filters import pattern_problems

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


def _check_route_for_kind(kind: str, r: RouteConfig, where: str, problems: list[str]) -> None:
    if r.http is not None and kind != "http":
        problems.append(
            f"{where}.http: only routes from an http source take 'http' (source kind is {kind!r})"
        )
    if kind == "http" and r.http is None:
        problems.append(f"{where}.http: routes from an http source need http: {{method, path}}")
    if r.batch is not None and kind not in ("kafka", "kinesis", "dynamodb"):
        problems.append(
            f"{where}.batch: batching applies to stream sources (kafka, kinesis, dynamodb), not {kind!r}"
        )
    if r.on_error is not None and kind not in ("kafka", "kinesis", "dynamodb"):
        problems.append(
            f"{where}.on_error: applies to stream sources; {kind!r} invokes asynchronously, "
            "so set the function's async: {max_retries, on_failure}"
        )
