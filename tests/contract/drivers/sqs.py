"""SQS drivers: the SQS source and the SNS source (which reads an SQS queue subscribed to its topic), on moto.

* `sqs`: an event is a message sent to a fresh queue, its body the key; acknowledged = the queue holds no
  message any more, visible or in flight (the suite has one event outstanding at a time, so that is this
  event's message deleted).
* `sns`: an event is a notification published to a fresh topic, its message the key; acknowledged = the
  router's subscribed queue (`router-sns-<topic>`) holds no message any more.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.contract.drivers.base import Event, KindDriver
from tests.support import aws_client


async def queue_empty(sqs: Any, queue_url: str) -> bool:
    attrs = await asyncio.to_thread(
        sqs.get_queue_attributes,
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    counts = attrs["Attributes"]
    return (
        int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"]) == 0
    )


class SqsDriver(KindDriver):
    kind = "sqs"
    name = "sqs"
    services = ("moto_server",)

    async def prepare(self) -> None:
        self.endpoint = self.services["moto_server"]
        self.queue = f"contract-{self.token()}"
        self.sqs = aws_client("sqs", self.endpoint)
        created = await asyncio.to_thread(self.sqs.create_queue, QueueName=self.queue)
        self.queue_url = created["QueueUrl"]

    def source_yaml(self) -> str:
        return f'queue: {self.queue}\nendpoint: "{self.endpoint}"\nwait_time_s: 1\nstop_grace_s: 1'

    async def produce(self) -> Event:
        key = self.token()
        await asyncio.to_thread(self.sqs.send_message, QueueUrl=self.queue_url, MessageBody=key)
        return Event(key)

    def keys(self, event: Any) -> list[str]:
        return [r["body"] for r in event["Records"]]

    async def acknowledged(self, event: Event) -> bool:
        return await queue_empty(self.sqs, self.queue_url)


class SnsDriver(KindDriver):
    kind = "sns"
    name = "sns"
    services = ("moto_server",)

    async def prepare(self) -> None:
        self.endpoint = self.services["moto_server"]
        self.topic = f"contract-{self.token()}"
        self.sns = aws_client("sns", self.endpoint)
        self.sqs = aws_client("sqs", self.endpoint)
        self.topic_arn = (await asyncio.to_thread(self.sns.create_topic, Name=self.topic))["TopicArn"]
        self.queue_url = ""

    def source_yaml(self) -> str:
        return (
            f'topic_arn: "{self.topic_arn}"\nqueue: router-sns-{self.topic}\n'
            f'endpoint: "{self.endpoint}"\nwait_time_s: 1'
        )

    async def started(self, source: Any) -> None:
        got = await asyncio.to_thread(self.sqs.get_queue_url, QueueName=f"router-sns-{self.topic}")
        self.queue_url = got["QueueUrl"]

    async def produce(self) -> Event:
        key = self.token()
        await asyncio.to_thread(self.sns.publish, TopicArn=self.topic_arn, Message=key, Subject="contract")
        return Event(key)

    def keys(self, event: Any) -> list[str]:
        return [r["Sns"]["Message"] for r in event["Records"]]

    async def acknowledged(self, event: Event) -> bool:
        return await queue_empty(self.sqs, self.queue_url)
