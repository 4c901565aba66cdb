"""The Kinesis source (`kind: kinesis`): shards read through aiobotocore on the shared shard reader.

Modules: `source` (the client and record shape). Its settings are router/config/sources/kinesis.py.

May import: router.core, router.config, router.shapes, router.metrics and router.sources.stream; never
router.dispatch, router.invoker or router.control.
"""

from __future__ import annotations

from router.sources.kinesis.source import check, create

__all__ = ["check", "create"]
