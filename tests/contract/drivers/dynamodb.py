"""The DynamoDB Streams driver: an event is one item put into a fresh table on moto, its `id` the key.

Acknowledged and refused as for every shard-based kind (tests/contract/drivers/shards.py); the record's
sequence number is read from the table's stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.contract.drivers.base import Event
from tests.contract.drivers.shards import FAST_POLLING, ShardDriver
from tests.support import aws_client


class DynamoDBDriver(ShardDriver):
    kind = "dynamodb"
    name = "dynamodb"

    async def prepare(self) -> None:
        self.endpoint = self.services["moto_server"]
        self.table = f"contract-{self.token()}"
        self.client = aws_client("dynamodb", self.endpoint)
        self.streams = aws_client("dynamodbstreams", self.endpoint)
        await asyncio.to_thread(
            self.client.create_table,
            TableName=self.table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )

    def source_yaml(self) -> str:
        return f'endpoint: "{self.endpoint}"\ntable: {self.table}\n{FAST_POLLING}'

    async def produce(self) -> Event:
        key = self.token()
        await asyncio.to_thread(self.client.put_item, TableName=self.table, Item={"id": {"S": key}})
        return Event(key)

    def keys(self, event: Any) -> list[str]:
        return [r["dynamodb"]["Keys"]["id"]["S"] for r in event["Records"]]

    async def position(self, event: Event) -> tuple[str, int]:
        if event.handle is None:
            event.handle = await asyncio.to_thread(self._find, event.key)
        shard, sequence = event.handle
        return str(shard), int(sequence)

    def _find(self, key: str) -> tuple[str, int]:
        """The shard and sequence number of the item's change, read from the table's stream."""
        arn = self.client.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator)
                for record in page["Records"]:
                    if record["dynamodb"]["Keys"]["id"]["S"] == key:
                        return shard["ShardId"], int(record["dynamodb"]["SequenceNumber"])
                iterator = page.get("NextShardIterator") if page["Records"] else None
        raise AssertionError(f"no change of item {key!r} in the stream of {self.table}")
