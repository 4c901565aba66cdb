"""Shard ownership when one router reads the whole stream: today's `router.core.backends.ShardOwnership`.

`SoleOwner` owns every shard it is asked about, never loses one, and has nothing to release. A cluster
replaces it with leases (docs/backends.md); the shard reader (router/sources/stream/shards.py) already
claims, checks and releases through the seam.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SoleOwner", "sole_owner"]


class SoleOwner:
    """This node owns every shard of the mapping."""

    async def claim(self, shards: Sequence[str]) -> set[str]:
        return set(shards)

    def owns(self, shard: str) -> bool:
        return True

    async def release(self, shard: str) -> None:
        return None


def sole_owner(*, source: str, mapping: str) -> SoleOwner:
    """The local `OpenOwnership`."""
    return SoleOwner()
