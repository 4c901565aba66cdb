"""Stream source (`kind: kinesis`): Kinesis Data Streams through aiobotocore."""

from __future__ import annotations

from router.config import Strict


class Config(Strict, tag="kinesis", tag_field="kind"):
    stream: str
    endpoint: str | None = None
    region: str = "us-east-1"
