"""The cost of the durable record on the Invoke hot path: `router serve` with recording on against off.

    python bench/record_bench.py [--rounds 5] [--duration 3] [--conc 16] [--seq 300]
    python bench/record_bench.py --peer ../shared/peers/bench_invoke.py [--peer-runs 5]

Starts real routers (subprocesses, a Python echo function of 1769 MB as in the peer benchmark) that differ
only in their record: `durable` (the default, `record: {enabled: true}`: SQLite under state_dir, written
off the hot path), `memory` (`record: {enabled: false}`: the in-memory ring) and `off` (`inspect: {enabled:
false}`: nothing recorded). Then, in rounds that take the routers in turn (so all see the same machine
load), measures warm sequential latency (p50 of `--seq` calls at concurrency 1) and throughput (`--conc`
keep-alive connections calling back to back for `--duration` seconds) through the Lambda Invoke API.

Printed: per router the medians over the rounds, and the ratios of `durable` to `off` and to `memory`
(throughput ratio 1.0 = no cost; latency ratio 1.0 = no cost), and the CPU time the router process (all its
threads, and the record's writer process; not the function instances) spent per call in the throughput
phase, the measure least moved by other load on a shared machine. Every call must answer 200 with its own
payload; the record's rows are counted at the end to show that the durable record wrote every call.

With `--peer`, the same routers (durable and off) are measured by the peer kit's load generator instead
(the issue's "peer benchmark with recording on against off, same run"): both URLs in one run of
bench_invoke.py, phase by phase interleaved, with each router's process tree for the CPU figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
from support import descendants, free_port

RECORDS = {
    "durable": "record: {enabled: true}",
    "memory": "record: {enabled: false}",
    "off": "inspect: {enabled: false}",
}
CONFIG = """server: {{host: 127.0.0.1, port: {port}}}
state_dir: state
{record}
functions:
  echo: {{runtime: python3.11, handler: app.handler, code: echo, memory_mb: 1769, timeout_s: 10}}
"""
PAYLOAD = b'{"bench":"invoke","seq":"%010d","n":42,"ok":true,"tags":["a","b"],"nested":{"k":"v","x":1.5}}'


def start(base: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    folder = base / name
    (folder / "echo").mkdir(parents=True)
    (folder / "echo" / "app.py").write_text("def handler(event, context):\n    return event\n")
    port = free_port()
    (folder / "router.yaml").write_text(CONFIG.format(port=port, record=RECORDS[name]))
    log = open(folder / "router.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "-c", "router.yaml", "--log-level", "warning"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1):
                return proc, f"{url}/2015-03-31/functions/echo/invocations"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name}: not ready; see {folder / 'router.log'}")


async def call(session: aiohttp.ClientSession, url: str, n: int) -> None:
    body = PAYLOAD % n
    async with session.post(url, data=body) as response:
        answer = await response.read()
    if response.status != 200 or json.loads(answer) != json.loads(body):
        raise RuntimeError(f"bad answer {response.status}: {answer[:200]!r}")


async def sequential(url: str, n: int) -> float:
    """p50 latency in ms of n calls at concurrency 1."""
    times = []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            t0 = time.perf_counter()
            await call(session, url, i)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def cpu_s(pid: int) -> float:
    """CPU time (user + system) of the router process, all its threads, and of its record writer process
    (router/record/writer.py), in seconds; not the function instances."""
    return sum(_cpu(p) for p in (pid, *_writers(pid)))


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _writers(pid: int) -> list[int]:
    found = []
    for child in descendants(pid)[1:]:
        try:
            if b"router.record.writer" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


async def throughput(
    url: str, conc: int, duration: float, pid: int, written: Callable[[], int]
) -> tuple[int, float, float]:
    """(calls made, calls per second, router CPU microseconds per call). The CPU is taken once `written()`
    (the rows the record holds) has stopped growing: the writer's work for the phase is counted."""
    count = 0
    stop = time.perf_counter() + duration

    async def worker(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await call(session, url, k * 1_000_000 + count)
            count += 1

    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector) as session:
        start_at, cpu_at = time.perf_counter(), cpu_s(pid)
        await asyncio.gather(*(worker(session, k) for k in range(conc)))
        elapsed = time.perf_counter() - start_at
        await asyncio.sleep(0.3)  # the record's writer flushes what the phase left (counted in its CPU)
        rows = -1
        while (now := written()) != rows:
            rows = now
            await asyncio.sleep(0.5)
        return count, count / elapsed, (cpu_s(pid) - cpu_at) / count * 1e6


def peer(script: str, runs: int, routers: dict[str, tuple[subprocess.Popen[bytes], str]], base: Path) -> None:
    """The peer benchmark on two routers at once: its phases interleaved across them, each router's process
    tree (daemon, record writer, instances) measured; medians of the per-run ratios durable/off."""
    out = base / "peer.jsonl"
    argv = [sys.executable, script, *(url for _, url in routers.values())]
    for name, (proc, _) in routers.items():
        argv += ["--label", name, "--server-pid", str(proc.pid)]
    for run in range(runs):
        print(f"peer run {run + 1} of {runs}", flush=True)
        subprocess.run([*argv, "--json-out", str(out)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, script, "--summarize", str(out)], check=True)


def rows_written(base: Path, name: str) -> int:
    """Invocations in a durable router's record (0 for the others)."""
    path = base / name / "state" / "record.db"
    if name != "durable" or not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT COALESCE(SUM(invocations), 0) FROM segments").fetchone()[0])


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--seq", type=int, default=300)
    ap.add_argument(
        "--peer",
        metavar="BENCH_INVOKE_PY",
        help="instead, run the peer kit's load generator (../shared/peers/bench_invoke.py) over the durable "
        "and off routers in the same run, --peer-runs times, and print its medians",
    )
    ap.add_argument("--peer-runs", type=int, default=5)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="record-bench-"))
    routers = {name: start(base, name) for name in RECORDS}
    try:
        if args.peer:
            peer(args.peer, args.peer_runs, {n: routers[n] for n in ("durable", "off")}, base)
            return
        for _, url in routers.values():
            await sequential(url, 100)  # warm: instances started, connections and caches hot
        lat: dict[str, list[float]] = {n: [] for n in routers}
        rate: dict[str, list[float]] = {n: [] for n in routers}
        cpu: dict[str, list[float]] = {n: [] for n in routers}
        names = list(routers)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                proc, url = routers[name]
                lat[name].append(await sequential(url, args.seq))
                _, calls_s, us = await throughput(
                    url, args.conc, args.duration, proc.pid, lambda n=name: rows_written(base, n)
                )
                rate[name].append(calls_s)
                cpu[name].append(us)
            shown = (f"{n} {rate[n][-1]:.0f}/s p50 {lat[n][-1]:.2f}ms cpu {cpu[n][-1]:.0f}us" for n in names)
            print(f"round {r + 1}: " + "  ".join(shown))
        print()
        med = {
            n: (statistics.median(rate[n]), statistics.median(lat[n]), statistics.median(cpu[n]))
            for n in names
        }
        for n in names:
            print(
                f"{n:8} throughput {med[n][0]:8.0f} calls/s   sequential p50 {med[n][1]:.3f} ms   "
                f"router cpu {med[n][2]:.0f} us/call"
            )
        for other in ("off", "memory"):
            d, o = med["durable"], med[other]
            print(
                f"durable/{other}: throughput {d[0] / o[0]:.3f}, p50 latency {d[1] / o[1]:.3f}, "
                f"router cpu per call {d[2] / o[2]:.3f}"
            )
    finally:
        for proc, _ in routers.values():
            os.killpg(proc.pid, 15)
        for proc, _ in routers.values():
            proc.wait(30)
    print(f"durable record: {rows_written(base, 'durable')} invocations written")


if __name__ == "__main__":
    asyncio.run(main())
