"""Stream source (`kind: kafka`): Kafka topics through aiokafka."""

from __future__ import annotations

from router.config import Strict


class Config(Strict, tag="kafka", tag_field="kind"):
    brokers: list[str]
    topic: str
    group: str = "router"
