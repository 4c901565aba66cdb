"""Settings of the Kinesis source (`kind: kinesis`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from router.config.sources.aws import AwsStreamConfig
from router.core.kinds import KindTraits


class Config(AwsStreamConfig, tag="kinesis"):
    traits: ClassVar[KindTraits] = KindTraits(
        shape="kinesis",
        stream=True,
        tumbling_windows=True,
        waits_for_result=True,
        filter_fields=(("kinesis.data", True),),
    )

    stream: str | None = None  # the stream's name
    stream_arn: str | None = None
    starting_position: Literal["LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"] = "LATEST"
    starting_position_timestamp: float | None = None  # epoch seconds, for AT_TIMESTAMP
