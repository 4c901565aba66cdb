"""The Kafka driver, on the session's tansu broker: an event is one record produced to partition 0 of a fresh
one-partition topic, its value the key.

Acknowledged = the consumer group's committed offset is past the record's offset, read by a consumer of the
group that never subscribes, so it never joins (the admin client's offset fetch cannot parse tansu's reply).
A refusal leaves the offset where it was; the source retries the same batch on its own.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.contract.drivers.base import Event, KindDriver

# Fast group joins and fetches that do not sit idle (as tests/integration/stream_support.py uses).
FAST_CLIENT = (
    "session_timeout_ms: 2000\nheartbeat_interval_ms: 500\nrebalance_timeout_ms: 2000\nfetch_max_wait_ms: 20"
)


class KafkaDriver(KindDriver):
    kind = "kafka"
    name = "kafka"
    services = ("kafka_broker",)

    async def prepare(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        self.broker = self.services["kafka_broker"]
        self.topic, self.group = f"contract-{self.token()}", f"contract-{self.token()}"
        admin = AIOKafkaAdminClient(bootstrap_servers=self.broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(self.topic, 1, 1)])
        finally:
            await admin.close()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.broker)
        await self.producer.start()
        self.offsets = AIOKafkaConsumer(
            bootstrap_servers=self.broker, group_id=self.group, enable_auto_commit=False
        )
        await self.offsets.start()

    def source_yaml(self) -> str:
        return (
            f'brokers: ["{self.broker}"]\ntopic: {self.topic}\ngroup: {self.group}\n'
            f"starting_position: TRIM_HORIZON\n{FAST_CLIENT}"
        )

    def route_yaml(self) -> str:
        return "batch: {size: 10, window_s: 0}"

    async def produce(self) -> Event:
        key = self.token()
        sent = await (await self.producer.send(self.topic, value=key.encode(), partition=0))
        return Event(key, sent.offset)

    def keys(self, event: Any) -> list[str]:
        return [
            base64.b64decode(r["value"]).decode() for records in event["records"].values() for r in records
        ]

    async def acknowledged(self, event: Event) -> bool:
        from aiokafka import TopicPartition

        committed = await self.offsets.committed(TopicPartition(self.topic, 0))
        return committed is not None and committed > event.handle

    async def close(self) -> None:
        if hasattr(self, "producer"):
            await self.producer.stop()
        if hasattr(self, "offsets"):
            await self.offsets.stop()
