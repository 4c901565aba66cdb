"""Function definitions: what the dispatcher runs, from the config file or deployed through the API.

A `FunctionDefinition` is a function's config plus the `FunctionSpec` the invoker launches (the code
resolved to an unpacked folder), where it came from (`origin` "config" or "api"), and Lambda's code metadata
(CodeSha256 as base64 of the SHA-256, CodeSize, LastModified) for GetFunction/ListFunctions.

`revision` identifies what an instance runs: it changes when the code or a setting the instance was
launched with (runtime, handler, memory, timeout, environment) changes, and only then. Settings the
dispatcher applies itself (reserved and provisioned concurrency, idle timeout, async retries and
destinations) change without a new revision, so PutFunctionConcurrency does not recycle warm instances,
as on Lambda.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Literal

import msgspec

from router.config import Config, FunctionConfig
from router.core.errors import ConfigError, RouterError
from router.invoker.types import FunctionSpec, instance_root

Origin = Literal["config", "api"]


class FunctionDefinition(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    config: FunctionConfig
    spec: FunctionSpec
    origin: Origin = "config"
    revision: str = "1"
    code_sha256: str = ""  # base64 of the SHA-256 of the ZIP (of the folder's files, for a folder)
    code_size: int = 0  # bytes of the ZIP (of the folder's files)
    last_modified: str = ""  # Lambda's format: 2019-09-18T14:57:31.000+0000


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


def revision_of(config: FunctionConfig, code_sha256: str) -> str:
    """Changes exactly when what an instance runs changes (code and launch settings)."""
    launch = msgspec.json.encode(
        [
            config.runtime,
            config.handler,
            config.memory_mb,
            config.timeout_s,
            sorted(config.environment.items()),
        ]
    )
    return hashlib.sha256(code_sha256.encode() + b"\0" + launch).hexdigest()[:16]


def lambda_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}+0000"


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
) -> FunctionDefinition:
    """Resolve `code` (a folder or a ZIP, unpacked into state_dir by the invoker) into a definition."""
    from router.invoker.code import prepare_code

    sha, size = code_digest(code)
    code_dir = Path(prepare_code(code, instance_root(state_dir)))
    revision = revision_of(config, sha)
    spec = FunctionSpec(
        name=name,
        runtime=config.runtime,
        handler=config.handler,
        code_dir=code_dir,
        memory_mb=config.memory_mb,
        timeout_s=config.timeout_s,
        environment=dict(config.environment),
        region=region,
        account_id=account_id,
        revision=revision,
        python_zygote=config.python_zygote,
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
        last_modified=lambda_time(last_modified),
    )


def definitions_from_config(config: Config, state_dir: Path | None = None) -> dict[str, FunctionDefinition]:
    """Every function of the config file as a definition; ConfigError names each one whose code fails."""
    state = Path(state_dir) if state_dir is not None else config.state_path
    defs: dict[str, FunctionDefinition] = {}
    problems: list[str] = []
    for name, fconfig in config.functions.items():
        try:
            defs[name] = make_definition(
                name,
                fconfig,
                config.path(fconfig.code),
                state_dir=state,
                region=config.account.region,
                account_id=config.account.account_id,
            )
        except (OSError, ValueError, RouterError) as e:  # CodeError/ArchiveError are RouterErrors
            problems.append(f"functions.{name}.code: cannot prepare {fconfig.code!r}: {e}")
    if problems:
        raise ConfigError(problems)
    return defs
