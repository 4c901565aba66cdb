"""What the S3 source has announced, kept durably under its state folder: one entry per key.

`AnnouncedObjects(path)` replays an append-only journal of JSON lines at open. `record(key, version)` and
`forget(key)` append one line and fsync before returning, so a version recorded here survives `kill -9`: the
source records a version only after submit accepted its event, hence each version is announced once (a
crash between the two announces it again: at-least-once, never lost). The journal is compacted (rewritten
atomically) when it holds many more lines than live keys.

`next_sequencer(now)` gives numbers that only grow, across restarts too, for S3's per-key `sequencer`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from router.core.durable import write_atomically


class ObjectVersion(msgspec.Struct, frozen=True, array_like=True):
    """One announced version of a key. `stamp` tells versions apart cheaply (mtime+inode, or LastModified)."""

    size: int
    etag: str
    stamp: str
    seq: int


class _Line(msgspec.Struct, frozen=True, omit_defaults=True):
    k: str
    v: ObjectVersion | None = None  # None: the key was removed
    s: int = 0  # the highest sequencer handed out so far


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Line)
COMPACT_MIN_LINES = 1000


class AnnouncedObjects:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._objects: dict[str, ObjectVersion] = {}
        self._seq = 0
        self._lines = 0
        self._load()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _load(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for raw in data.splitlines():
            try:
                line = _decoder.decode(raw)
            except msgspec.DecodeError:
                continue  # a torn last line from a crash mid-write: that record was never acknowledged
            self._apply(line)
            self._lines += 1

    def _apply(self, line: _Line) -> None:
        if line.v is None:
            self._objects.pop(line.k, None)
        else:
            self._objects[line.k] = line.v
        self._seq = max(self._seq, line.s, line.v.seq if line.v else 0)

    def get(self, key: str) -> ObjectVersion | None:
        return self._objects.get(key)

    def keys(self) -> list[str]:
        return list(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def empty_journal(self) -> bool:
        """True before anything was ever recorded: the source's first start."""
        return self._lines == 0

    def next_sequencer(self, now_us: int) -> int:
        """A number above every one handed out before (time-based when the clock allows)."""
        self._seq = max(self._seq + 1, now_us)
        return self._seq

    def record(self, key: str, version: ObjectVersion) -> None:
        self.record_many([(key, version)])

    def record_many(self, versions: list[tuple[str, ObjectVersion]]) -> None:
        """Record several versions with one write and one fsync."""
        self._append(*(_Line(k=key, v=version, s=self._seq) for key, version in versions))

    def forget(self, key: str) -> None:
        if key in self._objects:
            self._append(_Line(k=key, s=self._seq))

    def mark_started(self) -> None:
        """Note that the source has run, so an empty bucket's first start is not taken for a new one later."""
        if self._lines == 0:
            self._append(_Line(k="", s=self._seq))

    def _append(self, *lines: _Line) -> None:
        if not lines:
            return
        for line in lines:
            self._apply(line)
        os.write(self._fd, b"".join(_encoder.encode(line) + b"\n" for line in lines))
        os.fsync(self._fd)
        self._lines += len(lines)
        if self._lines > max(COMPACT_MIN_LINES, 4 * len(self._objects)):
            self._compact()

    def _compact(self) -> None:
        lines = [_Line(k="", s=self._seq)] + [_Line(k=k, v=v) for k, v in self._objects.items()]
        write_atomically(self.path, b"".join(_encoder.encode(line) + b"\n" for line in lines))
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._lines = len(lines)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
