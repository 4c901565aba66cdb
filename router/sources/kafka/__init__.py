"""The Kafka source (`kind: kafka`): topics through aiokafka, with Lambda's event source mapping semantics.

Modules: `source` (create, check, consumer groups), `mapping` (one consumer per route), `records` (record to
event). Its settings are router/config/sources/kafka.py.

May import: router.core, router.config, router.shapes, router.metrics and router.sources.stream; never
router.dispatch, router.invoker or router.control.
"""

from __future__ import annotations

from router.sources.kafka.source import check, create

__all__ = ["check", "create"]
