"""The write journal: which invocation wrote what into the router's own event sources (loop protection).

Some paths cannot carry a trace (router/core/trace.py) from the function that writes to the event it causes:
an object put through the S3 API, a Kinesis record, a DynamoDB item, a file written into a watched folder
without the `user.router.trace` attribute. For these the router's Python runtime
(router/invoker/runtimes/python_writes.py) notes each write a function *starts* into one of the router's
own sources, before it happens, in a journal; a source that later reads the event looks the writer up and
gives the event the writer's trace, so the chain is counted as if the trace had travelled. The contract:

* The router tells every instance, in its environment, where the journal is (`_ROUTER_WRITES`), which
  folders it watches (`_ROUTER_WATCHED_DIRS`, real paths joined by os.pathsep) and which AWS endpoints its
  sources read (`_ROUTER_AWS_ENDPOINTS`, `host:port` joined by commas). No folders and no endpoints: no
  journal, and the runtime installs no hook.
* An instance appends one JSON line per write to `<journal>/<pid>.jsonl`:
  `{"t": trace, "at": epoch s, "k": kind, ...}` with, per kind, `file` `{"path"}`, `s3` `{"bucket", "key"}`,
  `kinesis` `{"stream", "pk", "sha"}` (SHA-256 hex of the data) and `dynamodb` `{"table", "attrs"}` (each
  attribute of the written item or key as `canonical_attribute` spells it).
* `WriteJournal.refresh()` reads what was appended since; a source calls it after it fetched events and
  before it looks them up, so a write noted before the service stored it is always seen. `take_*` returns
  the trace of the newest matching write and forgets that write (one write causes one event). Entries
  older than `ttl_s` are forgotten, and journal files untouched for that long are deleted.

Matching is by content (the path, the bucket and key, the partition key and data, the item's key), so an
event somebody else caused is never taken for the function's own, whatever the timing. Thread-safe: the
folder source looks files up from worker threads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

JOURNAL_ENV = "_ROUTER_WRITES"
WATCHED_DIRS_ENV = "_ROUTER_WATCHED_DIRS"
ENDPOINTS_ENV = "_ROUTER_AWS_ENDPOINTS"
TTL_S = 600.0


def canonical_attribute(value: Any) -> str:
    """A DynamoDB key attribute as 'S:text', 'N:digits' or 'B:base64', from a request's JSON or a record."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, inner),) = value.items()
        if isinstance(inner, bytes | bytearray):
            inner = base64.b64encode(inner).decode()
        return f"{kind}:{inner}"
    return json.dumps(value, sort_keys=True)


def data_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class WriteJournal:
    def __init__(self, folder: Path, *, ttl_s: float = TTL_S, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.ttl_s = ttl_s
        self.clock = clock
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self._entries: dict[tuple[str, ...], list[tuple[float, str]]] = {}  # key -> [(at, trace)]
        self._items: dict[str, list[tuple[float, str, dict[str, str]]]] = {}  # table -> [(at, trace, attrs)]
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Start empty: the files of a previous run are removed (their instances are gone)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        # Instances of isolated functions run as uids of their own (docs/invoker.md): each appends to its own
        # file in a shared folder, as in /tmp (sticky: none can remove another's file).
        os.chmod(self.folder, 0o1777)
        for path in self.folder.glob("*.jsonl"):
            path.unlink(missing_ok=True)

    def refresh(self) -> None:
        with self._lock:
            now = self.clock()
            try:
                files = list(os.scandir(self.folder))
            except OSError:
                return
            for entry in files:
                if entry.name.endswith(".jsonl"):
                    self._read(entry, now)
            self._expire(now)

    def _read(self, entry: os.DirEntry[str], now: float) -> None:
        try:
            stat = entry.stat()
            if now - stat.st_mtime > self.ttl_s:
                os.unlink(entry.path)
                self._offsets.pop(entry.name, None)
                self._partial.pop(entry.name, None)
                return
            offset = self._offsets.get(entry.name, 0)
            if stat.st_size <= offset:
                return
            with open(entry.path, "rb") as f:
                f.seek(offset)
                fresh = f.read()
        except OSError:
            return
        self._offsets[entry.name] = offset + len(fresh)
        *lines, rest = (self._partial.pop(entry.name, b"") + fresh).split(b"\n")
        if rest:
            self._partial[entry.name] = rest  # a line still being written
        for line in lines:
            self._add(line)

    def _add(self, line: bytes) -> None:
        try:
            doc = json.loads(line)
            at, trace, kind = float(doc["at"]), str(doc["t"]), doc["k"]
            if kind == "dynamodb":
                self._items.setdefault(doc["table"], []).append((at, trace, dict(doc["attrs"])))
                return
            key = _key(kind, doc)
        except (ValueError, KeyError, TypeError):
            return  # a line this reader does not know: not a write it can match
        self._entries.setdefault(key, []).append((at, trace))

    def _expire(self, now: float) -> None:
        oldest = now - self.ttl_s
        for key in list(self._entries):
            kept = [e for e in self._entries[key] if e[0] >= oldest]
            if kept:
                self._entries[key] = kept
            else:
                del self._entries[key]
        for table in list(self._items):
            items = [e for e in self._items[table] if e[0] >= oldest]
            if items:
                self._items[table] = items
            else:
                del self._items[table]

    def _take(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            found = self._entries.get(key)
            if not found:
                return None
            _, trace = found.pop()
            if not found:
                del self._entries[key]
            return trace

    def take_file(self, path: str | os.PathLike[str]) -> str | None:
        return self._take(("file", os.path.realpath(path)))

    def take_s3(self, bucket: str, key: str) -> str | None:
        return self._take(("s3", bucket, key))

    def take_kinesis(self, stream: str, partition_key: str, data: bytes) -> str | None:
        return self._take(("kinesis", stream, partition_key, data_digest(data)))

    def take_dynamodb(self, table: str, keys: Mapping[str, Any]) -> str | None:
        """The writer of the item with these key attributes (as a stream record's `Keys` has them)."""
        wanted = {name: canonical_attribute(value) for name, value in keys.items()}
        with self._lock:
            items = self._items.get(table)
            for i in range(len(items or []) - 1, -1, -1):
                assert items is not None
                _, trace, attrs = items[i]
                if all(attrs.get(name) == value for name, value in wanted.items()):
                    del items[i]
                    return trace
            return None


def _key(kind: str, doc: dict[str, Any]) -> tuple[str, ...]:
    if kind == "file":
        return ("file", str(doc["path"]))
    if kind == "s3":
        return ("s3", str(doc["bucket"]), str(doc["key"]))
    if kind == "kinesis":
        return ("kinesis", str(doc["stream"]), str(doc["pk"]), str(doc["sha"]))
    raise KeyError(kind)
