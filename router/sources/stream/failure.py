"""Failure records of stream event source mappings, and the destinations that store them.

When a mapping gives records up (retries spent, records too old, a record over the payload cap), one failure
record describes them, in the shape of Lambda's on-failure invocation record for streams:

    {"requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "responseContext": {"statusCode", "executedVersion", "functionError"},   # when the function was called
     "version": "1.0", "timestamp": "2024-01-01T00:00:00.000Z",
     "KafkaBatchInfo" | "KinesisBatchInfo" | "DDBStreamBatchInfo": {partition, first/last position, size...},
     "payload": <the event the function received for these records>}

Lambda leaves the records out of SQS/SNS destinations and includes them ("payload") for S3 and Kafka
destinations; ours always include them, so nothing is lost when a record is given up.

A `FailureSink` stores such records and returns only once the record is durable. It never gives up itself:
when its destination is unavailable it retries with backoff, holding the partition back (the records stay
unsettled, so a crash re-delivers them). Sinks: a directory (one JSON file per record, written to a temporary
name, fsynced and renamed), a function (queued durably as an asynchronous invocation), a Kafka topic, or
none (the record is logged and discarded, as Lambda discards without a destination).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from router.core.arn import lambda_arn
from router.core.durable import write_atomically
from router.core.errors import DispatchError
from router.core.retry import Backoff
from router.core.timefmt import iso_ms

if TYPE_CHECKING:
    from router.config import Destination
    from router.core.clock import Clock
    from router.core.ports import RoutePort, SourceContext
    from router.core.results import InvocationResult

log = logging.getLogger(__name__)

RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
PAYLOAD_SIZE_EXCEEDED = "MaximumPayloadSizeExceeded"

_encode = msgspec.json.Encoder().encode
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def failure_record(
    *,
    condition: str,
    function: str,
    region: str,
    account_id: str,
    info_key: str,
    info: dict[str, Any],
    result: InvocationResult | None,
    invokes: int,
    event: Any,
    now: float,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "requestContext": {
            "requestId": result.request_id if result is not None else str(uuid.uuid4()),
            "functionArn": lambda_arn(function, region, account_id),
            "condition": condition,
            "approximateInvokeCount": invokes,
        },
    }
    if result is not None:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if result.function_error:
            response["functionError"] = result.function_error
        if result.error_type:
            response["errorType"] = result.error_type
        doc["responseContext"] = response
    doc["version"] = "1.0"
    doc["timestamp"] = iso_ms(now)
    doc[info_key] = info
    doc["payload"] = event
    return doc


class FailureSink(Protocol):
    name: str  # for logs and metrics: "directory", "function", "kafka", "none"

    async def put(self, doc: dict[str, Any], *, partition: str, first: int, last: int) -> None: ...

    async def aclose(self) -> None: ...


class _Retrying:
    """Retry `_store` with backoff until it succeeds: an outage holds the partition back, never drops."""

    name = "?"
    clock: Clock

    async def put(self, doc: dict[str, Any], *, partition: str, first: int, last: int) -> None:
        backoff = Backoff(0.1, 5.0)
        while True:
            try:
                await self._store(doc, partition, first, last)
                return
            except Exception as e:  # any failure of the destination: keep the records, try again
                delay = backoff.next()
                log.warning(
                    "failure destination unavailable; retrying",
                    extra={"fields": {"destination": self.name, "error": repr(e), "retry_in_s": delay}},
                )
            await self.clock.sleep(delay)

    async def _store(self, doc: dict[str, Any], partition: str, first: int, last: int) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class DirectorySink(_Retrying):
    name = "directory"

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self.clock = clock

    async def _store(self, doc: dict[str, Any], partition: str, first: int, last: int) -> None:
        stamp = int(self.clock.time() * 1000)
        name = f"{stamp}-{_SAFE.sub('_', partition)}-{first}-{last}-{uuid.uuid4().hex[:8]}.json"
        await asyncio.to_thread(write_atomically, self.directory / name, _encode(doc))


class FunctionSink(_Retrying):
    """Queue the failure record as an asynchronous invocation of another function."""

    name = "function"

    def __init__(self, route: RoutePort, function: str, clock: Clock) -> None:
        self.route = route
        self.function = function
        self.clock = clock

    async def _store(self, doc: dict[str, Any], partition: str, first: int, last: int) -> None:
        try:
            await self.route.enqueue_to(self.function, _encode(doc))
        except DispatchError as e:
            raise RuntimeError(f"{e.code}: {e.message}") from e


class KafkaSink(_Retrying):
    """Produce the failure record to a Kafka topic, keyed by the source partition."""

    name = "kafka"

    def __init__(
        self, brokers: list[str], topic: str, clock: Clock, client: dict[str, Any] | None = None
    ) -> None:
        self.brokers = brokers
        self.topic = topic
        self.clock = clock
        self.client = client or {}
        self._producer: Any = None

    async def _store(self, doc: dict[str, Any], partition: str, first: int, last: int) -> None:
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(bootstrap_servers=self.brokers, acks="all", **self.client)
            await producer.start()
            self._producer = producer
        await self._producer.send_and_wait(self.topic, value=_encode(doc), key=partition.encode())

    async def aclose(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


class DiscardSink:
    """No destination: the failure is logged (by the caller) and the records are dropped, as on Lambda."""

    name = "none"

    async def put(self, doc: dict[str, Any], *, partition: str, first: int, last: int) -> None:
        return None

    async def aclose(self) -> None:
        return None


def build_sink(
    destination: Destination | None,
    *,
    base_dir: Path,
    route: RoutePort,
    clock: Clock,
    kafka_client: dict[str, Any] | None = None,
) -> FailureSink:
    """The sink for a route's `on_error.destination`; relative directories are resolved against base_dir."""
    if destination is None:
        return DiscardSink()
    if destination.directory is not None:
        path = Path(destination.directory)
        return DirectorySink(path if path.is_absolute() else base_dir / path, clock)
    if destination.function is not None:
        return FunctionSink(route, destination.function, clock)
    if destination.kafka is not None:
        return KafkaSink(destination.kafka.brokers, destination.kafka.topic, clock, kafka_client)
    return DiscardSink()


def config_base_dir(ctx: SourceContext) -> Path:
    """The folder relative paths of the config are resolved against: the config file's folder."""
    return Path(ctx.base_dir)
