"""The traits a source kind declares, so that config checks, shapes, filters and routing name no kind.

Each kind's config Struct (router/config/sources/<kind>.py) carries one `KindTraits` as its `traits` class
attribute. What reads them:

* `shape`: the event shape the kind renders (a key of router.shapes.SHAPES): `email` renders `ses`;
* `stream`: a partitioned stream read through the stream engine (batches, checkpoints, `on_error`); routes of
  other kinds may not set `batch` or `on_error`;
* `batched`: routes take `batch:` (size, window) and `on_error.report_batch_item_failures` without being a
  stream (SQS: a queue polled in batches, with no partitions, checkpoints or failure destinations); every
  stream kind is batched as well;
* `default_window_s`: a batched route's batching window when the route gives none (Lambda's defaults differ:
  Kafka 0.5 s, Kinesis, DynamoDB Streams and SQS 0);
* `default_batch_size`: a batched route's batch size when the route gives none (Lambda: SQS 10, others 100);
* `tumbling_windows`: a stream whose routes may set `batch.tumbling_window_s` (Kinesis, DynamoDB Streams);
* `waits_for_result`: the source invokes synchronously and needs the result (HTTP, streams); otherwise it
  queues events for asynchronous invocation (S3, email, schedules);
* `request_routed`: routes carry `http: {method, path}` (the HTTP gateway) and only this kind's routes may;
* `default_events`: the event names a route receives when it has no `events:` list (S3 routes get creations
  only, as an S3 notification is configured per event type);
* `filter_fields`: the record fields a filter sees decoded (base64 or text parsed as JSON, as Lambda filters
  Kafka `key`/`value`, Kinesis `data` and an HTTP `body`), as (dotted path, base64?) pairs; a dotted path is
  also visible under its last part (`kinesis.data` as `data`, the path Lambda's docs use).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KindTraits:
    shape: str
    stream: bool = False
    batched: bool = False
    default_window_s: float = 0.0
    tumbling_windows: bool = False
    default_batch_size: int = 100
    waits_for_result: bool = False
    request_routed: bool = False
    default_events: tuple[str, ...] = ("*",)
    filter_fields: tuple[tuple[str, bool], ...] = ()
