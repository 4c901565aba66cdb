"""Lambda ARNs, built and read in one place: functions and layer versions.

* `lambda_arn(name, region, account)`: `arn:aws:lambda:<region>:<account>:function:<name>`. The invoker hands
  it to the function (the context's invoked_function_arn), the dispatcher names a missing function by it,
  shapes and failure records carry it, and the Lambda API returns it (with a qualifier).
* `layer_arn(name, region, account, version=None)`: `arn:aws:lambda:<region>:<account>:layer:<name>[:<n>]`;
  `parse_layer_version_arn(arn)` gives back (name, version) or None when it is not a layer version ARN.
  The region and account of a parsed ARN are not checked (ARNs copied from a real account work locally).
"""

from __future__ import annotations

import re

LAYER_VERSION_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"(?P<name>[a-zA-Z0-9-_]+):(?P<version>[0-9]+)$"
)


def lambda_arn(function: str, region: str, account: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function}"


def layer_arn(name: str, region: str, account: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


def parse_layer_version_arn(arn: str) -> tuple[str, int] | None:
    m = LAYER_VERSION_ARN.match(arn)
    return (m.group("name"), int(m.group("version"))) if m else None
