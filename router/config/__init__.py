"""The config: its types (`model`, `sources`, `base`), and reading a file into them (`loader`).

Owns: every config Struct (one module per source kind in `sources/`), YAML reading with `${VAR}`
interpolation, and the rewriting of msgspec's errors into our problems (`messages`). Checks that span
sections, or need a kind's code, are `router.validate`'s.

May import: router.core only. Never router.sources, router.dispatch or router.invoker
(tests/unit/test_layers.py checks it).
"""

from __future__ import annotations

from router.config.base import (
    FunctionFaults,
    LatencyFault,
    MemoryMB,
    NonNegInt,
    Port,
    PositiveInt,
    SourceFaults,
    SourceSettings,
    Strict,
    TimeoutS,
)
from router.config.cluster import ClusterConfig, FunctionTarget, LambdaTarget
from router.config.loader import Loaded, decode_config, read_config
from router.config.model import (
    AccountConfig,
    AsyncConfig,
    AwsConfig,
    BatchConfig,
    BillingConfig,
    Config,
    Destination,
    FunctionConfig,
    HttpRouteConfig,
    InspectConfig,
    InvokerConfig,
    KafkaDestination,
    LimitsConfig,
    OnErrorConfig,
    RecordConfig,
    RouteConfig,
    ServerConfig,
    split_qualifier,
)

__all__ = [
    "AccountConfig",
    "AsyncConfig",
    "AwsConfig",
    "BatchConfig",
    "BillingConfig",
    "ClusterConfig",
    "Config",
    "Destination",
    "FunctionConfig",
    "FunctionFaults",
    "FunctionTarget",
    "HttpRouteConfig",
    "InspectConfig",
    "InvokerConfig",
    "KafkaDestination",
    "LambdaTarget",
    "LatencyFault",
    "LimitsConfig",
    "Loaded",
    "MemoryMB",
    "NonNegInt",
    "OnErrorConfig",
    "Port",
    "PositiveInt",
    "RecordConfig",
    "RouteConfig",
    "ServerConfig",
    "SourceFaults",
    "SourceSettings",
    "Strict",
    "TimeoutS",
    "decode_config",
    "read_config",
    "split_qualifier",
]
