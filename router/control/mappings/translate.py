"""Event source mappings and config-file routes, each expressed in the other's terms.

* `mapped_source(name, record, config)`: an API mapping as the source and route the daemon runs (the same
  source kinds and stream engine as config-file routes). ARNs reach their service through the config's `aws:`
  section (endpoint_url, region, keys); the ARN's own region wins over `aws.region`. A self-managed Kafka
  mapping reads with the consumer group `SelfManagedKafkaEventSourceConfig.ConsumerGroupId`, by default the
  mapping's UUID (as Lambda does).
* `config_mappings(config)`: every config-file route of an SQS, Kinesis, DynamoDB Streams or Kafka source, one
  per function, as a read-only `MappingRecord` with a UUID derived from the source's name and the route's
  mapping name (router/sources/stream/routes.py: the function, `-2` for its second route...), so it is
  stable across restarts and reloads.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from router.config import BatchConfig, Destination, OnErrorConfig, RouteConfig
from router.config.sources import DynamoDBConfig, KafkaConfig, KinesisConfig, SqsConfig
from router.control.mappings.model import (
    REPORT_BATCH_ITEM_FAILURES,
    MappingRecord,
    patterns,
    source_kind,
)
from router.control.mappings.port import MappedSource
from router.core.arn import parse_arn
from router.sources.stream.routes import mapping_names

if TYPE_CHECKING:
    from router.config import Config

MAPPING_KINDS = ("sqs", "kinesis", "dynamodb", "kafka")
_NAMESPACE = uuid.UUID("6f1c1d0e-5a41-4d7f-9a3e-8e0b7f6c2a10")  # config-file mapping UUIDs


def source_name(mapping_uuid: str) -> str:
    """The daemon's name for the source of an API mapping (its state folder is sources/<name>)."""
    return f"esm-{mapping_uuid}"


def mapped_source(name: str, record: MappingRecord, config: Config) -> MappedSource:
    kind = source_kind(record)
    aws, arn_text = config.aws, record.event_source_arn or ""
    arn = parse_arn(arn_text)
    region = (arn.region if arn is not None and arn.region else None) or aws.region or config.account.region
    common: dict[str, Any] = {
        "endpoint": aws.endpoint_url,
        "region": region,
        "access_key_id": aws.access_key_id,
        "secret_access_key": aws.secret_access_key,
    }
    position: dict[str, Any] = {}
    if record.starting_position is not None:
        position["starting_position"] = record.starting_position
    settings: Any
    if kind == "sqs":
        settings = SqsConfig(queue_arn=arn_text, max_concurrency=record.max_concurrency, **common)
    elif kind == "kinesis":
        ts = record.starting_position_timestamp
        settings = KinesisConfig(stream_arn=arn_text, starting_position_timestamp=ts, **position, **common)
    elif kind == "dynamodb":
        settings = DynamoDBConfig(stream_arn=arn_text, **position, **common)
    else:
        settings = KafkaConfig(
            brokers=list(record.kafka_brokers),
            topics=list(record.topics),
            group=record.consumer_group_id or record.uuid,
            starting_position_timestamp=record.starting_position_timestamp,
            **position,
        )
    return MappedSource(settings=settings, route=_route(name, record, kind))


def _route(name: str, record: MappingRecord, kind: str) -> RouteConfig:
    report = REPORT_BATCH_ITEM_FAILURES in record.response_types
    destination = None
    target = parse_arn(record.on_failure or "")
    if target is not None and target.service == "lambda":
        destination = Destination(function=target.resource.split(":")[1])
    on_error = (
        OnErrorConfig(report_batch_item_failures=report)
        if kind == "sqs"
        else OnErrorConfig(
            max_retries=record.max_retries,
            max_record_age_s=record.max_record_age_s,
            bisect=record.bisect,
            report_batch_item_failures=report,
            destination=destination,
        )
    )
    return RouteConfig(
        source=name,
        function=record.function_name,
        filter=patterns(record),
        batch=BatchConfig(
            size=record.batch_size,
            window_s=None if record.window_s is None else float(record.window_s),
            parallelization_factor=record.parallelization_factor,
        ),
        on_error=on_error,
    )


@dataclass(frozen=True)
class ConfigMapping:
    """A config-file route to one function, listed as a read-only mapping."""

    source: str  # the config source's name
    record: MappingRecord
    route_enabled: bool


def config_mappings(config: Config) -> list[ConfigMapping]:
    out = []
    settings: Any
    for name, settings in config.sources.items():
        kind = settings.kind_name()
        if kind not in MAPPING_KINDS:
            continue
        pairs = [(r, fn) for r in config.routes if r.source == name for fn in r.functions]
        names = mapping_names([fn for _, fn in pairs])
        for (route, fn), mapping in zip(pairs, names, strict=True):
            # A Kafka source's consumer group per route (router/sources/kafka/source.py: group_ids).
            group = getattr(settings, "group", "")
            group = group if len(pairs) == 1 else f"{group}-{mapping}"
            record = _config_record(config, name, settings, kind, route, fn, mapping, group)
            out.append(ConfigMapping(name, record, route.enabled))
    return out


def _config_record(
    config: Config,
    name: str,
    settings: Any,
    kind: str,
    route: RouteConfig,
    fn: str,
    mapping: str,
    group: str,
) -> MappingRecord:
    batch, on_error = route.batch or BatchConfig(), route.on_error or OnErrorConfig()
    filters = route.filter if isinstance(route.filter, list) else [route.filter] if route.filter else []
    common: dict[str, Any]
    if kind == "kafka":
        topics = settings.topic_names()
        common = {"kafka_brokers": list(settings.brokers), "topics": topics, "consumer_group_id": group}
    else:
        common = {"event_source_arn": _config_arn(config, settings, kind)}
    return MappingRecord(
        uuid=str(uuid.uuid5(_NAMESPACE, f"{name}/{mapping}")),
        function_name=fn,
        batch_size=batch.size or settings.traits.default_batch_size,
        window_s=None if batch.window_s is None else int(batch.window_s),
        starting_position=getattr(settings, "starting_position", None),
        starting_position_timestamp=getattr(settings, "starting_position_timestamp", None),
        filters=[json.dumps(p) for p in filters],
        response_types=[REPORT_BATCH_ITEM_FAILURES] if on_error.report_batch_item_failures else [],
        bisect=on_error.bisect,
        max_retries=on_error.max_retries,
        max_record_age_s=on_error.max_record_age_s,
        parallelization_factor=batch.parallelization_factor,
        max_concurrency=getattr(settings, "max_concurrency", None),
        enabled=route.enabled,
        **common,
    )


def _config_arn(config: Config, settings: Any, kind: str) -> str:
    account = config.account.account_id
    region = getattr(settings, "region", None) or config.account.region
    if kind == "sqs":
        if settings.queue_arn:
            return str(settings.queue_arn)
        return f"arn:aws:sqs:{region}:{account}:{settings.queue.rstrip('/').rsplit('/', 1)[-1]}"
    if settings.stream_arn:
        return str(settings.stream_arn)
    if kind == "kinesis":
        return f"arn:aws:kinesis:{region}:{account}:stream/{settings.stream}"
    return f"arn:aws:dynamodb:{region}:{account}:table/{settings.table}"  # the stream's label is not known
