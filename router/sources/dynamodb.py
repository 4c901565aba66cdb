"""Table-change source (`kind: dynamodb`): DynamoDB Streams through aiobotocore."""

from __future__ import annotations

from router.config import Strict


class Config(Strict, tag="dynamodb", tag_field="kind"):
    endpoint: str | None = None
    table: str | None = None
    stream_arn: str | None = None
    region: str = "us-east-1"
