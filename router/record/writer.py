"""The record's writer: a process of its own that owns the record's SQLite connection for writing.

Why a process: when the record wrote a row per invocation, SQLite cost ~12 us of CPU per invocation, and
in a thread of the daemon two to three times that, because the sqlite3 module takes and gives back the GIL
around every row it steps (docs/record.md). The record now writes a segment per batch
(router/record/schema.py), but the writes, the file's syncs and retention still run here, on any free core,
and never wait for, or hold up, the event loop.

`WriterClient(path)` is the daemon's side, used from the record's one thread (router/record/sqlite.py): each
method sends one request and blocks (GIL released) until the answer:

    open() -> latest seq      write(segments, links)      prune(cutoff, max_bytes) -> deleted
    close()

The process (`python -m router.record.writer FD`) gets one end of a Unix socket pair; requests and answers
are msgpack lists framed by a 4-byte big-endian length, answered in order: `["ok", value]` or `["error",
"<exception type>: <message>"]` (raised on the daemon's side as `WriterError`). Segments arrive built
(router/record/schema.py `segments`): the writer inserts them and does nothing per invocation.

* Priority: the writer runs at nice +10 (`NICE`): when a core is contended, the daemon and the instances go
  first and the record waits (router/record/sqlite.py bounds what may wait).
* Ending: when the socket closes (the daemon stopped or died), the writer reads and writes what it was sent,
  closes the database and exits: what it was sent is written even after a kill -9 of the daemon. It ignores
  SIGINT and SIGTERM (it is in the daemon's process group; the daemon's shutdown flushes first).
* A writer that died is started again on the next request; the request that found it dead fails (that batch
  is lost and counted, as a failed transaction was with the thread).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
from typing import Any

import msgspec

from router.core.spawned import SPAWNED
from router.record import schema

HEADER = struct.Struct(">I")
_encode_into = msgspec.msgpack.Encoder().encode_into
_decode = msgspec.msgpack.Decoder().decode
START_TIMEOUT_S = 30.0
NICE = 10  # below the daemon and the instances when a core is contended: the record waits, calls do not


class WriterError(Exception):
    """The writer process could not do what was asked (its SQLite error), or is gone."""


def _send(sock: socket.socket, message: Any) -> None:
    """One framed message: encoded after the room for its length, so that a batch of segments (megabytes of
    payloads) is not copied once more to put the length in front."""
    frame = bytearray(HEADER.size)
    _encode_into(message, frame, HEADER.size)
    HEADER.pack_into(frame, 0, len(frame) - HEADER.size)
    sock.sendall(frame)


def _receive(sock: socket.socket) -> Any:
    """One framed message; None at the end of the stream."""
    head = _exactly(sock, HEADER.size)
    if head is None:
        return None
    body = _exactly(sock, HEADER.unpack(head)[0])
    if body is None:
        return None
    return _decode(body)


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        try:
            n = sock.recv_into(view[got:])
        except ConnectionResetError:  # the other side closed with our answers unread: all sent was read
            return None
        if n == 0:
            return None
        got += n
    return bytes(buf)


# -- the daemon's side ---------------------------------------------------------------------------------------


class WriterClient:
    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def open(self) -> int:
        return int(self._call("open", self.path, fresh=True))

    def write(self, segments: list[Any], links: list[Any]) -> None:
        self._call("write", segments, links)

    def prune(self, cutoff: float, max_bytes: int) -> int:
        return int(self._call("prune", cutoff, max_bytes))

    def close(self) -> None:
        sock, self._sock = self._sock, None
        proc, self._proc = self._proc, None
        if sock is not None:
            sock.close()  # the writer finishes, closes the file and exits
        if proc is not None:
            try:
                proc.wait(START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            SPAWNED.discard(proc.pid)

    def _call(self, op: str, *args: Any, fresh: bool = False) -> Any:
        if self._sock is None:
            self._start()
            if not fresh:
                self._call("open", self.path, fresh=True)
        sock = self._sock
        assert sock is not None
        try:
            _send(sock, [op, *args])
            answer = _receive(sock)
        except OSError as e:
            answer = None
            error: str = f"{type(e).__name__}: {e}"
        else:
            error = "the writer process ended"
        if answer is None:
            self.close()
            raise WriterError(error)
        status, value = answer
        if status != "ok":
            raise WriterError(value)
        return value

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            argv = [sys.executable, "-m", "router.record.writer", str(theirs.fileno())]
            self._proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
            SPAWNED.add(self._proc.pid)  # not a stray for a subreaper router's orphan sweep
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours


# -- the writer's side ---------------------------------------------------------------------------------------


class Writer:
    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None
        self.blobs: schema.Blobs | None = None

    def handle(self, op: str, args: list[Any]) -> Any:
        if op == "open":
            self.close()
            self.blobs = schema.Blobs(args[0])
            self.blobs.open_for_append()
            self.db, seq = schema.open_db(args[0], self.blobs)
            return seq
        db, blobs = self.db, self.blobs
        if db is None or blobs is None:
            raise RuntimeError("the record is not open")
        if op == "write":
            segments, links = args
            schema.write_segments(db, blobs, segments, links)
            return None
        if op == "prune":
            return schema.prune(db, blobs, cutoff=args[0], max_bytes=args[1])
        raise ValueError(f"unknown request {op!r}")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.blobs is not None:
            self.blobs.close()
            self.blobs = None


def serve(sock: socket.socket) -> None:
    writer = Writer()
    try:
        while (message := _receive(sock)) is not None:
            op, *args = message
            try:
                answer = ["ok", writer.handle(op, args)]
            except (sqlite3.Error, OSError, ValueError, RuntimeError, TypeError) as e:
                answer = ["error", f"{type(e).__name__}: {e}"]
            try:
                _send(sock, answer)
            except OSError:
                pass  # the daemon is gone; what it sent is written: read on to the end
    finally:
        writer.close()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(NICE)
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
