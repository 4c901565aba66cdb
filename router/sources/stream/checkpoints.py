"""Checkpoints of shard-based stream mappings (Kinesis, DynamoDB Streams), kept in the router's state_dir.

Today's implementation of the `router.core.backends.CheckpointStore` seam (docs/backends.md).

One JSON file per mapping (`<state_dir>/sources/<source>/<mapping>.json`) holds, per shard, the sequence
number of the last settled record and whether the shard is finished (read to its end, all settled). The
file names the stream it belongs to: checkpoints of another stream (a table dropped and created again) are
ignored. `load()` reads the file once (this node is its one writer, so later loads have nothing new).
`writer()` rewrites the file (temporary name, fsync, rename) after each change, coalescing changes made
while a write is under way, and once more when cancelled, so a clean stop keeps every checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import msgspec

from router.core.backends import ShardState
from router.core.durable import write_atomically

log = logging.getLogger(__name__)

__all__ = ["CheckpointFile", "FileCheckpoints", "ShardState", "open_checkpoint_file"]


class CheckpointFile(msgspec.Struct, kw_only=True):
    stream: str = ""
    shards: dict[str, ShardState] = {}


def open_checkpoint_file(*, source: str, folder: Path, mapping: str, stream: str) -> FileCheckpoints:
    """The local `OpenCheckpoints`: `<folder>/<mapping>.json`, folder being the source's state folder."""
    return FileCheckpoints(folder / f"{mapping}.json", stream)


class FileCheckpoints:
    """Per-shard checkpoints of one mapping in one JSON file; `writer()` rewrites it after each change."""

    def __init__(self, path: Path, stream_arn: str) -> None:
        self.path = path
        self.stream_arn = stream_arn
        self.data = CheckpointFile(stream=stream_arn)
        self._loaded = False
        self._dirty = asyncio.Event()

    async def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self.path.exists():
            return
        try:
            loaded = msgspec.json.decode(self.path.read_bytes(), type=CheckpointFile)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("unreadable checkpoint file %s: starting over", self.path)
        else:
            if loaded.stream == self.stream_arn:  # a recreated table or stream starts afresh
                self.data = loaded

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
            if self._loaded:  # never overwrite saved checkpoints with an empty view
                with contextlib.suppress(OSError):
                    self._write()

    async def flush(self) -> None:
        if self._dirty.is_set():
            self._dirty.clear()
            await asyncio.to_thread(self._write)

    def _write(self) -> None:
        write_atomically(self.path, msgspec.json.encode(self.data))
