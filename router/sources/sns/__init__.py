"""The SNS source (`kind: sns`): a topic's notifications, delivered as Lambda's SNS event.

Modules: `source` (the subscribed queue and its poller). The event shape is router/shapes/sns.py; the
settings are router/config/sources/sns.py.

May import: router.core, router.config, router.shapes, router.metrics and router.sources.sqs; never
router.dispatch, router.invoker or router.control.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.config.sources.sns import Config
from router.core.arn import parse_arn

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.core.ports import Source, SourceContext

__all__ = ["check", "create"]


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    arn = parse_arn(settings.topic_arn)
    if arn is None or arn.service != "sns":
        problems.append(f"{where}.topic_arn: {settings.topic_arn!r} is not an SNS topic ARN")
    if (settings.access_key_id is None) != (settings.secret_access_key is None):
        problems.append(f"{where}.access_key_id: give both access_key_id and secret_access_key, or neither")


def create(ctx: SourceContext) -> Source:
    from router.sources.sns.source import SnsSource

    return SnsSource(ctx)
