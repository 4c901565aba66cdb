"""Function definitions: what the dispatcher runs, from the config file or deployed through the API.

A `FunctionDefinition` is a function's config plus the `FunctionSpec` the invoker launches (the code
resolved to an unpacked folder), where it came from (`origin` "config" or "api"), and Lambda's code metadata
(CodeSha256 as base64 of the SHA-256, CodeSize, LastModified) for GetFunction/ListFunctions.

`revision` identifies what an instance runs: it changes when the code or a setting the instance was
launched with (runtime, handler, memory, timeout, environment, layers) changes, and only then. Settings the
dispatcher applies itself (reserved and provisioned concurrency, idle timeout, async retries and
destinations) change without a new revision, so PutFunctionConcurrency does not recycle warm instances,
as on Lambda.

Published versions and aliases ride on the function's `$LATEST` definition: `versions` maps a version
number to its own definition (an immutable snapshot: its spec has `version` set, so it gets its own instance
pool), `aliases` maps an alias name to its `AliasRouting` (the version it points to, the weights of an
additional version, its own asynchronous settings). `resolve(defn, qualifier, draw)` picks what a call with
that qualifier runs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from router.config import AsyncConfig, Config, FunctionConfig
from router.core import timefmt, writes
from router.core.errors import ConfigError, RouterError
from router.invoker.types import FunctionSpec, instance_root

Origin = Literal["config", "api"]
LATEST = "$LATEST"


class AliasRouting(msgspec.Struct, frozen=True, kw_only=True):
    """An alias as the dispatcher needs it: where its calls go, and its asynchronous settings."""

    version: str  # the version it points to ($LATEST or a number)
    weights: dict[str, float] = {}  # additional version -> share of calls (0..1), Lambda's RoutingConfig
    async_: AsyncConfig | None = None  # its event invoke config; None: Lambda's defaults

    def pick(self, draw: float) -> str:
        """The version a call runs, given a uniform draw in [0, 1)."""
        edge = 0.0
        for version, weight in sorted(self.weights.items()):
            edge += weight
            if draw < edge:
                return version
        return self.version


class FunctionDefinition(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    config: FunctionConfig
    spec: FunctionSpec
    origin: Origin = "config"
    revision: str = "1"
    code_sha256: str = ""  # base64 of the SHA-256 of the ZIP (of the folder's files, for a folder)
    code_size: int = 0  # bytes of the ZIP (of the folder's files)
    last_modified: str = ""  # Lambda's format: 2019-09-18T14:57:31.000+0000
    versions: dict[str, FunctionDefinition] = {}  # on $LATEST only: the published versions
    aliases: dict[str, AliasRouting] = {}  # on $LATEST only

    @property
    def version(self) -> str:
        return self.spec.version


def resolve(defn: FunctionDefinition, qualifier: str | None, draw: float) -> FunctionDefinition | None:
    """What a call of `defn` (a $LATEST definition) with `qualifier` runs: itself, one of its versions, or
    the version an alias picks for this draw. None: no such version or alias."""
    if qualifier is None or qualifier == LATEST:
        return defn
    alias = defn.aliases.get(qualifier)
    if alias is not None:
        qualifier = alias.pick(draw)
        if qualifier == LATEST:
            return defn
    return defn.versions.get(qualifier)


def pool_key(name: str, version: str) -> str:
    """The dispatcher's key of a version's instance pool: `name` for $LATEST, `name:version` else."""
    return name if version == LATEST else f"{name}:{version}"


def call_fields(
    target: FunctionDefinition, qualifier: str | None, arn: Callable[[str, str | None], str]
) -> dict[str, Any]:
    """The Call fields of a qualified call: the version that runs, its qualifier, the ARN it was called by."""
    if qualifier is None or qualifier == LATEST:
        return {}
    return {"version": target.version, "qualifier": qualifier, "function_arn": arn(target.name, qualifier)}


def async_settings(defn: FunctionDefinition, qualifier: str | None) -> FunctionDefinition | None:
    """The definition whose `config.async_` governs an asynchronous event sent with `qualifier`: the
    version's own, or (for an alias) the alias's settings on the version it points to."""
    alias = defn.aliases.get(qualifier) if qualifier else None
    if alias is None:
        return resolve(defn, qualifier, 0.0)
    target = resolve(defn, alias.version, 0.0)
    if target is None:
        return None
    settings = alias.async_ or AsyncConfig()
    return msgspec.structs.replace(target, config=msgspec.structs.replace(target.config, async_=settings))


def code_digest(code: Path) -> tuple[str, int]:
    """(base64 SHA-256, size in bytes) of a ZIP file, or of a folder's files taken in path order."""
    digest = hashlib.sha256()
    if code.is_file():
        size = 0
        with code.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return base64.b64encode(digest.digest()).decode(), size
    size = 0
    for path in sorted(p for p in code.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        data = path.read_bytes()
        digest.update(str(path.relative_to(code)).encode() + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)
        size += len(data)
    return base64.b64encode(digest.digest()).decode(), size


def revision_of(config: FunctionConfig, code_sha256: str, opt_dir: Path | None = None) -> str:
    """Changes exactly when what an instance runs changes (code, layers and launch settings)."""
    launch = msgspec.json.encode(
        [
            config.runtime,
            config.handler,
            config.memory_mb,
            config.timeout_s,
            sorted(config.environment.items()),
            *([str(opt_dir)] if opt_dir is not None else []),
        ]
    )
    return hashlib.sha256(code_sha256.encode() + b"\0" + launch).hexdigest()[:16]


def make_definition(
    name: str,
    config: FunctionConfig,
    code: Path,
    *,
    state_dir: Path,
    origin: Origin = "config",
    region: str = "us-east-1",
    account_id: str = "123456789012",
    last_modified: float | None = None,
    runtime_env: Mapping[str, str] | None = None,
    layers: Sequence[Path] = (),
    version: str = LATEST,
    opt_dir: Path | None = None,
) -> FunctionDefinition:
    """Resolve `code` (a folder or a ZIP, unpacked into state_dir by the invoker) and `layers` (folders or
    ZIPs, merged in order into the function's /opt folder; or `opt_dir`, merged before) into a definition
    of `version`. `runtime_env` is added to the function's environment (the router's own variables,
    `journal_env`)."""
    from router.invoker.code import prepare_code, prepare_layers

    sha, size = code_digest(code)
    code_dir = Path(prepare_code(code, instance_root(state_dir)))
    if layers:
        opt_dir = prepare_layers(list(layers), instance_root(state_dir))
    revision = revision_of(config, sha, opt_dir)
    spec = FunctionSpec(
        name=name,
        runtime=config.runtime,
        handler=config.handler,
        code_dir=code_dir,
        memory_mb=config.memory_mb,
        timeout_s=config.timeout_s,
        environment={**config.environment, **(runtime_env or {})},
        region=region,
        account_id=account_id,
        revision=revision,
        python_zygote=config.python_zygote,
        opt_dir=opt_dir,
        version=version,
        cpu=config.cpu,
        network=config.network,
    )
    if last_modified is None:
        last_modified = code.stat().st_mtime
    return FunctionDefinition(
        name=name,
        config=config,
        spec=spec,
        origin=origin,
        revision=revision,
        code_sha256=sha,
        code_size=size,
        last_modified=timefmt.lambda_timestamp(last_modified),
    )


def remote_definition(name: str, config: FunctionConfig, region: str, account_id: str) -> FunctionDefinition:
    """A function whose calls go over the Lambda Invoke API (`target:`): no code here; its revision changes
    with the target and the settings a call carries."""
    assert config.target is not None
    target = config.target.lambda_
    revision = hashlib.sha256(msgspec.json.encode([target, config.timeout_s, config.memory_mb])).hexdigest()
    spec = FunctionSpec(
        name=name,
        runtime="remote",
        handler=target.function_name,
        code_dir=Path(),
        memory_mb=config.memory_mb,
        timeout_s=config.timeout_s,
        region=region,
        account_id=account_id,
        revision=revision[:16],
        remote=target,
    )
    return FunctionDefinition(
        name=name,
        config=config,
        spec=spec,
        revision=revision[:16],
        last_modified=timefmt.lambda_timestamp(time.time()),
    )


def journal_folder(state_dir: Path) -> Path:
    return Path(state_dir) / "writes"


def journal_env(config: Config, state_dir: Path) -> dict[str, str]:
    """What tells a function's runtime to note its writes into the router's own sources (router/core/
    writes.py): the journal folder, the watched folders, the AWS endpoints the sources read. Empty when no
    source has a folder or an endpoint."""
    dirs, endpoints = set(), set()
    for settings in config.sources.values():
        directory = getattr(settings, "directory", None)
        if directory:
            dirs.add(os.path.realpath(config.path(directory)))
        endpoint = getattr(settings, "endpoint", None)
        if endpoint:
            endpoints.add(urlsplit(endpoint).netloc.lower())  # the Host header a client sends
    if not dirs and not endpoints:
        return {}
    return {
        writes.JOURNAL_ENV: str(journal_folder(state_dir)),
        writes.WATCHED_DIRS_ENV: os.pathsep.join(sorted(dirs)),
        writes.ENDPOINTS_ENV: ",".join(sorted(endpoints)),
    }


LayerResolver = Callable[[str], Path]  # a layer version ARN -> its ZIP


def config_layers(config: Config, fconfig: FunctionConfig, resolve_arn: LayerResolver | None) -> list[Path]:
    """A config function's `layers:` as paths: folders and ZIPs relative to the config, ARNs resolved."""
    out = []
    for layer in fconfig.layers:
        if not layer.startswith("arn:"):
            out.append(config.path(layer))
        elif resolve_arn is None:
            raise ValueError(f"layer {layer}: layer ARNs are resolved by the running router only")
        else:
            out.append(resolve_arn(layer))
    return out


def definitions_from_config(
    config: Config, state_dir: Path | None = None, *, layers: LayerResolver | None = None
) -> dict[str, FunctionDefinition]:
    """Every function of the config file as a definition; ConfigError names each one whose code fails.
    `layers` resolves the layer version ARNs functions name (the router's published layers)."""
    state = Path(state_dir) if state_dir is not None else config.state_path
    runtime_env = journal_env(config, state)
    defs: dict[str, FunctionDefinition] = {}
    problems: list[str] = []
    for name, fconfig in config.functions.items():
        if fconfig.target is not None:
            defs[name] = remote_definition(name, fconfig, config.account.region, config.account.account_id)
            continue
        try:
            defs[name] = make_definition(
                name,
                fconfig,
                config.path(fconfig.code),
                state_dir=state,
                region=config.account.region,
                account_id=config.account.account_id,
                runtime_env=runtime_env,
                layers=config_layers(config, fconfig, layers),
            )
        except (OSError, ValueError, RouterError) as e:  # CodeError/ArchiveError are RouterErrors
            problems.append(f"functions.{name}.code: cannot prepare {fconfig.code!r}: {e}")
    if problems:
        raise ConfigError(problems)
    return defs
