"""Durable file writes: what survives `kill -9` and a power cut once the call returns.

* `write_synced(path, data, mode=0o666)`: write a file and fsync it (its name is not durable until its
  folder is synced). `mode` (less the umask) applies to a file it creates.
* `fsync_dir(folder)`: make the names in a folder durable (a rename, a new file or a removal in it).
* `write_atomically(path, data, mode=0o666)`: replace a file's content whole or not at all: write a hidden
  temporary file beside it (`.<name>.tmp`, created afresh with `mode`), fsync, rename over the target, fsync
  the folder. A reader never sees half a file; a crash leaves the old content or the new one (and at most the
  temporary file, which a failed write removes at once). Creates the folder.
* `rename_durably(source, target)`: rename a file or folder (replacing a file at `target`) and fsync the
  folders involved: the rename is a commit point that survives a power cut once the call returns. A folder
  assembled for the rename should be complete and synced first (its files `write_synced`, then
  `fsync_dir` of the folder itself).
* `remove_temporaries(folder)`: remove the temporary files a crash left in a folder (`.*.tmp`), for owners of
  a folder to call when they open it.

Every function blocks on disk I/O: call them through `asyncio.to_thread` from the event loop.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

TMP_SUFFIX = ".tmp"

# Two writers of one file (a periodic flush and a final one at shutdown, in different threads) would share the
# temporary name; a lock per target path (striped, so memory stays bounded) makes them take turns.
_locks = [threading.Lock() for _ in range(64)]


def _lock_for(path: Path) -> threading.Lock:
    return _locks[hash(path) % len(_locks)]


def temporary_path(path: Path) -> Path:
    """Where `write_atomically` writes `path`'s new content before the rename."""
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


def write_synced(path: Path, data: bytes, *, mode: int = 0o666) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, mode: int = 0o666) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    with _lock_for(path):
        try:
            tmp.unlink(missing_ok=True)  # a crash's leftover: created afresh, so `mode` holds
            write_synced(tmp, data, mode=mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    fsync_dir(path.parent)


def rename_durably(source: Path, target: Path) -> None:
    os.rename(source, target)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)


def remove_temporaries(folder: Path) -> None:
    for leftover in folder.glob(f".*{TMP_SUFFIX}"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
