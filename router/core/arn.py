"""ARNs: Lambda function ARNs built in one place, and any ARN split into its fields.

* `lambda_arn(function, region, account)`: `arn:aws:lambda:<region>:<account>:function:<name>`. The invoker
  hands it to the function (the context's invoked_function_arn), the dispatcher names a missing function by
  it, shapes and failure records carry it, and the Lambda API returns it (with a qualifier).
* `parse_arn(text)`: `arn:<partition>:<service>:<region>:<account>:<resource>` as an `Arn`, or None when the
  text is not of that form (the resource may itself contain ':' and '/').
"""

from __future__ import annotations

from dataclasses import dataclass


def lambda_arn(function: str, region: str, account: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function}"


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
