"""Lambda function ARNs, built in one place: `arn:aws:lambda:<region>:<account>:function:<name>`.

The invoker hands it to the function (the context's invoked_function_arn), the dispatcher names a missing
function by it, shapes and failure records carry it, and the Lambda API returns it (with a qualifier).
"""

from __future__ import annotations


def lambda_arn(function: str, region: str, account: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function}"
