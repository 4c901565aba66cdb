"""Small helpers every shape module shares: ids, ARNs, defaults and the event wrappers.

Times are given to builders as epoch seconds (float) and rendered in the exact format each AWS service uses
(`router.core.timefmt`); `None` means "now". Ids are random in the format the service uses, so handlers that
parse them do not choke.
"""

from __future__ import annotations

import base64
import secrets
import time as _time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from router.core import ids

if TYPE_CHECKING:
    from router.core.envelope import Envelope

REGION = "us-east-1"
ACCOUNT = "123456789012"

_B32 = "abcdefghijklmnopqrstuvwxyz0123456789"


def now(t: float | None) -> float:
    return _time.time() if t is None else t


def epoch_ms(t: float) -> int:
    return round(t * 1000)


def hex_id(n: int = 16) -> str:
    """Upper-case hex, e.g. S3's x-amz-request-id (16 chars)."""
    return ids.random_hex(n).upper()


def lower_hex_id(n: int = 32) -> str:
    return ids.random_hex(n)


def uuid4() -> str:
    """A random (version 4) UUID's text, as `str(uuid.uuid4())` (router.core.ids: no system call each)."""
    return ids.new_request_id()


def alnum_id(n: int) -> str:
    """Lower-case letters and digits, e.g. SES message ids."""
    return "".join(secrets.choice(_B32) for _ in range(n))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def arn_region(arn: str | None, default: str = REGION) -> str:
    """The region field of an ARN (arn:aws:service:REGION:account:...), or the default."""
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 4 and parts[3] else default


def arn_account(arn: str | None, default: str = ACCOUNT) -> str:
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4] else default


def role_arn(role: str, account: str = ACCOUNT) -> str:
    """An IAM role's ARN (IAM is global: no region)."""
    return f"arn:aws:iam::{account}:role/{role}"


def records_event(envelopes: Sequence[Envelope]) -> dict[str, Any]:
    """The event of the shapes that batch their records (S3, DynamoDB, Kinesis): `{"Records": [...]}`."""
    return {"Records": [e.record for e in envelopes]}


def single_event(envelopes: Sequence[Envelope], what: str) -> dict[str, Any]:
    """The event of a shape delivered alone (a scheduled event, an API Gateway request): its one record."""
    if len(envelopes) != 1:
        raise ValueError(f"{what} is delivered alone, got {len(envelopes)} envelopes")
    return envelopes[0].record
