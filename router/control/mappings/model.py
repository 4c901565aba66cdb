"""Event source mappings as the Lambda API takes them, and as the router keeps them.

* `CreateIn` / `UpdateIn`: the request bodies (botocore's member names, via rename="pascal"). Members the
  router does not use (KMSKeyArn, MetricsConfig, LoggingConfig, Tags, ProvisionedPollerConfig, ...) are
  accepted and ignored, so deployment tools that send them work.
* `MappingRecord`: one mapping as persisted (router/control/mappings/store.py), in our own field names.
* `source_kind(record)`: which source kind reads it (sqs, kinesis, dynamodb, kafka), from its ARN or its
  self-managed Kafka endpoints.
* `check(record)`: Lambda's rules on the values, for the kind, each failure an InvalidParameterValueException
  naming the parameter (batch size 1-10,000, and at most 10 for a FIFO queue; a window of at least 1 s above
  10 records for SQS; StartingPosition required for streams and Kafka and refused for SQS;
  stream-only parameters refused for SQS; filter patterns that are JSON and valid; ...).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from router.control.errors import invalid_parameter
from router.core.arn import parse_arn
from router.dispatch.filter_syntax import MAX_PATTERNS, pattern_problems

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
KAFKA_BOOTSTRAP_SERVERS = "KAFKA_BOOTSTRAP_SERVERS"
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
STREAM_KINDS = ("kinesis", "dynamodb")
DEFAULT_BATCH = {"sqs": 10, "kinesis": 100, "dynamodb": 100, "kafka": 100}
# Access configuration types that have no meaning on one machine: accepted and ignored.
IGNORED_ACCESS = ("VPC_SUBNET", "VPC_SECURITY_GROUP")


class Base(msgspec.Struct, kw_only=True, rename="pascal"):
    pass


class FilterIn(Base):
    pattern: str | None = None


class FilterCriteriaIn(Base):
    filters: list[FilterIn] = []


class OnFailureIn(Base):
    destination: str | None = None


class DestinationConfigIn(Base):
    on_failure: OnFailureIn | None = None
    on_success: OnFailureIn | None = None


class ScalingConfigIn(Base):
    maximum_concurrency: int | None = None


class SelfManagedEventSourceIn(Base):
    endpoints: dict[str, list[str]] = {}


class SelfManagedKafkaIn(Base):
    consumer_group_id: str | None = None


class SourceAccessIn(msgspec.Struct, kw_only=True):
    type: str = msgspec.field(name="Type")
    uri: str = msgspec.field(default="", name="URI")


class UpdateIn(Base):
    function_name: str | None = None
    enabled: bool | None = None
    batch_size: int | None = None
    filter_criteria: FilterCriteriaIn | None = None
    maximum_batching_window_in_seconds: int | None = None
    parallelization_factor: int | None = None
    destination_config: DestinationConfigIn | None = None
    maximum_record_age_in_seconds: int | None = None
    bisect_batch_on_function_error: bool | None = None
    maximum_retry_attempts: int | None = None
    tumbling_window_in_seconds: int | None = None
    source_access_configurations: list[SourceAccessIn] | None = None
    function_response_types: list[str] | None = None
    scaling_config: ScalingConfigIn | None = None


class CreateIn(UpdateIn):
    function_name: str | None = None  # required; checked by the handler with Lambda's message
    event_source_arn: str | None = None
    starting_position: str | None = None
    starting_position_timestamp: float | None = None
    topics: list[str] | None = None
    self_managed_event_source: SelfManagedEventSourceIn | None = None
    self_managed_kafka_event_source_config: SelfManagedKafkaIn | None = None


class MappingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One event source mapping created through the API, as persisted."""

    uuid: str
    function_name: str
    event_source_arn: str | None = None  # SQS, Kinesis, DynamoDB Streams
    kafka_brokers: list[str] = []  # self-managed Kafka
    topics: list[str] = []
    consumer_group_id: str | None = None
    source_access: list[dict[str, str]] = []
    batch_size: int = 100
    window_s: int | None = None  # None: the kind's default (Kafka 0.5 s, others 0), shown as 0
    starting_position: str | None = None
    starting_position_timestamp: float | None = None
    filters: list[str] = []  # FilterCriteria.Filters[].Pattern, as given
    response_types: list[str] = []
    bisect: bool = False
    max_retries: int = -1
    max_record_age_s: int = -1
    parallelization_factor: int = 1
    on_failure: str | None = None  # DestinationConfig.OnFailure.Destination
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency (SQS)
    enabled: bool = True
    transition: str = "Creating"  # the State shown until the daemon has caught up with the last change
    last_modified: float = 0.0


def source_kind(record: MappingRecord) -> str:
    if record.event_source_arn is None:
        return "kafka"
    arn = parse_arn(record.event_source_arn)
    service = arn.service if arn is not None else ""
    if service == "dynamodb":
        return "dynamodb"
    return service


def event_source_kind(arn_text: str) -> str:
    """The source kind of an EventSourceArn; InvalidParameterValueException for one the router cannot read."""
    arn = parse_arn(arn_text)
    if arn is None:
        raise invalid_parameter(f"EventSourceArn {arn_text!r} is not an ARN")
    if arn.service == "sqs":
        return "sqs"
    if arn.service == "kinesis" and arn.resource.startswith("stream/"):
        return "kinesis"
    if arn.service == "dynamodb" and "/stream/" in arn.resource:
        return "dynamodb"
    raise invalid_parameter(
        f"Unsupported event source {arn_text!r}: the router reads SQS queues, Kinesis streams, DynamoDB "
        "streams (EventSourceArn) and self-managed Kafka (SelfManagedEventSource)"
    )


def patterns(record: MappingRecord) -> list[Any] | None:
    """The filter patterns as the route takes them (None: no filter)."""
    return [json.loads(p) for p in record.filters] or None


def check(record: MappingRecord, kind: str, *, fifo: bool = False) -> None:
    problems: list[str] = []
    if not 1 <= record.batch_size <= 10000:
        problems.append(f"BatchSize {record.batch_size} must be between 1 and 10000")
    elif kind == "sqs" and fifo and record.batch_size > 10:
        problems.append(f"BatchSize {record.batch_size} is more than 10, the most a FIFO queue takes")
    window = record.window_s or 0
    if not 0 <= window <= 300:
        problems.append(f"MaximumBatchingWindowInSeconds {window} must be between 0 and 300")
    elif kind == "sqs" and record.batch_size > 10 and window < 1:
        problems.append(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
        )
    problems += _position_problems(record, kind)
    problems += _stream_problems(record, kind)
    problems += _filter_problems(record.filters)
    if any(t != REPORT_BATCH_ITEM_FAILURES for t in record.response_types):
        problems.append(f"FunctionResponseTypes may only hold {REPORT_BATCH_ITEM_FAILURES}")
    if record.max_concurrency is not None:
        if kind != "sqs":
            problems.append("ScalingConfig applies to SQS event sources only")
        elif not 2 <= record.max_concurrency <= 1000:
            problems.append(f"ScalingConfig.MaximumConcurrency {record.max_concurrency} must be 2 to 1000")
    if problems:
        raise invalid_parameter("; ".join(problems))


def _position_problems(record: MappingRecord, kind: str) -> list[str]:
    position = record.starting_position
    if kind == "sqs":
        return [] if position is None else ["StartingPosition is not valid for SQS event sources"]
    if position is None:
        return [f"StartingPosition is required for {kind} event sources"]
    allowed = ("TRIM_HORIZON", "LATEST") if kind == "dynamodb" else STARTING_POSITIONS
    if position not in allowed:
        return [f"StartingPosition {position!r} must be one of {', '.join(allowed)} for {kind}"]
    if position == "AT_TIMESTAMP" and record.starting_position_timestamp is None:
        return ["StartingPositionTimestamp is required with StartingPosition AT_TIMESTAMP"]
    return []


def _stream_problems(record: MappingRecord, kind: str) -> list[str]:
    problems = []
    if not -1 <= record.max_retries <= 10000:
        problems.append(f"MaximumRetryAttempts {record.max_retries} must be between -1 and 10000")
    if record.max_record_age_s != -1 and not 60 <= record.max_record_age_s <= 604800:
        problems.append(f"MaximumRecordAgeInSeconds {record.max_record_age_s} must be -1 or 60 to 604800")
    if not 1 <= record.parallelization_factor <= 10:
        problems.append(f"ParallelizationFactor {record.parallelization_factor} must be between 1 and 10")
    if kind in STREAM_KINDS:
        return problems
    stream_only = {
        "MaximumRetryAttempts": record.max_retries != -1,
        "MaximumRecordAgeInSeconds": record.max_record_age_s != -1,
        "BisectBatchOnFunctionError": record.bisect,
        "ParallelizationFactor": record.parallelization_factor != 1,
    }
    if kind == "sqs":
        stream_only["DestinationConfig"] = record.on_failure is not None
    problems += [
        f"Unsupported {name} parameter for {kind} event sources" for name, on in stream_only.items() if on
    ]
    return problems


def _filter_problems(filters: list[str]) -> list[str]:
    if len(filters) > MAX_PATTERNS:
        return [f"FilterCriteria holds {len(filters)} filters; at most {MAX_PATTERNS}"]
    problems = []
    for i, text in enumerate(filters):
        try:
            pattern = json.loads(text)
        except ValueError:
            problems.append(f"Invalid filter pattern definition: Filters[{i}].Pattern is not JSON")
            continue
        problems += pattern_problems(pattern, f"FilterCriteria.Filters[{i}].Pattern")
    return problems
