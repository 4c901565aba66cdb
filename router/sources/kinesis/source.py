"""Stream source (`kind: kinesis`): Kinesis Data Streams through aiobotocore, with Lambda's mapping semantics.

Every shard is read in order and follows the shard tree (parents before children after a split or
merge); the stream engine (`router/sources/stream.py`) batches, delivers, retries and checkpoints;
checkpoints are kept per shard in the source's state_dir (`router/sources/stream_shards.py`,
`stream_checkpoints.py`). The function receives Lambda's Kinesis event: `{"Records": [{"kinesis":
{kinesisSchemaVersion, partitionKey, sequenceNumber, data (base64), approximateArrivalTimestamp},
eventSource, eventVersion, eventID "<shardId>:<sequenceNumber>", eventName, invokeIdentityArn, awsRegion,
eventSourceARN}]}`. A record's age is measured from its approximateArrivalTimestamp; its lane
(parallelization_factor) from its partition key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

from router.config.sources.kinesis import Config
from router.shapes import kinesis as shapes
from router.sources.stream.engine import StreamRecord
from router.sources.stream.shards import AwsShardClient, Shard, ShardSource, arrival_epoch

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.core.ports import SourceContext
    from router.core.writes import WriteJournal

RECORD_OVERHEAD = 420  # bytes of JSON around one record's data in the event


class KinesisClient(AwsShardClient):
    info_key = "KinesisBatchInfo"
    max_limit = 10_000
    block = "kinesis"  # where a record keeps its sequence number and arrival time
    sequence_key = "sequenceNumber"
    arrival_key = "approximateArrivalTimestamp"

    def __init__(self, client: Any, config: Config, stream_arn: str, source_name: str) -> None:
        self.client = client
        self.config = config
        self.stream_arn = stream_arn
        self.source_name = source_name
        # By name: every service takes it, and some emulators (moto) lose the stream in iterators made by ARN.
        self._stream = {"StreamName": stream_arn.rsplit(":stream/", 1)[-1]}

    @classmethod
    async def open(cls, stack: contextlib.AsyncExitStack, config: Config, source_name: str) -> KinesisClient:
        from aiobotocore.session import get_session

        client = await stack.enter_async_context(
            get_session().create_client("kinesis", **config.client_args())
        )
        arn = config.stream_arn
        if arn is None:
            summary = await client.describe_stream_summary(StreamName=config.stream)
            arn = summary["StreamDescriptionSummary"]["StreamARN"]
        return cls(client, config, arn, source_name)

    async def shards(self) -> list[Shard]:
        shards: list[Shard] = []
        kwargs: dict[str, Any] = dict(self._stream)
        while True:
            page = await self.client.list_shards(**kwargs)
            for s in page.get("Shards", []):
                parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
                closed = "EndingSequenceNumber" in s.get("SequenceNumberRange", {})
                shards.append(Shard(s["ShardId"], parents, closed))
            token = page.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    async def iterator(self, shard_id: str, kind: str, sequence: str | None = None) -> str:
        kwargs: dict[str, Any] = {**self._stream, "ShardId": shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            kwargs["StartingSequenceNumber"] = sequence
        if kind == "AT_TIMESTAMP":
            kwargs["Timestamp"] = dt.datetime.fromtimestamp(
                self.config.starting_position_timestamp or 0, dt.UTC
            )
        return str((await self.client.get_shard_iterator(**kwargs))["ShardIterator"])

    def build(self, shard_id: str, raw: Any) -> StreamRecord:
        arrival = arrival_epoch(raw.get("ApproximateArrivalTimestamp"))
        rec = shapes.record(
            stream_arn=self.stream_arn,
            shard_id=shard_id,
            sequence_number=raw["SequenceNumber"],
            partition_key=raw["PartitionKey"],
            data=raw["Data"],
            arrival_ts=arrival,
        )
        envelope = shapes.envelope(rec, source_name=self.source_name)
        size = RECORD_OVERHEAD + len(rec["kinesis"]["data"]) + len(raw["PartitionKey"])
        return StreamRecord(
            position=int(raw["SequenceNumber"]),
            envelope=envelope,
            arrival=arrival,
            size=size,
            key=raw["PartitionKey"],
        )

    def written_by(self, writes: WriteJournal, raw: Any) -> str | None:
        return writes.take_kinesis(self.stream_arn.rsplit("/", 1)[-1], raw["PartitionKey"], raw["Data"])


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    if (settings.stream is None) == (settings.stream_arn is None):
        problems.append(f"{where}: give exactly one of stream, stream_arn")
    if settings.stream_arn is not None and ":stream/" not in settings.stream_arn:
        problems.append(f"{where}.stream_arn: {settings.stream_arn!r} is not a Kinesis stream ARN")
    if settings.starting_position == "AT_TIMESTAMP" and settings.starting_position_timestamp is None:
        problems.append(f"{where}.starting_position_timestamp: required with starting_position AT_TIMESTAMP")


def create(ctx: SourceContext) -> ShardSource:
    config: Config = ctx.config

    async def open_client(stack: contextlib.AsyncExitStack) -> KinesisClient:
        return await KinesisClient.open(stack, config, ctx.name)

    return ShardSource(ctx, open_client, starting_position=config.starting_position)
