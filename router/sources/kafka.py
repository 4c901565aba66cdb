"""Stream source (`kind: kafka`): Kafka topics through aiokafka, with Lambda's event source mapping semantics.

Each route from a Kafka source is its own event source mapping, as on Lambda: it has its own consumer and
its own consumer group, so routes read independently and a slow function never holds back another. With one
route the group is `group` as configured; with several, each route's group is `<group>-<function>` (plus
`-2`, `-3`... when one function has several routes from the source). Several router daemons configured with
the same group share the topic's partitions between them.

What a route promises (the engine in `router/sources/stream.py` does the delivery):

* Records reach the function in Lambda's Kafka event, keyed `"<topic>-<partition>"`, in offset order per
  partition, batched by `batch.size`, `batch.window_s` (default 0.5 s, started by the first record) and the
  6 MB payload cap. Partitions are delivered in parallel.
* The committed offset moves only past settled records: delivered, filtered out, or given up into the failure
  destination. A crash or `kill -9` re-delivers what was in flight or not yet committed, never loses.
* On a rebalance, revoked partitions finish their in-flight batch (up to `revoke_grace_s`), commit and are
  handed over; the next owner resumes from the committed offset.
* A new group starts at `starting_position`: LATEST, TRIM_HORIZON (the earliest retained record) or
  AT_TIMESTAMP (`starting_position_timestamp`, epoch seconds). An existing group's committed offset wins.
* A route with a failure destination and `max_retries: -1` gets 10 retries, as Lambda applies to Kafka.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from router.config import Strict
from router.sources.stream_routes import mapping_names, run_mappings

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.sources.base import SourceContext, Submit
    from router.sources.kafka_mapping import KafkaMapping

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 0.5  # Lambda's MaximumBatchingWindowInSeconds default for Kafka
DESTINATION_RETRY_CAP = 10  # Lambda caps infinite retries at 10 when a Kafka mapping has a destination

Millis = Annotated[int, msgspec.Meta(ge=1, le=3_600_000)]


class Config(Strict, tag="kafka", tag_field="kind"):
    brokers: list[str]
    topic: str | None = None
    topics: list[str] | None = None
    pattern: str | None = None  # a regular expression over topic names
    group: str = "router"
    starting_position: Literal["LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"] = "LATEST"
    starting_position_timestamp: float | None = None  # epoch seconds, for AT_TIMESTAMP
    event_source_arn: str | None = None  # an MSK cluster ARN: the event is then MSK's ("aws:kafka")
    client_id: str = "router"
    # Security, passed through to the client.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = None
    ssl_check_hostname: bool = True
    # Client tuning; the defaults are the client's own.
    session_timeout_ms: Millis = 10_000
    heartbeat_interval_ms: Millis = 3_000
    rebalance_timeout_ms: Millis | None = None  # None: session_timeout_ms
    max_poll_interval_ms: Millis = 300_000
    fetch_max_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 500
    fetch_min_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1
    fetch_max_bytes: Annotated[int, msgspec.Meta(ge=1)] = 52_428_800
    max_partition_fetch_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1_048_576
    request_timeout_ms: Millis = 40_000
    revoke_grace_s: Annotated[float, msgspec.Meta(ge=0, le=900)] = 5.0  # in-flight batches on rebalance/stop
    # Offsets are committed at most this often (what settles meanwhile goes out together); a crash re-delivers
    # what settled since the last commit. 0: after every change, as soon as the previous commit is done.
    commit_interval_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 5
    # Records held per partition before its fetching pauses; 0: two batches per lane, at least 500.
    max_buffered_records: Annotated[int, msgspec.Meta(ge=0)] = 0

    def check(self, config: RouterConfig, where: str, problems: list[str]) -> None:
        chosen = [k for k in ("topic", "topics", "pattern") if getattr(self, k) is not None]
        if len(chosen) != 1:
            problems.append(
                f"{where}: give exactly one of topic, topics, pattern (got {', '.join(chosen) or 'none'})"
            )
        if self.topics is not None and not self.topics:
            problems.append(f"{where}.topics: empty list")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as e:
                problems.append(f"{where}.pattern: invalid regular expression {self.pattern!r}: {e}")
        if not self.brokers:
            problems.append(f"{where}.brokers: empty list (give host:port of at least one broker)")
        if self.starting_position == "AT_TIMESTAMP" and self.starting_position_timestamp is None:
            problems.append(
                f"{where}.starting_position_timestamp: required with starting_position AT_TIMESTAMP"
            )
        if self.sasl_mechanism is not None and (self.sasl_username is None or self.sasl_password is None):
            problems.append(
                f"{where}.sasl_username: {self.sasl_mechanism} needs sasl_username and sasl_password"
            )
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism is None:
            problems.append(
                f"{where}.sasl_mechanism: required with security_protocol {self.security_protocol}"
            )
        if self.rebalance_timeout_ms is not None and self.rebalance_timeout_ms < self.session_timeout_ms:
            problems.append(
                f"{where}.rebalance_timeout_ms: {self.rebalance_timeout_ms} is below session_timeout_ms"
            )
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            problems.append(
                f"{where}.heartbeat_interval_ms: {self.heartbeat_interval_ms} must be below "
                f"session_timeout_ms {self.session_timeout_ms}"
            )
        name = where.rsplit(".", 1)[-1]
        for i, route in enumerate(config.routes):
            dest = route.on_error.destination if route.source == name and route.on_error else None
            if dest is not None and dest.kafka is not None and dest.kafka.topic in self.topic_names():
                problems.append(
                    f"routes[{i}].on_error.destination.kafka.topic: {dest.kafka.topic!r} is a topic the "
                    "route reads (a failure would feed itself)"
                )

    def topic_names(self) -> list[str]:
        return [self.topic] if self.topic else list(self.topics or [])

    def client_options(self, base_dir: Path | None = None) -> dict[str, Any]:
        """Connection and security settings shared by consumers and the failure-destination producer."""
        options: dict[str, Any] = {
            "bootstrap_servers": list(self.brokers),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.sasl_mechanism is not None:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            def path(p: str | None) -> str | None:
                if p is None or base_dir is None or Path(p).is_absolute():
                    return p
                return str(base_dir / p)

            context = create_ssl_context(
                cafile=path(self.ssl_cafile),
                certfile=path(self.ssl_certfile),
                keyfile=path(self.ssl_keyfile),
                password=self.ssl_password,
            )
            context.check_hostname = self.ssl_check_hostname
            options["ssl_context"] = context
        return options

    def consumer_options(self, base_dir: Path | None = None) -> dict[str, Any]:
        return self.client_options(base_dir) | {
            "enable_auto_commit": False,
            "auto_offset_reset": "latest" if self.starting_position == "LATEST" else "earliest",
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
            "fetch_min_bytes": self.fetch_min_bytes,
            "fetch_max_bytes": self.fetch_max_bytes,
            "max_partition_fetch_bytes": self.max_partition_fetch_bytes,
        }


def group_ids(group: str, functions: list[str]) -> list[str]:
    """One consumer group per route: the group itself for a single route, else `<group>-<function>[-n]`."""
    if len(functions) == 1:
        return [group]
    return [f"{group}-{name}" for name in mapping_names(functions)]


class KafkaSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.mappings: list[KafkaMapping] = []
        self._closed = False

    async def run(self, submit: Submit) -> None:
        from router.sources.kafka_mapping import KafkaMapping

        ctx = self.ctx
        groups = group_ids(ctx.config.group, [r.function for r in ctx.routes])
        self.mappings = [
            KafkaMapping(ctx, route, group) for route, group in zip(ctx.routes, groups, strict=True)
        ]
        await run_mappings(ctx.ready, [(f"kafka:{ctx.name}:{m.group}", m) for m in self.mappings])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for m in self.mappings:
            with contextlib.suppress(Exception):
                await m.aclose()


def create(ctx: SourceContext) -> KafkaSource:
    return KafkaSource(ctx)
