"""Durable file writes: what survives `kill -9` and a power cut once the call returns.

* `write_synced(path, data)`: write a file and fsync it (its name is not durable until its folder is synced).
* `fsync_dir(folder)`: make the names in a folder durable (a rename or a new file in it).
* `write_atomically(path, data)`: replace a file's content whole or not at all: write a hidden temporary
  file beside it (`.<name>.tmp`), fsync, rename over the target, fsync the folder. A reader never sees half a
  file; a crash leaves the old content or the new one (and at most the temporary file). Creates the folder.

Every function blocks on disk I/O: call them through `asyncio.to_thread` from the event loop.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

# Two writers of one file (a periodic flush and a final one at shutdown, in different threads) would share the
# temporary name; a lock per target path (striped, so memory stays bounded) makes them take turns.
_locks = [threading.Lock() for _ in range(64)]


def _lock_for(path: Path) -> threading.Lock:
    return _locks[hash(path) % len(_locks)]


def write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with _lock_for(path):
        write_synced(tmp, data)
        os.replace(tmp, path)
    fsync_dir(path.parent)
