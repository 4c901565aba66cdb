"""The emulated bucket: a folder watched with watchfiles, whose files are the bucket's objects.

Contract (on top of router/sources/s3.py's):

* The key of a file is its path relative to the folder, with '/' between folders; files in nested folders
  are objects too. A file, or any folder on its path, whose name matches an `ignore:` pattern is not an
  object (hidden files, editor backups and the temp files of atomic writes by default).
* A version of a file is its (size, mtime, inode). A new version is announced as `ObjectCreated:Put` once the
  file has kept the same version for `stable_s` (so a file still being written is not announced
  half-written), with its size and eTag (MD5 of the content, read after the wait and checked unchanged).
  Writing a temp file and renaming it over the key (an atomic replace) gives one event for the key.
* A file removed (or renamed away) gives `ObjectRemoved:Delete` when a route asks for removals.
* At start, the folder is compared with `<state_dir>/objects.jsonl`: files added or changed while the router
  was down are announced, files removed meanwhile are removed. The watch is started before that scan, so
  nothing written during start-up slips between the two. On the first start (no state yet) the files already
  there are announced unless `announce_existing: false`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.config.sources.s3 import Config
from router.core.ports import SourceContext
from router.core.trace import from_xattr
from router.sources.s3.common import Announcer, NewVersion, is_ignored, resolve_directory
from router.sources.s3.state import AnnouncedObjects

log = logging.getLogger("router.sources.s3")

RUST_TIMEOUT_MS = 250  # how often the watcher thread looks up; its first look-up tells us it is watching
CHUNK = 1 << 20
BATCH = 64  # files announced together: hashed in parallel, queued concurrently, recorded with one fsync


@dataclass
class _Pending:
    stamp: str | None  # the version last seen; None before the first look
    since: float  # monotonic time it was first seen with that version


def file_stamp(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def hash_if_unchanged(path: Path, stamp: str) -> str | None:
    """The MD5 (S3's eTag) of a file, or None if it is not at version `stamp` after reading. Blocking."""
    h = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        after = file_stamp(path.stat())
    except OSError:
        return None
    return h.hexdigest() if after == stamp else None


class FolderBucket:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.root = resolve_directory(ctx)
        self.objects: AnnouncedObjects | None = None
        self.announcer: Announcer | None = None
        self.pending: dict[str, _Pending] = {}
        self.dirty = asyncio.Event()
        self.watching = asyncio.Event()
        self.stop = asyncio.Event()

    async def run(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()  # the watcher reports absolute, resolved paths
        self.objects = AnnouncedObjects(Path(self.ctx.state_dir) / "objects.jsonl")
        self.announcer = Announcer(self.ctx, self.objects)
        first_start = self.objects.empty_journal
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(self._watch())
            await self._wait_watching(watcher)
            self._scan_all(await asyncio.to_thread(self._files, self.root), first_start)
            self.objects.mark_started()
            self.ctx.ready()
            await self._settle_loop()

    async def _wait_watching(self, watcher: asyncio.Task[None]) -> None:
        waiting = asyncio.ensure_future(self.watching.wait())
        await asyncio.wait([waiting, watcher], return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            watcher.result()  # the watcher failed before it watched: raise its error

    # -- watching ---------------------------------------------------------------------------------------

    async def _watch(self) -> None:
        from watchfiles import Change, awatch

        async for changes in awatch(
            self.root,
            stop_event=self.stop,
            step=20,
            debounce=200,
            rust_timeout=RUST_TIMEOUT_MS,
            yield_on_timeout=True,
            force_polling=self.config.force_polling or None,
            poll_delay_ms=100,
            recursive=True,
            ignore_permission_denied=True,
        ):
            self.watching.set()
            self._check_root()
            for folder in self._take(changes, Change.deleted):
                # A new folder's files may predate its watch: look inside.
                for file in await asyncio.to_thread(self._files, folder):
                    self._mark(file)
            if self.pending:
                self.dirty.set()
        if not self.stop.is_set():
            raise RuntimeError(f"watching {self.root} ended")

    def _check_root(self) -> None:
        """The watch outlives its folder silently; fail instead, so the daemon restarts the source, which
        recreates the folder and rescans it."""
        if not self.root.is_dir():
            raise RuntimeError(f"the bucket folder {self.root} is gone")

    def _take(self, changes: set[tuple[Any, str]], deleted: Any) -> list[Path]:
        """Mark changed paths pending; return the folders among them (added or moved in)."""
        folders = []
        for change, raw in changes:
            path = Path(raw)
            if change != deleted and path.is_dir():
                if self._key(path) is not None:
                    folders.append(path)
            else:
                self._mark(path)
        return folders

    def _key(self, path: Path) -> str | None:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return None
        key = rel.as_posix()
        if key in ("", ".") or is_ignored(key, self.config.ignore):
            return None
        return key

    def _mark(self, path: Path) -> None:
        key = self._key(path)
        if key is not None:
            self.pending.setdefault(key, _Pending(stamp=None, since=self.ctx.clock.monotonic()))

    # -- scanning ---------------------------------------------------------------------------------------

    def _files(self, top: Path) -> list[Path]:
        """Every file under top that may be an object (ignored folders are not entered). Runs in a thread."""
        found: list[Path] = []
        for folder, dirs, files in os.walk(top):
            base = Path(folder)
            dirs[:] = [d for d in dirs if self._key(base / d) is not None]
            found.extend(base / name for name in files)
        return sorted(found)

    def _scan_all(self, files: list[Path], first_start: bool) -> None:
        """Compare the folder with what was announced: changed files become pending, vanished ones too."""
        assert self.objects is not None
        seen: set[str] = set()
        for path in files:
            key = self._key(path)
            if key is None:
                continue
            seen.add(key)
            if first_start and not self.config.announce_existing:
                self._record_silently(key, path)
            else:
                self._mark(path)
        for key in self.objects.keys():
            if key not in seen:
                self._mark(self.root / key)
        if self.pending:
            self.dirty.set()

    def _record_silently(self, key: str, path: Path) -> None:
        from router.sources.s3.state import ObjectVersion

        assert self.objects is not None
        try:
            st = path.stat()
        except OSError:
            return
        self.objects.record(key, ObjectVersion(size=st.st_size, etag="", stamp=file_stamp(st), seq=0))

    # -- settling: announce what is stable, remove what is gone ----------------------------------------------

    async def _settle_loop(self) -> None:
        tick = max(0.02, min(0.25, self.config.stable_s / 4))
        while True:
            if self.pending:
                await self._settle_pending()
            if self.pending:
                await self.ctx.clock.sleep(tick)
            else:
                self.dirty.clear()
                await self.dirty.wait()

    async def _settle_pending(self) -> None:
        now = self.ctx.clock.monotonic()
        stable: list[tuple[str, str]] = []
        for key in list(self.pending):
            entry = self.pending.get(key)
            if entry is None:
                continue
            match self._inspect(key, entry, now):
                case "gone":
                    await self._gone(key)
                case "stable":
                    assert entry.stamp is not None
                    stable.append((key, entry.stamp))
                case _:
                    pass
        for start in range(0, len(stable), BATCH):
            await self._announce(stable[start : start + BATCH])

    def _inspect(self, key: str, entry: _Pending, now: float) -> str:
        """What a pending key is now: gone, stable (for stable_s), or still changing ("wait")."""
        path = self.root / key
        try:
            st = path.stat()
        except FileNotFoundError:
            return "gone"
        except OSError as e:
            log.warning("cannot read %s: %s", path, e)
            self.pending.pop(key, None)
            return "skip"
        if not path.is_file():
            return "gone"  # a file that became a folder is gone as an object; its files are marked apart
        stamp = file_stamp(st)
        if stamp != entry.stamp:
            entry.stamp, entry.since = stamp, now
        if now - entry.since < self.config.stable_s:
            return "wait"
        return "stable"

    async def _announce(self, stable: list[tuple[str, str]]) -> None:
        """Hash the stable files (in threads), then announce those unchanged since, all together."""
        assert self.objects is not None and self.announcer is not None
        fresh = []
        for key, stamp in stable:
            known = self.objects.get(key)
            if known is not None and known.stamp == stamp:
                self.pending.pop(key, None)  # this version was announced already (e.g. before a restart)
            else:
                fresh.append((key, stamp))
        etags = await asyncio.gather(
            *(asyncio.to_thread(hash_if_unchanged, self.root / k, s) for k, s in fresh)
        )
        versions = []
        writes = self.ctx.writes
        if writes is not None and fresh:
            writes.refresh()
        for (key, stamp), etag in zip(fresh, etags, strict=True):
            if etag is None:
                continue  # written to or removed while we read it: the next pass sees what happened
            self.pending.pop(key, None)
            size = int(stamp.partition(":")[0])
            versions.append(NewVersion(key=key, size=size, etag=etag, stamp=stamp, trace=self._writer(key)))
        if versions:
            await self.announcer.created(versions)

    def _writer(self, key: str) -> str | None:
        """Loop protection: the trace a writer left on the file (`user.router.trace`), else the trace of the
        invocation the write journal says wrote it (router/core/writes.py), else None."""
        path = self.root / key
        noted = self.ctx.writes.take_file(path) if self.ctx.writes is not None else None
        return from_xattr(path) or noted

    async def _gone(self, key: str) -> None:
        """key (a file, or a folder that held files) no longer exists: announce each vanished object."""
        assert self.objects is not None and self.announcer is not None
        self.pending.pop(key, None)
        prefix = key + "/"
        for known in [k for k in self.objects.keys() if k == key or k.startswith(prefix)]:
            if not (self.root / known).is_file():
                await self.announcer.removed(known)

    async def aclose(self) -> None:
        self.stop.set()
        if self.objects is not None:
            self.objects.close()
