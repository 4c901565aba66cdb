"""Settings of the DynamoDB Streams source (`kind: dynamodb`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from router.config.sources.aws import AwsStreamConfig
from router.core.kinds import KindTraits


class Config(AwsStreamConfig, tag="dynamodb"):
    traits: ClassVar[KindTraits] = KindTraits(
        shape="dynamodb", stream=True, tumbling_windows=True, waits_for_result=True
    )

    table: str | None = None
    stream_arn: str | None = None
    starting_position: Literal["LATEST", "TRIM_HORIZON"] = "LATEST"
    poll_interval_s: Annotated[float, msgspec.Meta(ge=0.01, le=60)] = 0.25  # Lambda polls 4 times a second
