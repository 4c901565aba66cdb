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
* `function`: the record is the payload of an asynchronous invocation of that function (queued durably);
  `name:qualifier` invokes a published version or an alias.
* `kafka`: the record is produced to the topic, keyed by request id (aiokafka, imported only when used).
* `sqs` / `sns`: the record is the message body, sent to the queue (ARN or URL) or topic ARN;
  `eventbridge`: the record is the `detail` of an event on that bus, `source` "lambda", `detail-type`
  "Lambda Function Invocation Result - Success" (or "- Failure"). These go through aiobotocore
  (router.dispatch.aws_targets) to the endpoint of the router's `aws:` section (`aws=` client arguments).

`deliver_dead_letter` sends the original event (not a record) to a function's dead-letter queue or topic
(Lambda's DeadLetterConfig), with the message attributes RequestID, ErrorCode and ErrorMessage (its first
1 KB), as Lambda does.

`deliver` raises `DestinationError` when the destination cannot take the record; the caller decides what
that means (the async scheduler counts it and drops the event, as Lambda does when its DLQ write fails).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from router.config import Destination, split_qualifier
from router.core import timefmt
from router.core.durable import write_atomically
from router.core.results import InvocationResult

CONDITION_SUCCESS = "Success"
CONDITION_RETRIES_EXHAUSTED = "RetriesExhausted"
CONDITION_EVENT_AGE_EXCEEDED = "EventAgeExceeded"

# Dispatcher.enqueue(function, payload, *, trace=..., source=..., qualifier=...)
Enqueue = Callable[..., Awaitable[str]]
KINDS = ("directory", "function", "kafka", "sqs", "sns", "eventbridge")
DETAIL_TYPES = {
    True: "Lambda Function Invocation Result - Success",
    False: "Lambda Function Invocation Result - Failure",
}
ERROR_MESSAGE_BYTES = 1024

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
    aws: dict[str, Any] | None = None,
) -> str:
    """Send `record` to `destination`; returns where it went (for logs). Raises DestinationError."""
    try:
        return await _deliver(
            destination, record, resolve=resolve, enqueue=enqueue, trace=trace, aws=aws or {}
        )
    except DestinationError:
        raise
    except Exception as e:
        raise DestinationError(f"{describe(destination)}: {e}") from e


async def _deliver(
    destination: Destination,
    record: dict[str, Any],
    *,
    resolve: Callable[[str], Path],
    enqueue: Enqueue,
    trace: str | None,
    aws: dict[str, Any],
) -> str:
    from router.dispatch import aws_targets

    body = _encoder.encode(record)
    if destination.directory is not None:
        path = await asyncio.to_thread(
            write_record_file, resolve(destination.directory), record, name=record_file_name(record)
        )
        return str(path)
    if destination.function is not None:
        name, qualifier = split_qualifier(destination.function)
        pinned = {"qualifier": qualifier} if qualifier else {}
        request_id = await enqueue(name, body, trace=trace, source="destination", **pinned)
        return f"function {destination.function} (request {request_id})"
    if destination.kafka is not None:
        await _produce(destination.kafka.brokers, destination.kafka.topic, record, trace)
        return f"kafka topic {destination.kafka.topic}"
    if destination.sqs is not None:
        return f"sqs {await aws_targets.send_sqs(destination.sqs, body.decode(), None, aws)}"
    if destination.sns is not None:
        await aws_targets.publish_sns(destination.sns, body.decode(), None, aws)
        return f"sns {destination.sns}"
    if destination.eventbridge is not None:
        context = record.get("requestContext", {})
        success = context.get("condition") == CONDITION_SUCCESS
        resources = [context["functionArn"]] if "functionArn" in context else []
        await aws_targets.put_event(
            destination.eventbridge, DETAIL_TYPES[success], body.decode(), resources, aws
        )
        return f"eventbridge {destination.eventbridge}"
    raise DestinationError(f"destination names none of {', '.join(KINDS)}")


async def deliver_dead_letter(
    destination: Destination,
    payload: bytes,
    *,
    request_id: str,
    error_code: int,
    error_message: str,
    aws: dict[str, Any],
) -> str:
    """The original event to an SQS queue or SNS topic, with Lambda's DLQ attributes. DestinationError."""
    from router.dispatch import aws_targets

    attributes: dict[str, str | int] = {
        "RequestID": request_id,
        "ErrorCode": error_code,
        "ErrorMessage": error_message.encode()[:ERROR_MESSAGE_BYTES].decode("utf-8", "ignore") or "-",
    }
    body = payload.decode("utf-8", "replace")
    try:
        if destination.sqs is not None:
            return f"sqs {await aws_targets.send_sqs(destination.sqs, body, attributes, aws)}"
        if destination.sns is not None:
            await aws_targets.publish_sns(destination.sns, body, attributes, aws)
            return f"sns {destination.sns}"
    except Exception as e:
        raise DestinationError(f"dead-letter {describe(destination)}: {e}") from e
    raise DestinationError("a dead-letter target is an SQS queue or an SNS topic")


def error_message(payload: bytes) -> str:
    """The errorMessage of a function error's payload (the payload itself when it is not Lambda's JSON)."""
    value = _json_or_text(payload)
    if isinstance(value, dict) and isinstance(value.get("errorMessage"), str):
        return value["errorMessage"]
    return payload.decode("utf-8", "replace")


def describe(destination: Destination) -> str:
    if destination.kafka is not None:
        return f"kafka topic {destination.kafka.topic}"
    for k in KINDS:
        value = getattr(destination, k)
        if value is not None:
            return f"{k} {value}"
    return "empty destination"


def kind(destination: Destination) -> str:
    return next((k for k in KINDS if getattr(destination, k) is not None), "none")


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
