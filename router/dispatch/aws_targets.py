"""Sending to AWS services through aiobotocore: the SQS, SNS and EventBridge destinations of async events.

`client_args` are aiobotocore's `create_client` keyword arguments (region, endpoint_url, keys), from the
router's `aws:` section (`AwsConfig.client_args`), so any endpoint works: AWS, moto, LocalStack, ElasticMQ.
A client is made per delivery: destinations are the failure path, and this keeps nothing open between them.

* `send_sqs(queue, body, attributes, client_args)`: `queue` is a queue ARN (its URL is looked up with
  GetQueueUrl, by name and owner account) or a queue URL.
* `publish_sns(topic_arn, message, attributes, client_args)`.
* `put_event(bus, detail_type, detail, resources, client_args)`: `bus` is an event bus ARN or name; the
  event's `source` is "lambda", as Lambda's destination events have.

`attributes` are plain strings or numbers, sent as SQS/SNS message attributes of type String or Number.
Every call raises whatever botocore raises; the caller (router.dispatch.destinations) wraps it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

EVENT_SOURCE = "lambda"


def _client(service: str, client_args: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
    from aiobotocore.session import get_session

    return get_session().create_client(service, **client_args)


def message_attributes(attributes: dict[str, str | int] | None) -> dict[str, dict[str, str]]:
    out = {}
    for name, value in (attributes or {}).items():
        kind = "Number" if isinstance(value, int) else "String"
        out[name] = {"DataType": kind, "StringValue": str(value)}
    return out


async def send_sqs(
    queue: str, body: str, attributes: dict[str, str | int] | None, client_args: dict[str, Any]
) -> str:
    """Send one message; returns the queue URL it went to."""
    async with _client("sqs", client_args) as sqs:
        url = queue if queue.startswith(("http://", "https://")) else await _queue_url(sqs, queue)
        args: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
        if attributes:
            args["MessageAttributes"] = message_attributes(attributes)
        await sqs.send_message(**args)
        return url


async def _queue_url(sqs: Any, arn: str) -> str:
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"{arn!r} is not an SQS queue ARN")
    reply = await sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
    return str(reply["QueueUrl"])


async def publish_sns(
    topic_arn: str, message: str, attributes: dict[str, str | int] | None, client_args: dict[str, Any]
) -> None:
    async with _client("sns", client_args) as sns:
        args: dict[str, Any] = {"TopicArn": topic_arn, "Message": message}
        if attributes:
            args["MessageAttributes"] = message_attributes(attributes)
        await sns.publish(**args)


async def put_event(
    bus: str, detail_type: str, detail: str, resources: list[str], client_args: dict[str, Any]
) -> None:
    entry = {
        "Source": EVENT_SOURCE,
        "DetailType": detail_type,
        "Detail": detail,
        "Resources": resources,
        "EventBusName": bus,
    }
    async with _client("events", client_args) as events:
        reply = await events.put_events(Entries=[entry])
    if reply.get("FailedEntryCount"):
        failed = reply["Entries"][0]
        raise RuntimeError(
            f"PutEvents refused the event: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
        )
