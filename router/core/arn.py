"""ARNs built and read in one place: functions, layer versions, and any ARN split into its fields.

* `lambda_arn(name, region, account)`: `arn:aws:lambda:<region>:<account>:function:<name>`. The invoker hands
  it to the function (the context's invoked_function_arn), the dispatcher names a missing function by it,
  shapes and failure records carry it, and the Lambda API returns it (with a qualifier).
* `layer_arn(name, region, account, version=None)`: `arn:aws:lambda:<region>:<account>:layer:<name>[:<n>]`;
  `parse_layer_version_arn(arn)` gives back (name, version) or None when it is not a layer version ARN.
  The region and account of a parsed ARN are not checked (ARNs copied from a real account work locally).
* `parse_arn(text)`: `arn:<partition>:<service>:<region>:<account>:<resource>` as an `Arn`, or None when the
  text is not of that form (the resource may itself contain ':' and '/').
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LAYER_VERSION_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-[0-9]{1}:[0-9]{12}:layer:"
    r"(?P<name>[a-zA-Z0-9-_]+):(?P<version>[0-9]+)\Z"
)


def lambda_arn(function: str, region: str, account: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function}"


def layer_arn(name: str, region: str, account: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


def parse_layer_version_arn(arn: str) -> tuple[str, int] | None:
    m = LAYER_VERSION_ARN.match(arn)
    return (m.group("name"), int(m.group("version"))) if m else None


@dataclass(frozen=True, slots=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(text: str) -> Arn | None:
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2] or not parts[5]:
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])
