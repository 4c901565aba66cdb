"""Each source kind's settings, one module per kind, and the tagged union msgspec decodes on `kind`.

A kind's module holds its config Struct (a `SourceSettings` with `tag=<kind>`) and the traits it declares
(router/core/kinds.py). The kind's code is in `router/sources/<kind>/`; its checks that need more than
types (expressions, route keys, files) are there too, run by `router validate`.

May import: router.core and router.config.base.
"""

from __future__ import annotations

from router.config.base import SourceSettings
from router.config.sources.dynamodb import Config as DynamoDBConfig
from router.config.sources.email import Config as EmailConfig
from router.config.sources.http import Config as HttpConfig
from router.config.sources.kafka import Config as KafkaConfig
from router.config.sources.kinesis import Config as KinesisConfig
from router.config.sources.s3 import Config as S3Config
from router.config.sources.schedule import Config as ScheduleConfig
from router.config.sources.sns import Config as SnsConfig
from router.config.sources.sqs import Config as SqsConfig
from router.core.kinds import KindTraits

SourceConfig = (
    S3Config
    | DynamoDBConfig
    | KafkaConfig
    | KinesisConfig
    | EmailConfig
    | ScheduleConfig
    | HttpConfig
    | SqsConfig
    | SnsConfig
)
SETTINGS: dict[str, type[SourceSettings]] = {
    str(t.__struct_config__.tag): t
    for t in (
        S3Config,
        DynamoDBConfig,
        KafkaConfig,
        KinesisConfig,
        EmailConfig,
        ScheduleConfig,
        HttpConfig,
        SqsConfig,
        SnsConfig,
    )
}
KINDS = tuple(sorted(SETTINGS))


def traits_of(settings: SourceSettings) -> KindTraits:
    return type(settings).traits


def kind_traits(kind: str) -> KindTraits:
    """The traits of a kind by name; KeyError with the list of known kinds for an unknown one."""
    if kind not in SETTINGS:
        raise KeyError(f"unknown source kind {kind!r} (known kinds: {', '.join(KINDS)})")
    return SETTINGS[kind].traits


__all__ = [
    "KINDS",
    "SETTINGS",
    "DynamoDBConfig",
    "EmailConfig",
    "HttpConfig",
    "KafkaConfig",
    "KinesisConfig",
    "S3Config",
    "ScheduleConfig",
    "SnsConfig",
    "SourceConfig",
    "SqsConfig",
    "kind_traits",
    "traits_of",
]
