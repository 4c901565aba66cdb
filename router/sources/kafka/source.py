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
from typing import TYPE_CHECKING

from router.config.sources.kafka import Config
from router.sources.stream.routes import mapping_names, run_mappings

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.core.ports import SourceContext
    from router.sources.kafka.mapping import KafkaMapping

log = logging.getLogger(__name__)


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

    async def run(self) -> None:
        from router.sources.kafka.mapping import KafkaMapping

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


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    chosen = [k for k in ("topic", "topics", "pattern") if getattr(settings, k) is not None]
    if len(chosen) != 1:
        problems.append(
            f"{where}: give exactly one of topic, topics, pattern (got {', '.join(chosen) or 'none'})"
        )
    if settings.topics is not None and not settings.topics:
        problems.append(f"{where}.topics: empty list")
    if settings.pattern is not None:
        try:
            re.compile(settings.pattern)
        except re.error as e:
            problems.append(f"{where}.pattern: invalid regular expression {settings.pattern!r}: {e}")
    if not settings.brokers:
        problems.append(f"{where}.brokers: empty list (give host:port of at least one broker)")
    if settings.starting_position == "AT_TIMESTAMP" and settings.starting_position_timestamp is None:
        problems.append(f"{where}.starting_position_timestamp: required with starting_position AT_TIMESTAMP")
    if settings.sasl_mechanism is not None and (
        settings.sasl_username is None or settings.sasl_password is None
    ):
        problems.append(
            f"{where}.sasl_username: {settings.sasl_mechanism} needs sasl_username and sasl_password"
        )
    if settings.security_protocol.startswith("SASL") and settings.sasl_mechanism is None:
        problems.append(
            f"{where}.sasl_mechanism: required with security_protocol {settings.security_protocol}"
        )
    if (
        settings.rebalance_timeout_ms is not None
        and settings.rebalance_timeout_ms < settings.session_timeout_ms
    ):
        problems.append(
            f"{where}.rebalance_timeout_ms: {settings.rebalance_timeout_ms} is below session_timeout_ms"
        )
    if settings.heartbeat_interval_ms >= settings.session_timeout_ms:
        problems.append(
            f"{where}.heartbeat_interval_ms: {settings.heartbeat_interval_ms} must be below "
            f"session_timeout_ms {settings.session_timeout_ms}"
        )
    name = where.rsplit(".", 1)[-1]
    for i, route in enumerate(config.routes):
        dest = route.on_error.destination if route.source == name and route.on_error else None
        if dest is not None and dest.kafka is not None and dest.kafka.topic in settings.topic_names():
            problems.append(
                f"routes[{i}].on_error.destination.kafka.topic: {dest.kafka.topic!r} is a topic the "
                "route reads (a failure would feed itself)"
            )


def create(ctx: SourceContext) -> KafkaSource:
    return KafkaSource(ctx)
