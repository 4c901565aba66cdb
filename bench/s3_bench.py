"""Emulated-bucket throughput: files announced per second by the folder source, against write + hash.

    /tmp/venv/bin/python bench/s3_bench.py [--files 200] [--size 65536] [--rounds 3]

* baseline: write `files` files of `size` bytes into a folder and compute each one's MD5: the I/O any
  announcement needs at the least.
* source: the s3 source (`router.sources.s3`, folder mode, stable_s 0) watching a folder, with a submit that
  only collects; the time from the first write until every file was announced: the watch (inotify through
  watchfiles), the stat checks, the MD5, the record, and one fsync of the journal per file.

Rounds alternate baseline and source so both see the same load on a shared machine; the script prints the
medians and the ratio source / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from router.core.clock import SystemClock
from router.core.envelope import Envelope
from router.core.ports import Delivery, SourceContext
from router.sources import s3
from router.validate import parse_config


def write_files(folder: Path, files: int, size: int) -> None:
    for i in range(files):
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(size))


def baseline(folder: Path, files: int, size: int) -> float:
    start = time.perf_counter()
    write_files(folder, files, size)
    for path in folder.iterdir():
        hashlib.md5(path.read_bytes()).hexdigest()
    return time.perf_counter() - start


async def through_source(root: Path, files: int, size: int) -> float:
    bucket = root / "bucket"
    bucket.mkdir()
    cfg = parse_config(f"sources:\n  b: {{kind: s3, bucket: bench, directory: {bucket}, stable_s: 0}}\n")
    done = asyncio.Event()
    ready = asyncio.Event()
    seen: list[Envelope] = []

    async def submit(envelopes: Sequence[Envelope]) -> Delivery:
        seen.extend(envelopes)
        if len(seen) >= files:
            done.set()
        return Delivery(queued=len(envelopes))

    ctx = SourceContext(
        name="b",
        config=cfg.sources["b"],
        routes=[],
        state_dir=root / "state",
        clock=SystemClock(),
        submit=submit,
        ready=ready.set,
    )
    source = s3.create(ctx)
    task = asyncio.create_task(source.run())
    await ready.wait()
    start = time.perf_counter()
    await asyncio.to_thread(write_files, bucket, files, size)
    await done.wait()
    elapsed = time.perf_counter() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await source.aclose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=65536)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base_times, source_times = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as d:
            base_times.append(baseline(Path(d), args.files, args.size))
        with tempfile.TemporaryDirectory() as d:
            source_times.append(asyncio.run(through_source(Path(d), args.files, args.size)))
    b, s = statistics.median(base_times), statistics.median(source_times)
    print(f"files={args.files} size={args.size} rounds={args.rounds}")
    print(f"baseline (write + md5):      {args.files / b:10.0f} files/s  ({b * 1000:.0f} ms)")
    print(f"folder source (announced):   {args.files / s:10.0f} files/s  ({s * 1000:.0f} ms)")
    print(f"ratio source / baseline time: {s / b:.1f}")


if __name__ == "__main__":
    main()
