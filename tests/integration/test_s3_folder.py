"""The emulated bucket end to end: files written to a folder reach a real function once, with its record.

The function (tests/functions/s3_record) appends every event it receives to events.jsonl; the tests assert
on that file. Written files: plain, atomic rename, nested folders, a large file written slowly, removals,
and files changed while the router was down (graceful restart, and kill -9).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from router.core.clock import SystemClock
from router.core.envelope import Envelope
from router.core.errors import Throttled
from router.core.ports import Delivery, Source, SourceContext
from router.sources import s3
from router.validate import parse_config
from tests.integration import record_function
from tests.integration.record_function import records, seen, wait_for_keys
from tests.support import wait_until

CONFIG = (
    record_function.CONFIG
    + """
sources:
  uploads: {kind: s3, bucket: uploads, directory: bucket, stable_s: STABLE}
routes:
  - {source: uploads, function: record, events: ["ObjectCreated:*", "ObjectRemoved:*"]}
"""
)


def config(stable_s: float = 0.3) -> str:
    return CONFIG.replace("STABLE", str(stable_s))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_slowly(path: Path, chunks: list[bytes], pause_s: float) -> None:
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            f.flush()
            time.sleep(pause_s)


async def test_files_reach_the_function_once_with_the_right_record(make_router) -> None:
    router = await make_router(
        config(stable_s=1.0),
        files={
            "bucket/existing.txt": "there before the start",
            "bucket/.hidden": "x",
            "bucket/notes.txt~": "x",
        },
    )
    root, base = router.base_dir / "bucket", router.base_dir
    big = [os.urandom(128 * 1024) for _ in range(8)]
    slow = threading.Thread(target=write_slowly, args=(root / "big.bin", big, 0.03))
    slow.start()
    (root / "plain.txt").write_bytes(b"plain content")
    (root / ".atomic.json.tmp").write_bytes(b'{"atomic": true}')
    os.replace(root / ".atomic.json.tmp", root / "atomic.json")
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "deep name (1).txt").write_bytes(b"deep")
    (root / "gone.txt").write_bytes(b"short-lived")
    staging = router.base_dir / "staging" / "tree" / "leaf"
    staging.mkdir(parents=True)
    (staging / "moved.txt").write_bytes(b"moved in")
    os.rename(router.base_dir / "staging" / "tree", root / "tree")  # a whole folder moved into the bucket
    await asyncio.to_thread(slow.join)

    keys = [
        "existing.txt",
        "plain.txt",
        "atomic.json",
        "a/b/c/deep+name+%281%29.txt",
        "big.bin",
        "gone.txt",
        "tree/leaf/moved.txt",
    ]
    await wait_for_keys(base, *keys)
    (root / "gone.txt").unlink()
    await wait_for_keys(base, "gone.txt", event="ObjectRemoved:Delete")
    (root / "sentinel.txt").write_bytes(b"last")
    await wait_for_keys(base, "sentinel.txt")

    counts = seen(base)
    assert {k for (_, k) in counts} == {*keys, "sentinel.txt"}  # no hidden, backup or temp files
    assert all(n == 1 for n in counts.values()), counts
    by_key = {(r["eventName"], r["s3"]["object"]["key"]): r for r in records(base)}
    whole = b"".join(big)
    big_rec = by_key[("ObjectCreated:Put", "big.bin")]
    assert big_rec["s3"]["object"]["size"] == len(whole)  # not announced half-written
    assert big_rec["s3"]["object"]["eTag"] == md5(whole)
    deep = by_key[("ObjectCreated:Put", "a/b/c/deep+name+%281%29.txt")]
    assert deep["s3"]["object"]["eTag"] == md5(b"deep") and deep["s3"]["object"]["size"] == 4
    assert by_key[("ObjectCreated:Put", "atomic.json")]["s3"]["object"]["eTag"] == md5(b'{"atomic": true}')
    rec = by_key[("ObjectCreated:Put", "plain.txt")]
    assert rec["eventSource"] == "aws:s3" and rec["eventVersion"] == "2.1" and rec["awsRegion"] == "us-east-1"
    assert rec["s3"]["bucket"] == {
        "name": "uploads",
        "ownerIdentity": {"principalId": rec["s3"]["bucket"]["ownerIdentity"]["principalId"]},
        "arn": "arn:aws:s3:::uploads",
    }
    assert set(rec) >= {"eventTime", "userIdentity", "requestParameters", "responseElements"}
    removed = by_key[("ObjectRemoved:Delete", "gone.txt")]
    assert "size" not in removed["s3"]["object"]
    assert (
        removed["s3"]["object"]["sequencer"]
        > by_key[("ObjectCreated:Put", "gone.txt")]["s3"]["object"]["sequencer"]
    )


async def test_restarts_announce_what_changed_while_down_without_duplicates(make_router) -> None:
    router = await make_router(config(), files={"bucket/a.txt": "v1", "bucket/c.txt": "c"})
    root, base = router.base_dir / "bucket", router.base_dir
    await wait_for_keys(base, "a.txt", "c.txt")

    assert await router.stop() == 0
    (root / "a.txt").write_bytes(b"version two")
    (root / "b.txt").write_bytes(b"new while down")
    (root / "c.txt").unlink()
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f.txt").write_bytes(b"nested while down")
    await router.start()
    await wait_for_keys(base, "b.txt", "d/e/f.txt")
    await wait_for_keys(base, "c.txt", event="ObjectRemoved:Delete")
    (root / "sentinel-1.txt").write_bytes(b"1")
    await wait_for_keys(base, "sentinel-1.txt")

    counts = seen(base)
    assert counts[("ObjectCreated:Put", "a.txt")] == 2  # v1 before, v2 after the restart
    assert all(n == 1 for k, n in counts.items() if k != ("ObjectCreated:Put", "a.txt")), counts
    etags = [r["s3"]["object"]["eTag"] for r in records(base) if r["s3"]["object"]["key"] == "a.txt"]
    assert etags == [md5(b"v1"), md5(b"version two")]

    # kill -9: nothing acknowledged is lost; what was written while it was dead is announced after the start
    await router.kill()
    (root / "after-kill.txt").write_bytes(b"k")
    await router.start()
    await wait_for_keys(base, "after-kill.txt")
    (root / "sentinel-2.txt").write_bytes(b"2")
    await wait_for_keys(base, "sentinel-2.txt")
    counts = seen(base)
    assert counts[("ObjectCreated:Put", "b.txt")] == 1 and counts[("ObjectCreated:Put", "a.txt")] == 2


class RefusingSubmit:
    """A real submit stand-in: refuses the first `refuse` calls with a dispatch error, then collects."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.calls = 0
        self.accepted: list[Envelope] = []

    async def __call__(self, envelopes: list[Envelope]) -> Delivery:
        self.calls += 1
        if self.calls <= self.refuse:
            raise Throttled("over the limit")
        self.accepted.extend(envelopes)
        return Delivery(queued=len(envelopes))


@contextlib.asynccontextmanager
async def folder_source(settings: str, state_dir: Path, submit: RefusingSubmit) -> AsyncIterator[Source]:
    """The folder source `up` running on these settings until the block ends (then cancelled and closed);
    entered once the source is ready."""
    ready = asyncio.Event()
    ctx = SourceContext(
        name="up",
        config=parse_config(f"sources:\n  up: {settings}\n").sources["up"],
        routes=[],
        state_dir=state_dir,
        clock=SystemClock(),
        submit=submit,
        ready=ready.set,
    )
    source = s3.create(ctx)
    task = asyncio.create_task(source.run())
    try:
        await ready.wait()
        yield source
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await source.aclose()


async def test_a_file_is_recorded_only_after_submit_accepts_it(tmp_path: Path) -> None:
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "x.txt").write_bytes(b"x")
    settings = f"{{kind: s3, bucket: uploads, directory: {tmp_path}/bucket, stable_s: 0}}"
    submit = RefusingSubmit(refuse=2)
    async with folder_source(settings, tmp_path / "state", submit) as source:
        await wait_until(lambda: len(submit.accepted) == 1, "the file accepted after two refusals")
        journal = (tmp_path / "state" / "objects.jsonl").read_text()
        assert submit.calls == 3 and '"x.txt"' in journal
    await source.aclose()  # closing again is harmless

    # a fresh source on the same state announces nothing again
    again = RefusingSubmit(refuse=0)
    async with folder_source(settings, tmp_path / "state", again):
        (tmp_path / "bucket" / "y.txt").write_bytes(b"y")
        await wait_until(lambda: len(again.accepted) == 1, "y.txt")
        assert [e.subject for e in again.accepted] == ["y.txt"]


async def test_announce_existing_false_skips_what_is_there_at_the_first_start(tmp_path: Path) -> None:
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "old.txt").write_bytes(b"old")
    settings = f"{{kind: s3, bucket: uploads, directory: {tmp_path}/bucket, announce_existing: false}}"
    submit = RefusingSubmit(refuse=0)
    async with folder_source(settings, tmp_path / "state", submit):
        (tmp_path / "bucket" / "new.txt").write_bytes(b"new")
        await wait_until(lambda: len(submit.accepted) == 1, "new.txt")
        (tmp_path / "bucket" / "old.txt").write_bytes(b"old, changed")  # a new version of a known file
        await wait_until(lambda: len(submit.accepted) == 2, "old.txt's new version")
        assert [e.subject for e in submit.accepted] == ["new.txt", "old.txt"]
