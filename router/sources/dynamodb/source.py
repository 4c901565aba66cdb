"""Table-change source (`kind: dynamodb`): DynamoDB Streams through aiobotocore, with Lambda's ESM semantics.

The stream is found from the table (`describe_table` -> LatestStreamArn) or given as `stream_arn`. Shards are
read in order, parents before children (`router/sources/stream_shards.py`); the stream engine batches,
delivers, retries and checkpoints (per shard, in the source's state_dir). The function receives Lambda's
DynamoDB Streams event: `{"Records": [{eventID, eventName INSERT|MODIFY|REMOVE, eventVersion, eventSource,
awsRegion, dynamodb {ApproximateCreationDateTime, Keys, NewImage, OldImage, SequenceNumber, SizeBytes,
StreamViewType}, eventSourceARN}]}`, images in DynamoDB JSON. A record's age is measured from its
ApproximateCreationDateTime; its lane (parallelization_factor) from its item keys, so changes to one item
stay in order. Route filters see the record as delivered, e.g. `{eventName: [INSERT]}` or
`{dynamodb: {NewImage: {status: {S: [paid]}}}}`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from router.config.sources.dynamodb import Config
from router.shapes import dynamodb as shapes
from router.sources.stream.engine import StreamRecord
from router.sources.stream.shards import AwsShardClient, Shard, ShardSource, arrival_epoch

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.core.ports import SourceContext
    from router.core.writes import WriteJournal

RECORD_OVERHEAD = 380  # bytes of JSON around one record's images in the event


class StreamsDisabled(Exception):
    pass


class DynamoDBClient(AwsShardClient):
    info_key = "DDBStreamBatchInfo"
    max_limit = 1000
    block = "dynamodb"  # where a record keeps its sequence number and arrival time
    sequence_key = "SequenceNumber"
    arrival_key = "ApproximateCreationDateTime"

    def __init__(self, client: Any, stream_arn: str, source_name: str) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.source_name = source_name

    @classmethod
    async def open(cls, stack: contextlib.AsyncExitStack, config: Config, source_name: str) -> DynamoDBClient:
        from aiobotocore.session import get_session

        session = get_session()
        arn = config.stream_arn
        if arn is None:
            async with session.create_client("dynamodb", **config.client_args()) as tables:
                described = await tables.describe_table(TableName=config.table)
            arn = described["Table"].get("LatestStreamArn")
            if not arn:
                raise StreamsDisabled(f"table {config.table!r} has no stream (enable StreamSpecification)")
        streams = await stack.enter_async_context(
            session.create_client("dynamodbstreams", **config.client_args())
        )
        return cls(streams, arn, source_name)

    async def shards(self) -> list[Shard]:
        shards: list[Shard] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = (await self.client.describe_stream(**kwargs))["StreamDescription"]
            for s in description.get("Shards", []):
                parents = (s["ParentShardId"],) if s.get("ParentShardId") else ()
                closed = "EndingSequenceNumber" in s.get("SequenceNumberRange", {})
                shards.append(Shard(s["ShardId"], parents, closed))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs = {"StreamArn": self.stream_arn, "ExclusiveStartShardId": last}

    async def iterator(self, shard_id: str, kind: str, sequence: str | None = None) -> str:
        kwargs: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": kind,
        }
        if sequence is not None:
            kwargs["SequenceNumber"] = sequence
        return str((await self.client.get_shard_iterator(**kwargs))["ShardIterator"])

    def build(self, shard_id: str, raw: Any) -> StreamRecord:
        d = raw["dynamodb"]
        created = arrival_epoch(d.get("ApproximateCreationDateTime"))
        keys = shapes.from_boto(d["Keys"])
        new, old = d.get("NewImage"), d.get("OldImage")
        rec = shapes.record(
            raw["eventName"],
            keys,
            new_image=shapes.from_boto(new) if new is not None else None,
            old_image=shapes.from_boto(old) if old is not None else None,
            sequence_number=d["SequenceNumber"],
            stream_arn=self.stream_arn,
            view_type=d.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
            size_bytes=d.get("SizeBytes"),
            approx_time=created,
            event_id=raw.get("eventID"),
            ttl=raw.get("userIdentity", {}).get("principalId") == "dynamodb.amazonaws.com",
        )
        envelope = shapes.envelope(rec, source_name=self.source_name)
        size = RECORD_OVERHEAD + 2 * int(rec["dynamodb"]["SizeBytes"] or 0)
        return StreamRecord(
            position=int(d["SequenceNumber"]),
            envelope=envelope,
            arrival=created,
            size=size,
            key=shapes.key_subject(keys),
        )

    def written_by(self, writes: WriteJournal, raw: Any) -> str | None:
        table = self.stream_arn.split(":table/", 1)[-1].split("/", 1)[0]
        return writes.take_dynamodb(table, raw["dynamodb"]["Keys"])


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    if (settings.table is None) == (settings.stream_arn is None):
        problems.append(f"{where}: give exactly one of table, stream_arn")
    if settings.stream_arn is not None and "/stream/" not in settings.stream_arn:
        problems.append(f"{where}.stream_arn: {settings.stream_arn!r} is not a DynamoDB stream ARN")


def create(ctx: SourceContext) -> ShardSource:
    config: Config = ctx.config

    async def open_client(stack: contextlib.AsyncExitStack) -> DynamoDBClient:
        return await DynamoDBClient.open(stack, config, ctx.name)

    return ShardSource(ctx, open_client, starting_position=config.starting_position)
