"""Event shapes: the exact AWS events functions receive, built from native events, and CloudEvents.

One module per shape (`s3`, `dynamodb`, `kinesis`, `kafka`, `sqs`, `sns`, `ses`, `schedule`, `apigateway`),
each with:

* builders that make ONE native record (or, for schedule and API Gateway, the whole event) in the exact AWS
  shape with every field AWS sends: `s3.record`, `dynamodb.record`, `kinesis.record`, `kafka.record`,
  `sqs.record`, `sns.record`, `ses.record`, `schedule.event`, `apigateway.v1_event` / `apigateway.v2_event`;
* `envelope(record, source_name=..., ...)`: the record wrapped into `router.envelope.Envelope` with
  CloudEvents attributes (id, source, type such as `com.amazonaws.s3.ObjectCreated:Put`, subject, time);
* `wrap(envelopes)`: the AWS event a function receives for those envelopes; `sample()`: an example envelope.

`render(kind, envelopes, fmt)` is the one entry point the dispatcher uses. `kind` is the shape or the source
kind that produces it (`email` -> ses, `http` -> API Gateway). fmt "aws" returns the AWS event; "cloudevents"
returns structured CloudEvents whose `data` is the AWS event of that one envelope: a single dict for
single-event shapes (s3, sns, ses, schedule, http) given one envelope, a list (a CloudEvents batch) for the
batched shapes (kafka, kinesis, dynamodb, sqs) and whenever there are several envelopes.

May import: router.core only: shapes are pure builders (no dispatch, no invoker, no I/O).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from router.core.envelope import Envelope
from router.shapes import cloudevents

SHAPES: dict[str, str] = {
    "s3": "router.shapes.s3",
    "dynamodb": "router.shapes.dynamodb",
    "kinesis": "router.shapes.kinesis",
    "kafka": "router.shapes.kafka",
    "ses": "router.shapes.ses",
    "schedule": "router.shapes.schedule",
    "http": "router.shapes.apigateway",
    "sqs": "router.shapes.sqs",
    "sns": "router.shapes.sns",
}
ALIASES = {"email": "ses", "apigateway": "http"}
STREAM_KINDS = frozenset({"kafka", "kinesis", "dynamodb", "sqs"})  # shapes that batch records
FORMATS = ("aws", "cloudevents")


def shape_kind(kind: str) -> str:
    """The shape a kind produces (`email` -> `ses`, `apigateway` -> `http`); ValueError for unknown kinds."""
    kind = ALIASES.get(kind, kind)
    if kind not in SHAPES:
        raise ValueError(f"unknown event kind {kind!r} (known: {', '.join(sorted([*SHAPES, *ALIASES]))})")
    return kind


def module(kind: str) -> ModuleType:
    return importlib.import_module(SHAPES[shape_kind(kind)])


def render(
    kind: str, envelopes: Sequence[Envelope], fmt: str = "aws", *, function_arn: str | None = None
) -> Any:
    """The event a function receives for these envelopes (see the module docstring).

    `function_arn` names the receiving function where the shape carries it (SES's receipt action).
    """
    kind = shape_kind(kind)
    if not envelopes:
        raise ValueError("render needs at least one envelope")
    wrap = module(kind).wrap
    if fmt == "aws":
        return wrap(envelopes, function_arn=function_arn)
    if fmt != "cloudevents":
        raise ValueError(f"unknown event format {fmt!r} (known: {', '.join(FORMATS)})")
    events = [cloudevents.structured(e, wrap([e], function_arn=function_arn)) for e in envelopes]
    if len(events) == 1 and kind not in STREAM_KINDS:
        return events[0]
    return events


def sample_envelope(kind: str) -> Envelope:
    return module(kind).sample()


def sample(kind: str, fmt: str = "aws") -> Any:
    """A sample event of that kind, as `router events --kind KIND` prints it (like sam's generate-event).

    Built with the same builders and `render` the sources use; deterministic values.
    """
    return render(kind, [sample_envelope(kind)], fmt)
