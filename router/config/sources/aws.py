"""Settings every shard-based source kind (Kinesis, DynamoDB Streams) shares."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from router.config.base import SourceSettings, aws_client_args


class AwsStreamConfig(SourceSettings):
    """Settings every shard-based source kind shares (each kind's Config extends it)."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:4566 (LocalStack, moto); None: AWS
    region: str = "us-east-1"
    access_key_id: str | None = None  # None: the usual credential chain (environment, profile)
    secret_access_key: str | None = None
    poll_interval_s: Annotated[float, msgspec.Meta(ge=0.01, le=60)] = 1.0
    shard_refresh_s: Annotated[float, msgspec.Meta(ge=0.1, le=3600)] = 10.0
    stop_grace_s: Annotated[float, msgspec.Meta(ge=0, le=900)] = 5.0

    def client_args(self) -> dict[str, Any]:
        return aws_client_args(self.region, self.endpoint, self.access_key_id, self.secret_access_key)
