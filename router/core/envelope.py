"""The one envelope every source produces, and its rendering into what a function receives.

`Envelope` carries the CloudEvents 1.0 context attributes (id, source, type, subject, time, datacontenttype)
plus `record`: the native record already in the exact AWS shape of one element of that source's event
(one S3 notification record, one DynamoDB Streams record, one Kafka record, ...), built by the builders in
`router/shapes/<kind>.py`. `render(kind, envelopes, fmt)` wraps one or more records into the event the
function receives: the AWS event shape (`{"Records": [...]}`, Kafka's `records` map, the scheduled event,
the API Gateway request) or, with fmt="cloudevents", a structured-mode CloudEvent.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    source: str  # CloudEvents source URI-reference, e.g. "arn:aws:s3:::uploads" or "router://sources/api"
    type: str  # e.g. "com.amazonaws.s3.ObjectCreated:Put"
    time: str  # RFC 3339
    kind: str  # source kind: s3 | dynamodb | kafka | kinesis | ses | schedule | http
    source_name: str  # the source's name in the config
    record: Any  # the native record in AWS shape (see module docstring)
    subject: str | None = None
    datacontenttype: str = "application/json"
    specversion: str = "1.0"
    trace: str | None = None  # loop-protection trace header carried through router-controlled paths
    meta: dict[str, Any] = {}  # source-specific extras the renderer needs (e.g. kafka bootstrapServers)


encoder = msgspec.json.Encoder()
decoder = msgspec.json.Decoder()
