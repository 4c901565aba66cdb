"""Settings of a cluster of routers (`cluster:`) and of functions that run elsewhere (`target:`).

Nodes started with the same config and the same `cluster.name` form one cluster (docs/cluster.md): the async
queue on Kafka (`cluster.kafka`), shard leases, schedule tick claims and node membership in one DynamoDB
table (`cluster.leases.dynamodb`). Without a `cluster:` section the router is a single node, as before.

`FunctionTarget` (`functions.<name>.target`) sends a function's calls over the Lambda Invoke API (AWS Lambda,
another router, LocalStack) instead of running local instances.

May import: router.core and the rest of router.config.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any, Literal

import msgspec

from router.config.base import Strict, aws_client_args, kafka_client_options

Millis = Annotated[int, msgspec.Meta(ge=1, le=3_600_000)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")]


class ClusterKafka(Strict):
    """The cluster's async queue: `<topic_prefix>.<name>.async` (fresh events) and `.retry` (retries).
    Every node consumes both in one consumer group, `<topic_prefix>.<name>`."""

    brokers: list[str]
    topic_prefix: Name = "router"
    partitions: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 12  # when the router creates the topics
    replication_factor: Annotated[int, msgspec.Meta(ge=1, le=16)] = 1
    client_id: str = "router"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    # Client tuning; the defaults are the client's own, but fetch_max_wait_ms (async events start sooner).
    session_timeout_ms: Millis = 10_000
    heartbeat_interval_ms: Millis = 3_000
    rebalance_timeout_ms: Millis | None = None  # None: session_timeout_ms
    max_poll_interval_ms: Millis = 300_000
    fetch_max_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 100
    request_timeout_ms: Millis = 40_000
    commit_interval_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 5

    def client_options(self) -> dict[str, Any]:
        options = kafka_client_options(self)
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context()
        return options


class ClusterDynamo(Strict):
    """The lease table: shard leases with their checkpoints, schedule state and tick claims, node items."""

    table: str = "router-leases"
    region: str | None = None  # None: account.region
    endpoint_url: str | None = None  # None: AWS
    access_key_id: str | None = None  # None: the usual credential chain
    secret_access_key: str | None = None
    create_table: bool = True  # create it (on-demand billing) when missing

    def client_args(self, default_region: str) -> dict[str, Any]:
        region = self.region or default_region
        return aws_client_args(region, self.endpoint_url, self.access_key_id, self.secret_access_key)


class ClusterLeases(Strict):
    dynamodb: ClusterDynamo = msgspec.field(default_factory=ClusterDynamo)
    lease_timeout_s: Seconds = 10.0  # a shard lease not renewed this long is taken over (KCL's failover time)
    node_timeout_s: Seconds = 10.0  # a node item not renewed this long: the node has left
    renew_s: Seconds | None = (
        None  # how often leases and the node item are renewed; None: a third of the least
    )
    tick_claim_s: Seconds = 30.0  # a schedule tick claimed but not confirmed this long may be fired elsewhere

    @property
    def renew_interval_s(self) -> float:
        return self.renew_s or min(self.lease_timeout_s, self.node_timeout_s) / 3


class ClusterConfig(Strict):
    name: Name
    kafka: ClusterKafka
    node_id: str = ""  # "": host name and process id
    leases: ClusterLeases = msgspec.field(default_factory=ClusterLeases)

    def node(self) -> str:
        return self.node_id or f"{socket.gethostname()}-{os.getpid()}"


class LambdaTarget(Strict):
    """A function behind the Lambda Invoke API: AWS Lambda, another router, LocalStack."""

    function_name: str  # a name, a name:qualifier or an ARN
    qualifier: str | None = None
    region: str | None = None  # None: account.region
    endpoint_url: str | None = None  # None: AWS
    access_key_id: str | None = None  # None: the usual credential chain
    secret_access_key: str | None = None
    connect_timeout_s: Seconds = 5.0

    def client_args(self, default_region: str) -> dict[str, Any]:
        region = self.region or default_region
        return aws_client_args(region, self.endpoint_url, self.access_key_id, self.secret_access_key)


class FunctionTarget(Strict):
    lambda_: LambdaTarget = msgspec.field(name="lambda")
