"""What the drivers of the shard-based kinds (Kinesis, DynamoDB Streams) share, on the session's moto server.

Acknowledged = the mapping's checkpoint file (`<state_dir>/<function>.json`) holds, for the record's shard,
a sequence number at or past the record's. A refusal leaves the checkpoint where it was; the source retries
the same batch on its own.
"""

from __future__ import annotations

import json

from tests.contract.drivers.base import Event, KindDriver
from tests.contract.harness import FUNCTION

FAST_POLLING = "poll_interval_s: 0.05\nshard_refresh_s: 0.5\nstarting_position: TRIM_HORIZON"


class ShardDriver(KindDriver):
    services = ("moto_server",)

    def route_yaml(self) -> str:
        return "batch: {size: 10}"

    def checkpoint(self, shard: str) -> int | None:
        path = self.state_dir / f"{FUNCTION}.json"
        if not path.exists():
            return None
        sequence = json.loads(path.read_text())["shards"].get(shard, {}).get("sequence")
        return None if sequence is None else int(sequence)

    async def acknowledged(self, event: Event) -> bool:
        shard, sequence = await self.position(event)
        checkpoint = self.checkpoint(shard)
        return checkpoint is not None and checkpoint >= sequence

    async def position(self, event: Event) -> tuple[str, int]:
        """(shard id, sequence number) of the event's record."""
        raise NotImplementedError
