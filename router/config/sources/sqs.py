"""Settings of the SQS source (`kind: sqs`): a queue polled in batches, as Lambda's SQS event source
mapping."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from router.config.base import SourceSettings, aws_client_args
from router.core.arn import parse_arn
from router.core.kinds import KindTraits


class Config(SourceSettings, tag="sqs"):
    traits: ClassVar[KindTraits] = KindTraits(
        shape="sqs",
        batched=True,
        waits_for_result=True,
        default_batch_size=10,
        filter_fields=(("body", False),),
    )

    queue: str | None = None  # the queue's name or URL
    queue_arn: str | None = None  # or its ARN (region and account from it)
    endpoint: str | None = None  # e.g. http://127.0.0.1:4566 (LocalStack, moto, ElasticMQ); None: AWS
    region: str | None = None  # default: the ARN's, else account.region
    access_key_id: str | None = None  # None: the usual credential chain (environment, profile)
    secret_access_key: str | None = None
    # Long-poll wait of each ReceiveMessage. Lambda waits 20 s; a stop lets the poll in flight end (to hand
    # back what it got), so a shorter wait keeps stops and disables prompt.
    wait_time_s: Annotated[int, msgspec.Meta(ge=0, le=20)] = 5
    # ScalingConfig.MaximumConcurrency: batches in flight at once (None: scale up to 1000, as Lambda).
    max_concurrency: Annotated[int, msgspec.Meta(ge=2, le=1000)] | None = None
    stop_grace_s: Annotated[float, msgspec.Meta(ge=0, le=900)] = 5.0  # batches in flight when stopping

    def client_args(self, default_region: str) -> dict[str, Any]:
        arn = parse_arn(self.queue_arn) if self.queue_arn else None
        region = self.region or (arn.region if arn else "") or default_region
        return aws_client_args(region, self.endpoint, self.access_key_id, self.secret_access_key)
