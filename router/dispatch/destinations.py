"""Destinations: where an asynchronous event's invocation record goes when it succeeds or is given up.

The record is Lambda's invocation record (`invocation_record`):

    {"version": "1.0", "timestamp": "...Z",
     "requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "requestPayload": <the event>,
     "responseContext": {"statusCode", "executedVersion", "functionError"?},
     "responsePayload": <the function's response or error>}

`condition` is "Success" (on_success), "RetriesExhausted" (function errors past max_retries) or
"EventAgeExceeded" (older than max_event_age_s without a successful run).

A `Destination` (router.config) is one of:

* `directory`: one JSON file per record, named `<UTC time>-<request id>.json`, written atomically (a
  temporary file in the same folder, fsync, rename, fsync of the folder): a reader never sees half a record,
  and a record seen once is there after a crash.
* `function`: the record is the payload of an asynchronous invocation of that function (queued durably).
* `kafka`: the record is produced to the topic, keyed by request id (aiokafka, imported only when used).

`deliver` raises `DestinationError` when the destination cannot take the record; the caller decides what
that means (the async scheduler counts it and drops the event, as Lambda does when its DLQ write fails).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from router.config import Destination
from router.core import timefmt
from router.core.durable import write_atomically
from router.core.results import InvocationResult

CONDITION_SUCCESS = "Success"
CONDITION_RETRIES_EXHAUSTED = "RetriesExhausted"
CONDITION_EVENT_AGE_EXCEEDED = "EventAgeExceeded"

Enqueue = Callable[..., Awaitable[str]]  # Dispatcher.enqueue(function, payload, *, trace=..., source=...)

_encoder = msgspec.json.Encoder()


class DestinationError(Exception):
    pass


def _json_or_text(data: bytes) -> Any:
    """A payload as the record carries it: parsed JSON, or the text when it is not JSON."""
    if not data:
        return None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data.decode("utf-8", "replace")


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    timestamp: float,
    result: InvocationResult | None = None,
    error_status: int = 500,
    error_payload: dict[str, Any] | None = None,
    executed_version: str = "$LATEST",
) -> dict[str, Any]:
    """Lambda's invocation record. Without `result` (the function never ran), the error is the system's."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
    if result is not None:
        if result.function_error is not None:
            response["functionError"] = result.function_error
        payload = _json_or_text(result.payload)
    else:
        response["statusCode"] = error_status
        payload = error_payload
    return {
        "version": "1.0",
        "timestamp": timefmt.iso_ms(timestamp),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:{executed_version}",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
        "responseContext": response,
        "responsePayload": payload,
    }


def write_record_file(directory: Path, record: dict[str, Any], *, name: str) -> Path:
    """Write one JSON record atomically into `directory` as `name`; returns its path. Blocking."""
    final = directory / name
    write_atomically(final, _encoder.encode(record))
    return final


def record_file_name(record: dict[str, Any]) -> str:
    stamp = record["timestamp"].replace("-", "").replace(":", "")
    return f"{stamp}-{record['requestContext']['requestId']}.json"


async def deliver(
    destination: Destination,
    record: dict[str, Any],
    *,
    resolve: Callable[[str], Path],
    enqueue: Enqueue,
    trace: str | None = None,
) -> str:
    """Send `record` to `destination`; returns where it went (for logs). Raises DestinationError."""
    try:
        if destination.directory is not None:
            path = await asyncio.to_thread(
                write_record_file, resolve(destination.directory), record, name=record_file_name(record)
            )
            return str(path)
        if destination.function is not None:
            request_id = await enqueue(
                destination.function, _encoder.encode(record), trace=trace, source="destination"
            )
            return f"function {destination.function} (request {request_id})"
        if destination.kafka is not None:
            await _produce(destination.kafka.brokers, destination.kafka.topic, record, trace)
            return f"kafka topic {destination.kafka.topic}"
    except DestinationError:
        raise
    except Exception as e:
        raise DestinationError(f"{describe(destination)}: {e}") from e
    raise DestinationError("destination names no directory, function or kafka topic")


def describe(destination: Destination) -> str:
    if destination.directory is not None:
        return f"directory {destination.directory}"
    if destination.function is not None:
        return f"function {destination.function}"
    if destination.kafka is not None:
        return f"kafka topic {destination.kafka.topic}"
    return "empty destination"


def kind(destination: Destination) -> str:
    return next(
        (k for k in ("directory", "function", "kafka") if getattr(destination, k) is not None), "none"
    )


async def _produce(brokers: list[str], topic: str, record: dict[str, Any], trace: str | None = None) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=",".join(brokers), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        key = str(record["requestContext"]["requestId"]).encode()
        # The trace header lets a Kafka source reading this topic continue the chain (router/loops.py).
        headers = [("X-Amzn-Trace-Id", trace.encode())] if trace else None
        await producer.send_and_wait(topic, _encoder.encode(record), key=key, headers=headers)
    finally:
        await producer.stop()
