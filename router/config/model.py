"""The router's config, as types: one frozen msgspec Struct per section.

`Config` is what `router.config.loader` decodes a YAML file into (and `router.validate` then checks). Each
source kind's settings are in `router/config/sources/<kind>.py`, members of the tagged union
`SourceConfig` that msgspec decodes directly on `kind`.

May import: router.core and the rest of router.config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from router.config.base import MemoryMB, NonNegInt, Port, Strict, TimeoutS
from router.config.sources import SourceConfig

__all__ = ["Port", "Strict"]


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: Port = 9000
    auth_token: str = ""
    max_body_mb: Annotated[int, msgspec.Meta(ge=1, le=100)] = (
        16  # request bodies (ZIP uploads) above are refused
    )


class AccountConfig(Strict):
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 1000
    unreserved_min: NonNegInt = 100
    region: str = "us-east-1"
    account_id: Annotated[str, msgspec.Meta(pattern=r"^\d{12}$")] = "123456789012"


class BillingConfig(Strict):
    granularity_ms: Annotated[int, msgspec.Meta(ge=1, le=60000)] = 1
    gb_second_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0000166667
    request_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0000002


class Destination(Strict):
    """Where given-up (or succeeded) events go: a directory of JSON records, a function, or a Kafka topic."""

    directory: str | None = None
    function: str | None = None
    kafka: KafkaDestination | None = None


class KafkaDestination(Strict):
    brokers: list[str]
    topic: str


class AsyncConfig(Strict):
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=2)] = 2
    max_event_age_s: Annotated[int, msgspec.Meta(ge=60, le=21600)] = 21600
    on_failure: Destination | None = None
    on_success: Destination | None = None


class FunctionConfig(Strict):
    runtime: str
    handler: str
    code: str
    memory_mb: MemoryMB = 128
    timeout_s: TimeoutS = 3
    reserved_concurrency: NonNegInt | None = None
    provisioned_concurrency: NonNegInt = 0
    idle_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 600
    environment: dict[str, str] = {}
    event_format: Literal["aws", "cloudevents"] = "aws"
    async_: AsyncConfig = msgspec.field(default_factory=AsyncConfig, name="async")
    description: str = ""
    python_zygote: bool | None = None  # None: invoker.python_zygote (docs/invoker.md)


class BatchConfig(Strict):
    size: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 100
    window_s: Annotated[float, msgspec.Meta(ge=0, le=300)] | None = None  # None: the source kind's default
    max_bytes: Annotated[int, msgspec.Meta(ge=1, le=6 * 1024 * 1024)] = 6 * 1024 * 1024
    parallelization_factor: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1


class OnErrorConfig(Strict):
    max_retries: Annotated[int, msgspec.Meta(ge=-1, le=10000)] = -1
    max_record_age_s: Annotated[int, msgspec.Meta(ge=-1, le=604800)] = -1
    bisect: bool = False
    report_batch_item_failures: bool = False
    destination: Destination | None = None


class HttpRouteConfig(Strict):
    method: str = "ANY"
    path: str = "$default"


class RouteConfig(Strict):
    source: str
    function: str | list[str]
    filter: dict[str, Any] | list[dict[str, Any]] | None = None
    batch: BatchConfig | None = None
    on_error: OnErrorConfig | None = None
    http: HttpRouteConfig | None = None
    event_format: Literal["aws", "cloudevents"] | None = None  # overrides the function's
    events: list[str] | None = None  # e.g. ["ObjectCreated:*", "ObjectRemoved:*"] for s3
    enabled: bool = True

    @property
    def functions(self) -> list[str]:
        return [self.function] if isinstance(self.function, str) else list(self.function)


class InspectConfig(Strict):
    enabled: bool = True
    ring_size: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 100
    max_payload_kb: Annotated[int, msgspec.Meta(ge=1, le=6144)] = 256  # longer events/results: truncated


class InvokerConfig(Strict):
    python_zygote: bool = True  # fork Python instances from a pre-started interpreter (docs/invoker.md)
    batch_scheduling: bool = True  # instances under SCHED_BATCH: waking one does not preempt the daemon
    log_calls: bool = True  # each call's START, output, END and REPORT lines on the daemon's log
    # Processes that run the instances (router/invoker/worker.py); 0: the daemon runs them itself.
    workers: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0


class LimitsConfig(Strict):
    max_loop_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    drain_grace_s: Annotated[float, msgspec.Meta(ge=0, le=900)] = 10


class Config(Strict):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    state_dir: str = ".router"
    account: AccountConfig = msgspec.field(default_factory=AccountConfig)
    billing: BillingConfig = msgspec.field(default_factory=BillingConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    inspect: InspectConfig = msgspec.field(default_factory=InspectConfig)
    invoker: InvokerConfig = msgspec.field(default_factory=InvokerConfig)
    functions: dict[str, FunctionConfig] = {}
    sources: dict[str, SourceConfig] = {}  # name -> the kind's settings (router.config.sources)
    routes: list[RouteConfig] = []
    base_dir: str = "."  # folder of the config file; relative paths in it are resolved against it

    def path(self, value: str) -> Path:
        """Resolve a path from the config (code, directories) against the config file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def state_path(self) -> Path:
        return self.path(self.state_dir)
