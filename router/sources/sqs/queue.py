"""One SQS queue through aiobotocore: what the SQS and SNS sources call on it.

`await Queue.open(sqs, queue=..., queue_arn=...)` finds the queue (by URL, name or ARN) and reads the
attributes the pollers need: its ARN, FIFO or not, its visibility timeout and its redrive policy's
dead-letter queue. Then:

* `await receive(max_messages, wait_s)`: one long poll (every system and message attribute). Cancelled
  mid-poll, it lets the poll end (at most `wait_s` + 2 s) and makes what it got visible again at once, so
  that a stop does not hide messages nobody has for the queue's visibility timeout; it then re-raises.
* `await delete(messages)`: DeleteMessageBatch, 10 at a time; entries SQS refuses are logged (the message then
  comes back after its visibility timeout: a duplicate, never a loss).
* `await release(messages)`: ChangeMessageVisibility to 0, so they are received again now.
* `await dead_letter(messages)`: send copies to the queue's dead-letter queue (body, message attributes, FIFO
  group), for messages Lambda would not retry (a recursive loop); the caller deletes them afterwards.

Client errors propagate (BotoCoreError, ClientError, OSError): the caller backs off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.core.arn import parse_arn

log = logging.getLogger("router.sources.sqs")

MAX_PER_CALL = 10  # ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch take at most 10


def client_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, OSError, asyncio.TimeoutError)


def client_config(wait_s: int) -> Any:
    from aiobotocore.config import AioConfig

    retries = {"max_attempts": 2, "mode": "standard"}
    return AioConfig(retries=retries, connect_timeout=5, read_timeout=wait_s + 15)


def _chunks(items: Sequence[Any], n: int = MAX_PER_CALL) -> list[Sequence[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


@dataclass
class Queue:
    sqs: Any  # an aiobotocore SQS client
    url: str
    arn: str
    fifo: bool
    visibility_timeout_s: int
    dead_letter_arn: str | None

    @classmethod
    async def open(cls, sqs: Any, *, queue: str | None = None, queue_arn: str | None = None) -> Queue:
        url = await _queue_url(sqs, queue, queue_arn)
        names = ["QueueArn", "VisibilityTimeout", "RedrivePolicy", "FifoQueue"]
        attrs = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)).get("Attributes", {})
        dead_letter = None
        if attrs.get("RedrivePolicy"):
            with contextlib.suppress(ValueError, TypeError):
                dead_letter = json.loads(attrs["RedrivePolicy"]).get("deadLetterTargetArn")
        return cls(
            sqs=sqs,
            url=url,
            arn=attrs.get("QueueArn") or queue_arn or "",
            fifo=attrs.get("FifoQueue") == "true" or url.endswith(".fifo"),
            visibility_timeout_s=int(attrs.get("VisibilityTimeout", 30)),
            dead_letter_arn=dead_letter,
        )

    async def receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        poll = asyncio.ensure_future(
            self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(max_messages, MAX_PER_CALL)),
                WaitTimeSeconds=wait_s,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        )
        try:
            resp = await asyncio.shield(poll)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # best effort while stopping: SQS redelivers anyway
                resp = await asyncio.wait_for(poll, timeout=wait_s + 2)
                await self.release(resp.get("Messages", []))
            raise
        return list(resp.get("Messages", []))

    async def delete(self, messages: Sequence[dict[str, Any]]) -> None:
        for chunk in _chunks(messages):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            resp = await self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            for failed in resp.get("Failed", []):
                log.warning(
                    "sqs refused to delete a message (it returns after its visibility timeout): %s",
                    failed.get("Message") or failed.get("Code"),
                    extra={
                        "fields": {"queue": self.arn, "message_id": chunk[int(failed["Id"])]["MessageId"]}
                    },
                )

    async def release(self, messages: Sequence[dict[str, Any]]) -> None:
        for chunk in _chunks(messages):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(chunk)
            ]
            try:
                await self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            except client_errors() as e:
                log.warning("could not release sqs messages (they return after their timeout): %s", e)

    async def dead_letter(self, messages: Sequence[dict[str, Any]]) -> bool:
        """Copy the messages to the dead-letter queue; False when the queue has none."""
        if self.dead_letter_arn is None:
            return False
        target = await _queue_url(self.sqs, None, self.dead_letter_arn)
        for m in messages:
            args: dict[str, Any] = {"QueueUrl": target, "MessageBody": m.get("Body", "")}
            if m.get("MessageAttributes"):
                args["MessageAttributes"] = m["MessageAttributes"]
            group = m.get("Attributes", {}).get("MessageGroupId")
            if group is not None and target.endswith(".fifo"):
                args["MessageGroupId"] = group
                args["MessageDeduplicationId"] = m["MessageId"]
            await self.sqs.send_message(**args)
        return True


async def _queue_url(sqs: Any, queue: str | None, queue_arn: str | None) -> str:
    if queue is not None and queue.startswith(("http://", "https://")):
        return queue
    if queue is not None:
        return str((await sqs.get_queue_url(QueueName=queue))["QueueUrl"])
    arn = parse_arn(queue_arn or "")
    if arn is None or arn.service != "sqs":
        raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
    args = {"QueueName": arn.resource}
    if arn.account:
        args["QueueOwnerAWSAccountId"] = arn.account
    return str((await sqs.get_queue_url(**args))["QueueUrl"])
