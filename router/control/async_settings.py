"""From the API's event invoke config and DeadLetterConfig to the dispatcher's `AsyncConfig`.

Destinations are ARNs on the API and `Destination`s in the dispatcher:

| ARN                                                   | Destination                               |
| ----------------------------------------------------- | ----------------------------------------- |
| `arn:aws:sqs:<region>:<account>:<queue>`              | `sqs` (sent through the `aws:` endpoint)  |
| `arn:aws:sns:<region>:<account>:<topic>`              | `sns`                                     |
| `arn:aws:events:<region>:<account>:event-bus/<name>`  | `eventbridge`                             |
| `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]` | `function` (a function of this router) |

`destination_from_arn` raises InvalidParameterValueException for anything else, naming the ARN.
"""

from __future__ import annotations

import re

from router.config import AsyncConfig, Destination
from router.control.errors import invalid_parameter
from router.control.records import InvokeConfigRecord

_SQS = re.compile(r"^arn:aws[a-zA-Z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[\w.-]+\Z")
_SNS = re.compile(r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:[0-9]{12}:[\w.-]+\Z")
_BUS = re.compile(r"^arn:aws[a-zA-Z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[\w./-]+\Z")
_LAMBDA = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:(?P<name>[a-zA-Z0-9_-]+)(?::(?P<q>[\w$-]+))?\Z"
)


def destination_from_arn(arn: str, *, dead_letter: bool = False) -> Destination:
    if _SQS.match(arn):
        return Destination(sqs=arn)
    if _SNS.match(arn):
        return Destination(sns=arn)
    if not dead_letter:
        if _BUS.match(arn):
            return Destination(eventbridge=arn)
        m = _LAMBDA.match(arn)
        if m is not None:
            q = m.group("q")
            return Destination(function=f"{m.group('name')}:{q}" if q else m.group("name"))
    kinds = "an SQS queue or SNS topic" if dead_letter else "an SQS queue, SNS topic, function or event bus"
    raise invalid_parameter(f"The destination ARN {arn} is invalid: expected {kinds} ARN")


def async_config(record: InvokeConfigRecord | None, dead_letter_arn: str | None) -> AsyncConfig:
    """The dispatcher's settings for one qualifier (Lambda's defaults where nothing is configured)."""
    defaults = AsyncConfig()
    retries, age = record.max_retries if record else None, record.max_event_age_s if record else None
    dead_letter = destination_from_arn(dead_letter_arn, dead_letter=True) if dead_letter_arn else None
    if record is None:
        return AsyncConfig(dead_letter=dead_letter)
    return AsyncConfig(
        max_retries=defaults.max_retries if retries is None else retries,
        max_event_age_s=defaults.max_event_age_s if age is None else age,
        on_success=destination_from_arn(record.on_success) if record.on_success else None,
        on_failure=destination_from_arn(record.on_failure) if record.on_failure else None,
        dead_letter=dead_letter,
    )
