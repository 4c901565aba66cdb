"""FunctionName as Lambda's API takes it: a name, name:qualifier, a full ARN or a partial ARN.

`parse_function_name(value, qualifier)` returns the plain name and the qualifier (from `:qualifier` in the
name or the `Qualifier` query parameter; both given and different is an error, as on Lambda). Whether a
qualifier names a published version or an alias is for the caller that knows them (the catalog, the
dispatcher); one that names nothing is a ResourceNotFoundException.
The region and account of an ARN are not checked, so ARNs copied from a real account work locally.
"""

from __future__ import annotations

import re

import msgspec

from router.control.errors import invalid_parameter
from router.core.arn import lambda_arn

LATEST = "$LATEST"

# Lambda's NamespacedFunctionName pattern, anchored.
_FUNCTION_NAME = re.compile(
    r"^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]:)?"
    r"(?:[0-9]{12}:)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?\Z"
)
_QUALIFIER = re.compile(r"^[a-zA-Z0-9$_-]{1,128}\Z")
# What CreateFunction accepts as a new function's name.
NEW_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")


class FunctionRef(msgspec.Struct, frozen=True):
    name: str
    qualifier: str | None = None

    @property
    def is_latest(self) -> bool:
        return self.qualifier in (None, LATEST)


def parse_function_name(value: str, qualifier: str | None = None) -> FunctionRef:
    """Split a FunctionName into (name, qualifier). Raises InvalidParameterValueException when malformed."""
    if not 1 <= len(value) <= 256:
        raise invalid_parameter(f"FunctionName must be 1 to 256 characters, got {len(value)}")
    m = _FUNCTION_NAME.match(value)
    if m is None or len(m.group("name")) > 140:
        raise invalid_parameter(
            f"1 validation error detected: Value '{value}' at 'functionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: a function name, name:qualifier, or ARN"
        )
    derived = m.group("qualifier")
    if qualifier is not None and qualifier != "":
        if not _QUALIFIER.match(qualifier):
            raise invalid_parameter(f"Qualifier {qualifier!r} must match [a-zA-Z0-9$_-]{{1,128}}")
        if derived is not None and derived != qualifier:
            raise invalid_parameter(
                "The derived qualifier from the function name does not match the specified qualifier."
            )
        derived = qualifier
    return FunctionRef(m.group("name"), derived)


def function_arn(region: str, account_id: str, name: str, qualifier: str | None = None) -> str:
    arn = lambda_arn(name, region, account_id)
    return f"{arn}:{qualifier}" if qualifier else arn
