"""An event source mapping as the Lambda API returns it (botocore's EventSourceMappingConfiguration).

Which members appear depends on the kind, as on Lambda: SQS mappings have no StartingPosition,
LastProcessingResult, DestinationConfig or stream error-handling members, and ScalingConfig only when set;
Kinesis and DynamoDB Streams have ParallelizationFactor, the retry and age limits, bisect and
TumblingWindowInSeconds (always 0: tumbling windows are not implemented); self-managed Kafka has Topics,
SelfManagedEventSource, SelfManagedKafkaEventSourceConfig and SourceAccessConfigurations. LastModified is
epoch seconds (the rest-json timestamp botocore reads).
"""

from __future__ import annotations

from typing import Any

from router.control.mappings.model import KAFKA_BOOTSTRAP_SERVERS, STREAM_KINDS, MappingRecord, source_kind
from router.core.arn import lambda_arn


def mapping_arn(uuid: str, region: str, account: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}"


def configuration(
    record: MappingRecord, *, state: str, reason: str, last_result: str, region: str, account: str
) -> dict[str, Any]:
    kind = source_kind(record)
    out: dict[str, Any] = {"UUID": record.uuid}
    if kind != "sqs":
        out["StartingPosition"] = record.starting_position
        if record.starting_position_timestamp is not None:
            out["StartingPositionTimestamp"] = record.starting_position_timestamp
    out["BatchSize"] = record.batch_size
    out["MaximumBatchingWindowInSeconds"] = record.window_s or 0
    if kind in STREAM_KINDS:
        out["ParallelizationFactor"] = record.parallelization_factor
    if record.event_source_arn is not None:
        out["EventSourceArn"] = record.event_source_arn
    if record.filters:
        out["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in record.filters]}
    out["FunctionArn"] = lambda_arn(record.function_name, region, account)
    out["LastModified"] = record.last_modified
    if kind != "sqs":
        out["LastProcessingResult"] = last_result
    out["State"] = state
    out["StateTransitionReason"] = reason
    if kind != "sqs":
        on_failure = {"Destination": record.on_failure} if record.on_failure else {}
        out["DestinationConfig"] = {"OnFailure": on_failure}
    if kind == "kafka":
        out["Topics"] = list(record.topics)
        out["SourceAccessConfigurations"] = [
            {"Type": a["Type"], "URI": a["URI"]} for a in record.source_access
        ]
        out["SelfManagedEventSource"] = {"Endpoints": {KAFKA_BOOTSTRAP_SERVERS: list(record.kafka_brokers)}}
        out["SelfManagedKafkaEventSourceConfig"] = {
            "ConsumerGroupId": record.consumer_group_id or record.uuid
        }
    if kind in STREAM_KINDS:
        out["MaximumRecordAgeInSeconds"] = record.max_record_age_s
        out["BisectBatchOnFunctionError"] = record.bisect
        out["MaximumRetryAttempts"] = record.max_retries
        out["TumblingWindowInSeconds"] = 0
    out["FunctionResponseTypes"] = list(record.response_types)
    if kind == "sqs" and record.max_concurrency is not None:
        out["ScalingConfig"] = {"MaximumConcurrency": record.max_concurrency}
    out["EventSourceMappingArn"] = mapping_arn(record.uuid, region, account)
    return out
