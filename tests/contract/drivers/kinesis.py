"""The Kinesis driver: an event is one record put into a fresh one-shard stream on moto, its data the key.

Acknowledged and refused as for every shard-based kind (tests/contract/drivers/shards.py).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from tests.contract.drivers.base import Event
from tests.contract.drivers.shards import FAST_POLLING, ShardDriver
from tests.support import aws_client


class KinesisDriver(ShardDriver):
    kind = "kinesis"
    name = "kinesis"

    async def prepare(self) -> None:
        self.endpoint = self.services["moto_server"]
        self.stream = f"contract-{self.token()}"
        self.client = aws_client("kinesis", self.endpoint)
        await asyncio.to_thread(self.client.create_stream, StreamName=self.stream, ShardCount=1)

    def source_yaml(self) -> str:
        return f'endpoint: "{self.endpoint}"\nstream: {self.stream}\n{FAST_POLLING}'

    async def produce(self) -> Event:
        key = self.token()
        put = await asyncio.to_thread(
            self.client.put_record, StreamName=self.stream, Data=key.encode(), PartitionKey="contract"
        )
        return Event(key, (put["ShardId"], int(put["SequenceNumber"])))

    def keys(self, event: Any) -> list[str]:
        return [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]

    async def position(self, event: Event) -> tuple[str, int]:
        shard, sequence = event.handle
        return str(shard), int(sequence)
