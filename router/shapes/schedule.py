"""EventBridge scheduled events (a rule with a schedule expression -> Lambda, asynchronous invoke).

`event(rule_arn=..., time=...)` builds the whole event, which is what the function receives (no `Records`
list): version "0", id, detail-type "Scheduled Event", source "aws.events", account and region (from the rule
ARN), time to the second, resources [rule ARN], detail {}. `envelope(...)`: type
`com.amazonaws.events.ScheduledEvent`, source the rule ARN, subject the rule name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "schedule"
SINGLE = True  # one event per invocation, rendered as is


def rule_arn(name: str, *, region: str = common.REGION, account: str = common.ACCOUNT) -> str:
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def event(*, rule_arn: str, time: float | None = None, id: str | None = None) -> dict[str, Any]:
    """The scheduled event for one tick of the rule; `time` is the scheduled time (epoch seconds)."""
    return {
        "version": "0",
        "id": id or common.uuid4(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": common.arn_account(rule_arn),
        "time": timefmt.iso_s(common.now(time)),
        "region": common.arn_region(rule_arn),
        "resources": [rule_arn],
        "detail": {},
    }


def envelope(
    ev: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    arn = ev["resources"][0]
    return Envelope(
        id=id or ev["id"],
        source=arn,
        type="com.amazonaws.events.ScheduledEvent",
        subject=arn.rpartition("/")[2] or None,
        time=ev["time"],
        kind=KIND,
        source_name=source_name,
        record=ev,
        trace=trace,
        meta=meta or {},
    )


def wrap(envelopes: Sequence[Envelope], **_: Any) -> dict[str, Any]:
    return common.single_event(envelopes, "a scheduled event")


def sample() -> Envelope:
    ev = event(rule_arn=rule_arn("nightly"), time=1_700_000_000, id="cdc73f9d-aea9-11e3-9d5a-835b769c0d9c")
    return envelope(ev, source_name="nightly")
