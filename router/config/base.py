"""The building blocks of every config Struct: the strict base, the shared field types, the source base.

May import: router.core only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from router.core.kinds import KindTraits

MemoryMB = Annotated[int, msgspec.Meta(ge=128, le=10240)]
TimeoutS = Annotated[int, msgspec.Meta(ge=1, le=900)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]  # a probability
# Limits of an HTTP listener (router.edge.http.HttpLimits): request line / header line sizes, header count,
# and the idle and body timeouts.
LineBytes = Annotated[int, msgspec.Meta(ge=1024, le=1048576)]
HeaderCount = Annotated[int, msgspec.Meta(ge=8, le=10000)]
ListenerTimeoutS = Annotated[float, msgspec.Meta(gt=0, le=3600)]


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config Struct: immutable, keyword-only, unknown keys rejected."""


def aws_client_args(
    region: str, endpoint_url: str | None, access_key_id: str | None, secret_access_key: str | None
) -> dict[str, Any]:
    """Keyword arguments of an aiobotocore client from the settings every AWS-facing section has."""
    args: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        args["endpoint_url"] = endpoint_url
    if access_key_id and secret_access_key:
        args["aws_access_key_id"] = access_key_id
        args["aws_secret_access_key"] = secret_access_key
    return args


def kafka_client_options(settings: Any) -> dict[str, Any]:
    """aiokafka's connection options (brokers, client id, security, SASL) from a section that has them
    (a Kafka source, the cluster's queue); TLS contexts are the caller's."""
    options: dict[str, Any] = {
        "bootstrap_servers": list(settings.brokers),
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.sasl_mechanism is not None:
        options |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password,
        }
    return options


class LatencyFault(Strict):
    """Added latency: with probability `p`, `add` milliseconds before the call."""

    p: Rate = 1.0
    add: Annotated[int, msgspec.Meta(ge=0, le=900_000)] = 0


class FunctionFaults(Strict):
    """Faults injected into a function's calls (docs/record.md); off unless configured. At most one of
    error, timeout, crash and throttle per call (their rates add up to at most 1); latency is drawn apart."""

    error_rate: Rate = 0.0
    timeout_rate: Rate = 0.0
    crash_rate: Rate = 0.0
    throttle_rate: Rate = 0.0
    latency_ms: LatencyFault | None = None
    seed: int | None = None  # None: a random seed, shown by `router faults show`


class SourceFaults(Strict):
    """Faults injected where a source delivers to its routes (docs/record.md); off unless configured."""

    drop_ack: Rate = 0.0  # delivered, then reported to the source as failed: it delivers again
    duplicate: Rate = 0.0  # delivered twice
    reorder: bool = False  # queued events delayed by up to reorder_window_ms; batch records shuffled
    reorder_window_ms: Annotated[int, msgspec.Meta(ge=1, le=600_000)] = 1000
    seed: int | None = None


class SourceSettings(Strict, tag_field="kind", kw_only=True):
    """Base of each source kind's settings: a member of the tagged union on `kind` (router.config.sources).

    Each kind declares its `traits` (router/core/kinds.py) next to its fields. `faults` (every kind) are
    the injected source faults, off by default.
    """

    traits: ClassVar[KindTraits]
    faults: SourceFaults | None = None

    def kind_name(self) -> str:
        return str(type(self).__struct_config__.tag)
