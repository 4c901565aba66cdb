"""Settings of the SNS source (`kind: sns`): a topic's notifications, through an SQS queue the router owns."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from router.config.base import SourceSettings, aws_client_args
from router.core.arn import parse_arn
from router.core.kinds import KindTraits


class Config(SourceSettings, tag="sns"):
    traits: ClassVar[KindTraits] = KindTraits(shape="sns", filter_fields=(("Sns.Message", False),))

    topic_arn: str
    # The queue subscribed to the topic, created if missing; None: `router-sns-<source name>`.
    queue: str | None = None
    endpoint: str | None = None  # e.g. http://127.0.0.1:4566 (LocalStack, moto); None: AWS
    region: str | None = None  # default: the topic ARN's
    access_key_id: str | None = None  # None: the usual credential chain (environment, profile)
    secret_access_key: str | None = None
    wait_time_s: Annotated[int, msgspec.Meta(ge=0, le=20)] = 5  # long-poll wait of each ReceiveMessage

    def client_args(self, default_region: str) -> dict[str, Any]:
        arn = parse_arn(self.topic_arn)
        region = self.region or (arn.region if arn else "") or default_region
        return aws_client_args(region, self.endpoint, self.access_key_id, self.secret_access_key)
