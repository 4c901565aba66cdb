"""The router's config, as types: one frozen msgspec Struct per section.

`Config` is what `router.config.loader` decodes a YAML file into (and `router.validate` then checks). Each
source kind's settings are in `router/config/sources/<kind>.py`, members of the tagged union
`SourceConfig` that msgspec decodes directly on `kind`.

May import: router.core and the rest of router.config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from router.config.base import (
    FunctionFaults,
    HeaderCount,
    LineBytes,
    ListenerTimeoutS,
    MemoryMB,
    NonNegInt,
    Port,
    Strict,
    TimeoutS,
    aws_client_args,
)
from router.config.cluster import ClusterConfig, FunctionTarget
from router.config.sources import SourceConfig

__all__ = ["Cpu", "Port", "Strict"]

# CPU of an instance: in proportion to memory as on Lambda, none, or a number of vCPUs (20 ms periods: the
# kernel's smallest quota is 1 ms, 0.05 of a CPU).
Cpu = Literal["lambda", "unlimited"] | Annotated[float, msgspec.Meta(ge=0.05, le=64)]
# A mechanism's mode; YAML reads an unquoted `off` as false (and `on` as true, taken as auto).
Mode = Literal["auto", "off", "required"] | bool


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: Port = 9000
    auth_token: str = ""
    max_body_mb: Annotated[int, msgspec.Meta(ge=1, le=100)] = (
        16  # request bodies (ZIP uploads) above are refused
    )
    # What malformed or slow requests meet (docs/hardening.md): 414 past max_url_bytes, 431 past
    # max_header_bytes or max_headers, 408 for a body not received within body_timeout_s, and a connection
    # that sends no whole request head for idle_timeout_s is closed.
    max_url_bytes: LineBytes = 8190
    max_header_bytes: LineBytes = 8190
    max_headers: HeaderCount = 128
    idle_timeout_s: ListenerTimeoutS = 75
    body_timeout_s: ListenerTimeoutS = 60
    # Processes that serve the Invoke API on this port, each with its own instances (docs/processes.md);
    # 1: the daemon alone; "auto": one per CPU this process may run on. Concurrency limits are counted
    # across them exactly.
    processes: Annotated[int, msgspec.Meta(ge=1, le=64)] | Literal["auto"] = 1

    @property
    def process_count(self) -> int:
        if self.processes == "auto":
            return max(1, min(64, len(os.sched_getaffinity(0))))
        return self.processes


class AccountConfig(Strict):
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 1000
    unreserved_min: NonNegInt = 100
    region: str = "us-east-1"
    account_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{12}\Z")] = "123456789012"


class BillingConfig(Strict):
    granularity_ms: Annotated[int, msgspec.Meta(ge=1, le=60000)] = 1
    gb_second_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0000166667
    request_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0000002


class AwsConfig(Strict):
    """The AWS endpoint the router itself calls: SQS/SNS/EventBridge destinations, code and layers from S3,
    and the services named by the ARNs of event source mappings created through the Lambda API."""

    endpoint_url: str | None = None  # e.g. http://127.0.0.1:4566 (LocalStack, moto); None: AWS
    region: str | None = None  # None: account.region
    access_key_id: str | None = None  # None: the usual credential chain (environment, profile)
    secret_access_key: str | None = None

    def client_args(self, default_region: str) -> dict[str, Any]:
        region = self.region or default_region
        return aws_client_args(region, self.endpoint_url, self.access_key_id, self.secret_access_key)


class Destination(Strict):
    """Where given-up (or succeeded) events go: a directory of JSON records, a function (`name` or
    `name:qualifier`), a Kafka topic, or (through the `aws:` endpoint) an SQS queue, an SNS topic or an
    EventBridge bus, each named by ARN (an SQS queue also by URL)."""

    directory: str | None = None
    function: str | None = None
    kafka: KafkaDestination | None = None
    sqs: str | None = None
    sns: str | None = None
    eventbridge: str | None = None


class KafkaDestination(Strict):
    brokers: list[str]
    topic: str


class AsyncConfig(Strict):
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=2)] = 2
    max_event_age_s: Annotated[int, msgspec.Meta(ge=60, le=21600)] = 21600
    on_failure: Destination | None = None
    on_success: Destination | None = None
    dead_letter: Destination | None = None  # Lambda's DeadLetterConfig: an SQS queue or SNS topic


class FunctionConfig(Strict):
    # runtime, handler and code are required unless `target` sends the calls elsewhere (router.validate).
    runtime: str = ""
    handler: str = ""
    code: str = ""
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
    layers: list[str] = []  # folders or ZIPs (relative to the config), or layer version ARNs; /opt in order
    faults: FunctionFaults | None = None  # injected faults (docs/record.md); never in a default config
    cpu: Cpu | None = None  # None: invoker.cpu
    network: bool = True  # false: a network namespace with only its own loopback (needs isolation: root)
    target: FunctionTarget | None = None  # run elsewhere, over the Lambda Invoke API (docs/cluster.md)


class BatchConfig(Strict):
    size: Annotated[int, msgspec.Meta(ge=1, le=10000)] | None = None  # None: the source kind's default
    window_s: Annotated[float, msgspec.Meta(ge=0, le=300)] | None = None  # None: the source kind's default
    max_bytes: Annotated[int, msgspec.Meta(ge=1, le=6 * 1024 * 1024)] = 6 * 1024 * 1024
    parallelization_factor: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    tumbling_window_s: Annotated[int, msgspec.Meta(ge=0, le=900)] = 0  # Kinesis, DynamoDB Streams; 0: off


class OnErrorConfig(Strict):
    max_retries: Annotated[int, msgspec.Meta(ge=-1, le=10000)] = -1
    max_record_age_s: Annotated[int, msgspec.Meta(ge=-1, le=604800)] = -1
    bisect: bool = False
    report_batch_item_failures: bool = False
    destination: Destination | None = None


class HttpRouteConfig(Strict):
    method: str = "ANY"
    path: str = "$default"


def split_qualifier(function: str) -> tuple[str, str | None]:
    """`resize:live` -> ("resize", "live"); `resize` -> ("resize", None). A route or a function destination
    may pin a published version or an alias of a function this way (docs/control-plane.md)."""
    name, sep, qualifier = function.partition(":")
    return name, (qualifier if sep else None)


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


# "90s", "30m", "24h", "7d" (also "500ms"): a span of time, for settings that read better than seconds.
Duration = Annotated[str, msgspec.Meta(pattern=r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)\Z")]


class RecordConfig(Strict):
    """The durable event record under state_dir (docs/record.md)."""

    enabled: bool = True  # false: the inspection API keeps inspect.ring_size invocations in memory
    retention: Duration = "24h"  # older invocations and events are deleted
    max_mb: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 512  # the oldest go first past this size
    flush_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 200  # writes are batched this long at most
    log_kb: Annotated[int, msgspec.Meta(ge=0, le=64)] = 4  # the tail of each call's log kept


class InvokerConfig(Strict):
    """How instances are launched and contained (docs/invoker.md)."""

    python_zygote: bool = True  # fork Python instances from a pre-started interpreter
    hot_reload: bool = True  # a config function's code folder edited: new instances on its next call
    cgroups: Mode = "auto"  # kernel limits: memory, CPU, pids, freezing
    isolation: Mode = "auto"  # a uid and a filesystem view per function
    cpu: Cpu = "lambda"  # each function's CPU unless it sets its own
    freeze: bool = True  # freeze idle instances (with cgroups)
    freeze_after_ms: Annotated[int, msgspec.Meta(ge=0, le=60000)] = 10  # 0: at once, as Lambda does
    batch_scheduling: bool = True  # instances under SCHED_BATCH: waking one does not preempt the daemon
    log_calls: bool = True  # each call's START, output, END and REPORT lines on the daemon's log
    # Processes that run the instances (router/invoker/worker.py); 0: the daemon runs them itself.
    workers: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0

    @property
    def cgroups_mode(self) -> str:
        return _mode(self.cgroups)

    @property
    def isolation_mode(self) -> str:
        return _mode(self.isolation)


def _mode(value: Mode) -> str:
    return value if isinstance(value, str) else ("auto" if value else "off")


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
    record: RecordConfig = msgspec.field(default_factory=RecordConfig)
    invoker: InvokerConfig = msgspec.field(default_factory=InvokerConfig)
    aws: AwsConfig = msgspec.field(default_factory=AwsConfig)
    functions: dict[str, FunctionConfig] = {}
    sources: dict[str, SourceConfig] = {}  # name -> the kind's settings (router.config.sources)
    routes: list[RouteConfig] = []
    cluster: ClusterConfig | None = None  # several routers sharing the work (docs/cluster.md); None: one node
    base_dir: str = "."  # folder of the config file; relative paths in it are resolved against it

    def path(self, value: str) -> Path:
        """Resolve a path from the config (code, directories) against the config file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def state_path(self) -> Path:
        return self.path(self.state_dir)
