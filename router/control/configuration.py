"""Lambda's FunctionConfiguration, GetFunction and GetAccountSettings bodies, rendered from our definitions.

Field names and formats follow botocore's Lambda model (LastModified `2019-09-18T14:57:31.000+0000`,
CodeSha256 as base64 of the SHA-256 of the ZIP). What the router does not have is rendered with Lambda's
defaults for a plain ZIP function on $LATEST (State Active, PackageType Zip, TracingConfig PassThrough,
512 MB ephemeral storage). A config-file function has no IAM role: Role is a placeholder ARN.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from router.config import Config
from router.control.names import LATEST
from router.control.store import FunctionRecord
from router.dispatch.registry import FunctionDefinition
from router.shapes.common import role_arn

MB = 1024 * 1024
CODE_SIZE_ZIPPED = 50 * MB
CODE_SIZE_UNZIPPED = 250 * MB
TOTAL_CODE_SIZE = 75 * 1024 * MB


LayerSize = Callable[[str], int]  # a layer version ARN -> its CodeSize


def function_configuration(
    defn: FunctionDefinition,
    record: FunctionRecord | None,
    config: Config,
    *,
    qualifier: str | None = None,
    layer_size: LayerSize | None = None,
) -> dict[str, Any]:
    """One function's FunctionConfiguration (the body of Get/Create/UpdateFunction*). For a published
    version `record` is its snapshot; `qualifier` (a version or an alias) qualifies FunctionArn."""
    fc = defn.config
    account = config.account
    qualifier = qualifier or (defn.version if defn.version != LATEST else None)
    out: dict[str, Any] = {
        "FunctionName": defn.name,
        "FunctionArn": f"{defn.spec.arn}:{qualifier}" if qualifier else defn.spec.arn,
        "Runtime": fc.runtime,
        "Role": record.role if record and record.role else role_arn("router", account.account_id),
        "Handler": fc.handler,
        "CodeSize": defn.code_size,
        "Description": fc.description,
        "Timeout": fc.timeout_s,
        "MemorySize": fc.memory_mb,
        "LastModified": defn.last_modified,
        "CodeSha256": defn.code_sha256,
        "Version": defn.version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": revision_id(defn, record),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": list(record.architectures) if record else ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{defn.name}"},
    }
    if fc.environment:
        out["Environment"] = {"Variables": dict(fc.environment)}
    if record is not None and record.layers:
        size = layer_size or (lambda _arn: 0)
        out["Layers"] = [{"Arn": arn, "CodeSize": size(arn)} for arn in record.layers]
    if record is not None and record.dead_letter_arn:
        out["DeadLetterConfig"] = {"TargetArn": record.dead_letter_arn}
    return out


def revision_id(defn: FunctionDefinition, record: FunctionRecord | None) -> str:
    """A deployed function's RevisionId, or a config function's (derived from its revision)."""
    return record.revision_id if record else str(uuid.uuid5(uuid.NAMESPACE_URL, defn.revision))


def get_function(
    defn: FunctionDefinition,
    record: FunctionRecord | None,
    config: Config,
    base_url: str,
    *,
    qualifier: str | None = None,
    layer_size: LayerSize | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    configuration = function_configuration(defn, record, config, qualifier=qualifier, layer_size=layer_size)
    out: dict[str, Any] = {"Configuration": configuration, "Tags": dict(tags or {})}
    if record is not None and defn.version == LATEST:
        # Lambda answers with a pre-signed S3 URL; the router serves the stored ZIP itself.
        out["Code"] = {
            "RepositoryType": "S3",
            "Location": f"{base_url}/router/functions/{defn.name}/code.zip",
        }
    if defn.config.reserved_concurrency is not None:
        out["Concurrency"] = {"ReservedConcurrentExecutions": defn.config.reserved_concurrency}
    return out


def account_settings(defs: dict[str, FunctionDefinition], config: Config) -> dict[str, Any]:
    reserved = sum(d.config.reserved_concurrency or 0 for d in defs.values())
    return {
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": CODE_SIZE_UNZIPPED,
            "CodeSizeZipped": CODE_SIZE_ZIPPED,
            "ConcurrentExecutions": config.account.concurrency,
            "UnreservedConcurrentExecutions": config.account.concurrency - reserved,
        },
        "AccountUsage": {
            "TotalCodeSize": sum(d.code_size for d in defs.values()),
            "FunctionCount": len(defs),
        },
    }
