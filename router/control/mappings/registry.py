"""The event source mappings of the Lambda API: created, changed and removed through the API, persisted, run
by the daemon as sources, and listed next to the config file's own.

`MappingRegistry(config, state_dir, catalog, port)`:

* `await start()` loads the persisted mappings (router/control/mappings/store.py) and hands the daemon the
  whole set through the port (router/control/mappings/port.py); `await reload(config)` hands it again for a
  new config (the `aws:` section may have moved).
* `await create(req)`, `await update(uuid, req)`, `await delete(uuid)` check the request as Lambda does
  (router/control/mappings/model.py), persist the change first (it survives `kill -9` once the call
  returns), then hand the daemon the new set, and answer with the mapping in its new transitional State
  (Creating, Enabling, Updating, Disabling, Deleting). An SQS mapping is refused when its queue cannot be read
  or its visibility timeout is shorter than the function's timeout (Lambda's check).
* `describe(uuid)` and `list(function, event_source_arn)` report the mappings with the State the daemon has
  reached: Enabled once the source runs this mapping's settings and is reading, Disabled once it stopped.
* Config-file routes of SQS, Kinesis, DynamoDB Streams and Kafka sources are listed too, with UUIDs derived
  from their names (router/control/mappings/translate.py); they are read-only: changing or deleting one is a
  ResourceConflictException naming the config file, as for config-file functions.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid as uuids
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from router.control.errors import conflict, invalid_parameter, not_found
from router.control.mappings import model
from router.control.mappings.model import CreateIn, MappingRecord, UpdateIn, source_kind
from router.control.mappings.port import NO_RECORDS, MappedSource, MappingPort
from router.control.mappings.render import configuration
from router.control.mappings.store import MappingStore
from router.control.mappings.translate import ConfigMapping, config_mappings, mapped_source, source_name
from router.control.names import parse_function_name
from router.core.arn import parse_arn

if TYPE_CHECKING:
    from router.config import Config
    from router.control.catalog import FunctionCatalog

log = logging.getLogger("router.control.mappings")

USER_INITIATED = "USER_INITIATED"
CONFIG_FILE = "Defined in the router's config file: read-only through the API"


class MappingNotFound(Exception):
    pass


class MappingRegistry:
    def __init__(self, config: Config, state_dir: Path, catalog: FunctionCatalog, port: MappingPort) -> None:
        self.config = config
        self.catalog = catalog
        self.port = port
        self.store = MappingStore(state_dir / "event-source-mappings")
        self.records: dict[str, MappingRecord] = {}
        self.lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        async with self.lock:
            self.records = await asyncio.to_thread(self.store.load)
            self._apply()

    async def reload(self, config: Config) -> None:
        async with self.lock:
            self.config = config
            self._apply()

    def _apply(self) -> None:
        self.port.apply({source_name(u): self._wanted(r) for u, r in self.records.items()})

    def _wanted(self, record: MappingRecord) -> MappedSource | None:
        return mapped_source(source_name(record.uuid), record, self.config) if record.enabled else None

    # -- reading --------------------------------------------------------------------------------------

    def describe(self, uuid: str) -> dict[str, Any]:
        record = self.records.get(uuid)
        if record is not None:
            return self._render(record, *self._state(record))
        for cm in config_mappings(self.config):
            if cm.record.uuid == uuid:
                return self._render_config(cm)
        raise MappingNotFound(uuid)

    def list(self, function: str | None = None, event_source_arn: str | None = None) -> list[dict[str, Any]]:
        name = parse_function_name(function).name if function else None
        out = []
        for cm in config_mappings(self.config):
            if _selected(cm.record, name, event_source_arn):
                out.append(self._render_config(cm))
        for record in sorted(self.records.values(), key=lambda r: (r.last_modified, r.uuid)):
            if _selected(record, name, event_source_arn):
                out.append(self._render(record, *self._state(record)))
        return out

    def _state(self, record: MappingRecord) -> tuple[str, str]:
        running = self.port.status(source_name(record.uuid))
        if record.enabled:
            done = running.ready and running.mapped == self._wanted(record)
            return ("Enabled" if done else record.transition), running.last_result
        return ("Disabled" if running.mapped is None else "Disabling"), running.last_result

    def _render(
        self, record: MappingRecord, state: str, last: str, reason: str = USER_INITIATED
    ) -> dict[str, Any]:
        account = self.config.account
        return configuration(
            record,
            state=state,
            reason=reason,
            last_result=last,
            region=account.region,
            account=account.account_id,
        )

    def _render_config(self, cm: ConfigMapping) -> dict[str, Any]:
        running = self.port.status(cm.source)
        state = "Disabled" if not cm.route_enabled else "Enabled" if running.ready else "Creating"
        return self._render(cm.record, state, running.last_result, CONFIG_FILE)

    # -- changes --------------------------------------------------------------------------------------

    async def create(self, req: CreateIn) -> dict[str, Any]:
        if not req.function_name:
            raise invalid_parameter("FunctionName is required")
        function = self._function(req.function_name)
        kind, source = _source_of(req)
        record = MappingRecord(
            uuid=str(uuids.uuid4()),
            function_name=function,
            batch_size=req.batch_size if req.batch_size is not None else model.DEFAULT_BATCH[kind],
            window_s=req.maximum_batching_window_in_seconds,
            starting_position=req.starting_position,
            starting_position_timestamp=req.starting_position_timestamp,
            enabled=True if req.enabled is None else req.enabled,
            transition="Creating",
            last_modified=time.time(),
            **source,
            **_changes(req),
        )
        self._check(record, kind)
        async with self.lock:
            self._refuse_duplicate(record)
            if kind == "sqs":
                await self._check_queue(record)
            await asyncio.to_thread(self.store.save, record)
            self.records[record.uuid] = record
            self._apply()
        log.info("event source mapping created", extra={"fields": _fields(record)})
        return self._render(record, "Creating" if record.enabled else "Disabled", NO_RECORDS)

    async def update(self, uuid: str, req: UpdateIn) -> dict[str, Any]:
        async with self.lock:
            record = self._writable(uuid)
            changes = _changes(req)
            if req.function_name is not None:
                changes["function_name"] = self._function(req.function_name)
            if req.batch_size is not None:
                changes["batch_size"] = req.batch_size
            if req.maximum_batching_window_in_seconds is not None:
                changes["window_s"] = req.maximum_batching_window_in_seconds
            if req.enabled is not None:
                changes["enabled"] = req.enabled
            transition = "Enabling" if req.enabled and not record.enabled else "Updating"
            updated = msgspec.structs.replace(
                record, **changes, transition=transition, last_modified=time.time()
            )
            self._check(updated, source_kind(updated))
            if source_kind(updated) == "sqs" and updated.function_name != record.function_name:
                await self._check_queue(updated)
            await asyncio.to_thread(self.store.save, updated)
            self.records[uuid] = updated
            self._apply()
        log.info(
            "event source mapping updated", extra={"fields": {**_fields(updated), "changed": sorted(changes)}}
        )
        state = transition if updated.enabled else "Disabling" if record.enabled else "Disabled"
        return self._render(updated, state, self.port.status(source_name(uuid)).last_result)

    async def delete(self, uuid: str) -> dict[str, Any]:
        async with self.lock:
            record = self._writable(uuid)
            await asyncio.to_thread(self.store.delete, uuid)
            del self.records[uuid]
            self._apply()
        log.info("event source mapping deleted", extra={"fields": _fields(record)})
        return self._render(record, "Deleting", self.port.status(source_name(uuid)).last_result)

    # -- checks ---------------------------------------------------------------------------------------

    def _function(self, function_name: str) -> str:
        ref = parse_function_name(function_name)
        if not ref.is_latest:
            raise not_found(self.catalog.arn(ref.name, ref.qualifier))
        self.catalog.require(ref.name)
        return ref.name

    def _writable(self, uuid: str) -> MappingRecord:
        record = self.records.get(uuid)
        if record is not None:
            return record
        if any(cm.record.uuid == uuid for cm in config_mappings(self.config)):
            raise conflict(
                f"The event source mapping {uuid} is a route of the router's config file and is read-only "
                "through the API; change the config file and reload the router (SIGHUP) instead"
            )
        raise MappingNotFound(uuid)

    def _check(self, record: MappingRecord, kind: str) -> None:
        model.check(record, kind, fifo=(record.event_source_arn or "").endswith(".fifo"))
        if record.on_failure is not None:
            target = parse_arn(record.on_failure)
            if target is None or target.service != "lambda" or not target.resource.startswith("function:"):
                raise invalid_parameter(
                    f"DestinationConfig.OnFailure.Destination {record.on_failure!r}: the router's on-failure "
                    "destinations for event source mappings are Lambda function ARNs"
                )
            self.catalog.require(target.resource.split(":")[1])

    def _refuse_duplicate(self, record: MappingRecord) -> None:
        for other in self.records.values():
            same_source = (other.event_source_arn, other.kafka_brokers, other.topics) == (
                record.event_source_arn,
                record.kafka_brokers,
                record.topics,
            )
            if same_source and other.function_name == record.function_name:
                source = record.event_source_arn or ",".join(record.topics)
                raise conflict(
                    f"The event source arn ({source}) and function ({record.function_name}) provided mapping "
                    f"already exists. Please update or delete the existing mapping with UUID {other.uuid}"
                )

    async def _check_queue(self, record: MappingRecord) -> None:
        """Lambda's check: the queue exists and its visibility timeout is at least the function's timeout."""
        from router.control.mappings.queues import visibility_timeout

        timeout = self.catalog.require(record.function_name).config.timeout_s
        mapped = mapped_source(source_name(record.uuid), record, self.config)
        visibility = await visibility_timeout(mapped.settings, self.config.account.region)
        if visibility < timeout:
            raise invalid_parameter(
                f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
                f"{timeout} seconds"
            )


def _selected(record: MappingRecord, function: str | None, event_source_arn: str | None) -> bool:
    if function is not None and record.function_name != function:
        return False
    return event_source_arn is None or record.event_source_arn == event_source_arn


def _source_of(req: CreateIn) -> tuple[str, dict[str, Any]]:
    """The kind and the source members of a new mapping: an EventSourceArn or a self-managed Kafka cluster."""
    if req.event_source_arn and req.self_managed_event_source:
        raise invalid_parameter("Give either EventSourceArn or SelfManagedEventSource, not both")
    if req.event_source_arn:
        if req.topics:
            raise invalid_parameter("Topics applies to Kafka event sources only")
        return model.event_source_kind(req.event_source_arn), {"event_source_arn": req.event_source_arn}
    if req.self_managed_event_source is None:
        raise invalid_parameter("Either EventSourceArn or SelfManagedEventSource is required")
    brokers = req.self_managed_event_source.endpoints.get(model.KAFKA_BOOTSTRAP_SERVERS, [])
    if not brokers:
        raise invalid_parameter("SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS is required")
    if not req.topics or len(req.topics) != 1:
        raise invalid_parameter("Topics must name exactly one Kafka topic")
    group = req.self_managed_kafka_event_source_config
    return "kafka", {
        "kafka_brokers": list(brokers),
        "topics": list(req.topics),
        "consumer_group_id": group.consumer_group_id if group is not None else None,
    }


def _changes(req: UpdateIn) -> dict[str, Any]:
    """The record fields an update (or a create) sets, besides function, batch size, window and Enabled."""
    out: dict[str, Any] = {}
    if req.filter_criteria is not None:
        out["filters"] = [f.pattern or "" for f in req.filter_criteria.filters]
    if req.function_response_types is not None:
        out["response_types"] = list(req.function_response_types)
    if req.bisect_batch_on_function_error is not None:
        out["bisect"] = req.bisect_batch_on_function_error
    if req.maximum_retry_attempts is not None:
        out["max_retries"] = req.maximum_retry_attempts
    if req.maximum_record_age_in_seconds is not None:
        out["max_record_age_s"] = req.maximum_record_age_in_seconds
    if req.parallelization_factor is not None:
        out["parallelization_factor"] = req.parallelization_factor
    if req.destination_config is not None:
        on_failure = req.destination_config.on_failure
        out["on_failure"] = on_failure.destination if on_failure is not None else None
    if req.scaling_config is not None:
        out["max_concurrency"] = req.scaling_config.maximum_concurrency
    if req.tumbling_window_in_seconds:
        raise invalid_parameter("TumblingWindowInSeconds: tumbling windows are not implemented by the router")
    if req.source_access_configurations is not None:
        refused = [a.type for a in req.source_access_configurations if a.type not in model.IGNORED_ACCESS]
        if refused:
            raise invalid_parameter(
                f"SourceAccessConfigurations of type {', '.join(refused)}: the router connects to Kafka "
                "without authentication (VPC_SUBNET and VPC_SECURITY_GROUP are accepted and ignored)"
            )
        out["source_access"] = [{"Type": a.type, "URI": a.uri} for a in req.source_access_configurations]
    return out


def _fields(record: MappingRecord) -> dict[str, Any]:
    source = record.event_source_arn or ",".join(record.topics)
    return {
        "uuid": record.uuid,
        "function": record.function_name,
        "event_source": source,
        "enabled": record.enabled,
    }
