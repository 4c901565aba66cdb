"""Settings of the Kafka source (`kind: kafka`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from router.config.base import SourceSettings, kafka_client_options
from router.core.kinds import KindTraits

Millis = Annotated[int, msgspec.Meta(ge=1, le=3_600_000)]


class Config(SourceSettings, tag="kafka"):
    traits: ClassVar[KindTraits] = KindTraits(
        shape="kafka",
        stream=True,
        default_window_s=0.5,
        waits_for_result=True,
        filter_fields=(("key", True), ("value", True)),
    )

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

    def topic_names(self) -> list[str]:
        return [self.topic] if self.topic else list(self.topics or [])

    def client_options(self, base_dir: Path | None = None) -> dict[str, Any]:
        """Connection and security settings shared by consumers and the failure-destination producer."""
        options = kafka_client_options(self)
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
