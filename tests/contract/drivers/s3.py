"""S3 drivers: the emulated bucket (a watched folder) and the SQS notification mode against moto.

* folder (`s3`): an event is a file written into the folder (written under a hidden name, then renamed, so
  the source sees it complete); acknowledged = its version recorded in `<state_dir>/objects.jsonl`.
* SQS notifications (`s3-sqs`): an event is an object put into a moto bucket whose notifications go to an
  SQS queue; acknowledged = the queue holds no message any more, visible or in flight (the suite has one
  event outstanding at a time, so that is this event's message deleted).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import unquote_plus

from tests.contract.drivers.base import Event, KindDriver
from tests.support import aws_client


def object_keys(event: Any) -> list[str]:
    return [unquote_plus(r["s3"]["object"]["key"]) for r in event["Records"]]


class S3FolderDriver(KindDriver):
    kind = "s3"
    name = "s3"

    def source_yaml(self) -> str:
        return "bucket: contract\ndirectory: bucket\nstable_s: 0.05"

    async def produce(self) -> Event:
        key = self.token()
        folder = self.tmp_path / "bucket"
        hidden = folder / f".{key}"
        hidden.write_bytes(f"content of {key}\n".encode())
        os.replace(hidden, folder / key)
        return Event(key)

    def keys(self, event: Any) -> list[str]:
        return object_keys(event)

    async def acknowledged(self, event: Event) -> bool:
        journal = self.state_dir / "objects.jsonl"
        recorded: dict[str, bool] = {}
        for line in journal.read_text().splitlines() if journal.exists() else []:
            entry = json.loads(line)
            recorded[entry["k"]] = entry.get("v") is not None
        return recorded.get(event.key, False)


class S3QueueDriver(KindDriver):
    kind = "s3"
    name = "s3-sqs"
    services = ("moto_server",)

    async def prepare(self) -> None:
        self.endpoint = self.services["moto_server"]
        self.bucket = f"contract-{self.token()}"
        self.queue = f"{self.bucket}-events"
        self.s3 = aws_client("s3", self.endpoint)
        self.sqs = aws_client("sqs", self.endpoint)
        await asyncio.to_thread(self._notifying_bucket)

    def _notifying_bucket(self) -> None:
        self.s3.create_bucket(Bucket=self.bucket)
        self.queue_url = self.sqs.create_queue(QueueName=self.queue)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )

    def source_yaml(self) -> str:
        return f'bucket: {self.bucket}\nendpoint: "{self.endpoint}"\nqueue: {self.queue}\nwait_time_s: 1'

    async def produce(self) -> Event:
        key = self.token()
        await asyncio.to_thread(self.s3.put_object, Bucket=self.bucket, Key=key, Body=key.encode())
        return Event(key)

    def keys(self, event: Any) -> list[str]:
        return object_keys(event)

    async def acknowledged(self, event: Event) -> bool:
        attrs = await asyncio.to_thread(
            self.sqs.get_queue_attributes,
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        counts = attrs["Attributes"]
        return (
            int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"])
            == 0
        )
