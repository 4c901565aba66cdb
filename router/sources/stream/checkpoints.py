"""Checkpoints of shard-based stream mappings (Kinesis, DynamoDB Streams), kept in the router's state_dir.

One JSON file per mapping (`<state_dir>/sources/<source>/<mapping>.json`) holds, per shard, the sequence
number of the last settled record and whether the shard is finished (read to its end, all settled). The
file names the stream it belongs to: checkpoints of another stream (a table dropped and created again) are
ignored. `writer()` rewrites the file (temporary name, fsync, rename) after each change, coalescing changes
made while a write is under way, and once more when cancelled, so a clean stop keeps every checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import msgspec

from router.core.durable import write_atomically

log = logging.getLogger(__name__)


class ShardState(msgspec.Struct, kw_only=True):
    sequence: str | None = None  # last settled record
    finished: bool = False


class CheckpointFile(msgspec.Struct, kw_only=True):
    stream: str = ""
    shards: dict[str, ShardState] = {}


class CheckpointStore:
    """Per-shard checkpoints of one mapping in one JSON file; `writer()` rewrites it after each change."""

    def __init__(self, path: Path, stream_arn: str) -> None:
        self.path = path
        self.data = CheckpointFile(stream=stream_arn)
        if path.exists():
            try:
                loaded = msgspec.json.decode(path.read_bytes(), type=CheckpointFile)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("unreadable checkpoint file %s: starting over", path)
            else:
                if loaded.stream == stream_arn:  # a recreated table or stream starts afresh
                    self.data = loaded
        self._dirty = asyncio.Event()

    def get(self, shard: str) -> ShardState:
        return self.data.shards.get(shard) or ShardState()

    def settled(self, shard: str, sequence: str) -> None:
        self.data.shards.setdefault(shard, ShardState()).sequence = sequence
        self._dirty.set()

    def finish(self, shard: str) -> None:
        self.data.shards.setdefault(shard, ShardState()).finished = True
        self._dirty.set()

    def forget(self, shard: str) -> None:
        if self.data.shards.pop(shard, None) is not None:
            self._dirty.set()

    def prune(self, listed: set[str]) -> None:
        """Forget finished shards the stream no longer lists (expired past retention)."""
        gone = [s for s, st in self.data.shards.items() if st.finished and s not in listed]
        for shard in gone:
            del self.data.shards[shard]
        if gone:
            self._dirty.set()

    async def writer(self) -> None:
        try:
            while True:
                await self._dirty.wait()
                await self.flush()
        finally:
            with contextlib.suppress(OSError):
                self._write()

    async def flush(self) -> None:
        if self._dirty.is_set():
            self._dirty.clear()
            await asyncio.to_thread(self._write)

    def _write(self) -> None:
        write_atomically(self.path, msgspec.json.encode(self.data))
