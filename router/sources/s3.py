"""Object-created source (`kind: s3`): an emulated bucket (a watched folder) or a real S3 endpoint."""

from __future__ import annotations

from router.config import Strict


class Config(Strict, tag="s3", tag_field="kind"):
    bucket: str
    directory: str | None = None
    endpoint: str | None = None
    queue: str | None = None
    region: str = "us-east-1"
