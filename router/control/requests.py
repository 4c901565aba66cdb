"""The request bodies of the function-management API, and the checks Lambda applies to their values.

Structs mirror botocore's Lambda model (member names via rename="pascal": `zip_file` is `ZipFile`); members
the router does not implement (VpcConfig, TracingConfig, KMSKeyArn, ...) are accepted and ignored so that
deployment tools sending them still work. `decode(body, type)` maps a body that is not JSON to
InvalidRequestContentException and a wrongly typed member to InvalidParameterValueException.
`check_settings(...)` enforces Lambda's limits (memory 128-10240 MB, timeout 1-900 s, 4 KB of environment,
supported runtimes, variable names), each problem named in the message. `read_body(request)` is every
control-plane body but Invoke's: at most `server.max_body_mb`, within `server.body_timeout_s`, its gzip or
deflate Content-Encoding decoded under the same cap (router.edge.bodies; a refusal raises BodyRefused,
which error_middleware answers).
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec
from aiohttp import web

from router.control.errors import MAX_BODY_KEY, ApiError, invalid_json, invalid_parameter
from router.control.plane import PLANE_KEY
from router.core import lambda_env
from router.core.errors import REQUEST_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE
from router.edge import bodies

T = TypeVar("T")

RUNTIMES = re.compile(r"^(python3\.[0-9]+|nodejs[0-9]+\.x|provided|provided\.al2|provided\.al2023)\Z")
ENV_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]+\Z")
HANDLER = re.compile(r"^\S{1,128}\Z")
ARCHITECTURES = {"x86_64", "arm64"}
# Content types an SDK, the AWS CLI or a JSON client sends; anything else (multipart, XML, HTML, images)
# is refused with 415. x-www-form-urlencoded is what `curl -d` and urllib send by default: the body is still
# parsed as JSON.
JSON_TYPES = re.compile(
    r"^(application/(json|[\w.+-]+\+json|x-amz-json-1\.[01]|octet-stream|x-www-form-urlencoded)"
    r"|binary/octet-stream|text/plain)\Z"
)


class Base(msgspec.Struct, kw_only=True, rename="pascal"):
    pass


class CodeIn(Base):
    zip_file: bytes | None = None  # base64 in the JSON; msgspec decodes it
    s3_bucket: str | None = None
    s3_key: str | None = None
    s3_object_version: str | None = None
    image_uri: str | None = None


class DeadLetterConfigIn(Base):
    target_arn: str | None = None  # "" (or absent) removes it


class EnvironmentIn(Base):
    variables: dict[str, str] = {}


class CreateFunctionIn(Base):
    function_name: str
    code: CodeIn
    role: str = ""
    runtime: str | None = None
    handler: str | None = None
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: EnvironmentIn | None = None
    package_type: str = "Zip"
    architectures: list[str] = msgspec.field(default_factory=lambda: ["x86_64"])
    publish: bool = False
    tags: dict[str, str] = {}
    layers: list[str] = []
    dead_letter_config: DeadLetterConfigIn | None = None


class UpdateCodeIn(CodeIn):
    dry_run: bool = False
    publish: bool = False
    revision_id: str | None = None
    architectures: list[str] | None = None


class UpdateConfigurationIn(Base):
    role: str | None = None
    runtime: str | None = None
    handler: str | None = None
    description: str | None = None
    timeout: int | None = None
    memory_size: int | None = None
    environment: EnvironmentIn | None = None
    revision_id: str | None = None
    layers: list[str] | None = None
    dead_letter_config: DeadLetterConfigIn | None = None


class ConcurrencyIn(Base):
    reserved_concurrent_executions: int


def check_content_type(raw: str | None) -> None:
    """415 for a body whose Content-Type (`raw`) announces something other than JSON (or bytes)."""
    if raw and not JSON_TYPES.match(raw.split(";", 1)[0].strip().lower()):
        raise ApiError(
            415, UNSUPPORTED_MEDIA_TYPE, f"The content type of the request body is not JSON: {raw}"
        )


async def read_body(request: web.Request) -> bytes:
    max_body = request.app[MAX_BODY_KEY]
    timeout_s = request.app[PLANE_KEY].config.server.body_timeout_s
    try:
        return await bodies.read_body(request, limit=max_body, timeout_s=timeout_s)
    except bodies.BodyRefused as e:
        if e.status != 413:
            raise
        raise ApiError(
            413, REQUEST_TOO_LARGE, f"Request must be smaller than {max_body} bytes (server.max_body_mb)"
        ) from None


def decode(body: bytes, typ: type[T]) -> T:
    try:
        return msgspec.json.decode(body or b"{}", type=typ)
    except msgspec.ValidationError as e:
        raise invalid_parameter(f"Invalid request: {e}") from None
    except (msgspec.DecodeError, RecursionError):
        raise invalid_json() from None


def check_settings(
    *,
    runtime: str | None = None,
    handler: str | None = None,
    memory_size: int | None = None,
    timeout: int | None = None,
    description: str | None = None,
    environment: dict[str, str] | None = None,
    architectures: list[str] | None = None,
) -> None:
    """Raise InvalidParameterValueException listing every value out of Lambda's limits."""
    problems: list[str] = []
    if runtime is not None and not RUNTIMES.match(runtime):
        problems.append(
            f"Value '{runtime}' at 'runtime' is not a runtime the router runs "
            "(python3.X, nodejsNN.x, provided, provided.al2, provided.al2023)"
        )
    if handler is not None and not HANDLER.match(handler):
        problems.append(f"Value '{handler}' at 'handler' must be 1-128 characters without whitespace")
    if memory_size is not None and not 128 <= memory_size <= 10240:
        problems.append(f"Value '{memory_size}' at 'memorySize' must be between 128 and 10240")
    if timeout is not None and not 1 <= timeout <= 900:
        problems.append(f"Value '{timeout}' at 'timeout' must be between 1 and 900")
    if description is not None and len(description) > 256:
        problems.append("Value at 'description' must be at most 256 characters")
    if architectures is not None and (len(architectures) != 1 or architectures[0] not in ARCHITECTURES):
        problems.append(f"Value '{architectures}' at 'architectures' must be ['x86_64'] or ['arm64']")
    if environment is not None:
        problems.extend(_environment_problems(environment))
    if problems:
        raise invalid_parameter("; ".join(problems))


def _environment_problems(env: dict[str, str]) -> list[str]:
    problems = [
        f"Environment variable name '{k}' must match [a-zA-Z][a-zA-Z0-9_]+"
        for k in env
        if not ENV_KEY.match(k)
    ]
    # Credentials (AWS_ACCESS_KEY_ID, ...) are allowed: locally there is no role to take them from.
    reserved = sorted(k for k in env if k in lambda_env.PROTECTED)
    if reserved:
        problems.append(
            "Lambda was unable to configure your environment variables because the environment variables "
            "you have provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
    if size > 4096:
        problems.append(
            "Lambda was unable to configure your environment variables because the environment variables "
            f"you have provided exceeded the 4KB limit. Measured size: {size} bytes"
        )
    return problems
