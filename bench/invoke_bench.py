"""Lambda Invoke API throughput, latency and CPU per call, against a bare aiohttp echo in the same run.

    .venv/bin/python bench/invoke_bench.py [--duration 10] [--concurrency 16] [--cpus 0] [--workers N]

Starts `router serve` (a subprocess, this checkout) with one Python echo function (returns the event,
1769 MB: one full vCPU's share on Lambda), and a bare aiohttp server answering the same route with the
request body. A small raw-socket HTTP/1.1 client in this process (cheap, so that it takes little of the
cores it shares with the servers) then measures each, in short interleaved rounds so that load from other
work on the machine hits both alike:

* c=1: sequential calls on one keep-alive connection: p50 / p99 latency;
* c=N: N keep-alive connections calling back to back: calls/s and p50 / p99 latency;
* CPU per call at c=N: the daemon process, its invoker workers (`invoker.workers`), the function instances,
  and this client, apart.

`--cpus 0` pins both servers (and everything they start) and this client to those CPUs with
sched_setaffinity, the way `taskset -c 0` would; `--compare-cpus 0 0,1` runs the whole measurement once per
set and prints the throughput ratios (does the router use a second core?). `--variant` measures several
routers side by side in the same run: serve options (e.g. `--workers 2`), config YAML, or another source
tree (e.g. a `git archive` of the previous commit, to measure a change against what came before it). The
last line is a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from support import descendants, free_port, stop, wait_http, wait_ready

REPO = Path(__file__).resolve().parent.parent
PATH = "/2015-03-31/functions/echo/invocations"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

BARE_SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def echo(request):
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/2015-03-31/functions/{name}/invocations", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)


def pinned(cpus: set[int] | None):  # type: ignore[no-untyped-def]
    """A preexec_fn that pins the child (and what it starts later) to `cpus`."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_router(
    folder: Path, cpus: set[int] | None, serve_args: list[str], extra: list[str], source: Path = REPO
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (folder / "echo").mkdir()
    (folder / "echo" / "app.py").write_text("def handler(event, context):\n    return event\n")
    config = textwrap.dedent(
        f"""
        server: {{port: {port}}}
        state_dir: state
        functions:
          echo: {{runtime: python3.11, handler: app.handler, code: echo, memory_mb: 1769, timeout_s: 10}}
        """
    )
    (folder / "router.yaml").write_text(config + "\n".join(extra) + "\n")
    log = open(folder / "router.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "-c", "router.yaml", *serve_args],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=pinned(cpus),
        env={**os.environ, "PYTHONPATH": str(source)},
    )
    wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    return proc, f"http://127.0.0.1:{port}"


def start_bare(cpus: set[int] | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(port)], start_new_session=True, preexec_fn=pinned(cpus)
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    return proc, url


def start_floor(cpus: set[int] | None) -> tuple[subprocess.Popen[bytes], str]:
    """bench/floor_server.py: the router's design with nothing else (docs/performance.md, "The floor")."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "floor_server.py"), str(port)],
        start_new_session=True,
        preexec_fn=pinned(cpus),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    return proc, url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, including its reaped children (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def daemons(pid: int) -> list[int]:
    """The server's own processes in its tree (the daemon and any workers), not function instances (whose
    command line names a runtime bootstrap: the router's own, or a `provided` one)."""
    own = []
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read()
        except OSError:
            continue
        if b"bootstrap" not in argv:
            own.append(p)
    return own


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# -- the client: raw sockets, one request at a time per connection --------------------------------------


class Client(asyncio.Protocol):
    """One keep-alive connection; `call()` sends one POST and returns once its whole answer is in."""

    def __init__(self, head: bytes) -> None:
        self._head = head
        self._buf = bytearray()
        self._need = -1
        self._status = 0
        self._body_at = 0
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._need < 0:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[: end + 2]).lower()  # each header line ends with CRLF, the last one too
            start = head.index(b"content-length:") + 15
            self._status = int(head[9:12])
            self._body_at = end + 4
            self._need = self._body_at + int(head[start : head.index(b"\r\n", start)])
        if len(self._buf) >= self._need and self._waiter is not None:
            body = bytes(self._buf[self._body_at : self._need])
            del self._buf[: self._need]
            self._need = -1
            waiter, self._waiter = self._waiter, None
            waiter.set_result((self._status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed"))

    async def call(self, body: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        return await self._waiter


async def connect(url: str) -> Client:
    host, port = url.split("//", 1)[1].split(":")
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: "
    ).encode()
    _, client = await asyncio.get_running_loop().create_connection(lambda: Client(head), host, int(port))
    client.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    return client


@dataclass
class Phase:
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    daemon_cpu_s: float = 0.0
    helper_cpu_s: float = 0.0
    instance_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def pct(self, p: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")

    def per_call_us(self, cpu_s: float) -> float:
        return cpu_s / max(1, self.calls) * 1e6


async def run_calls(url: str, connections: int, seconds: float, phase: Phase) -> None:
    clients = [await connect(url) for _ in range(connections)]
    stop_at = time.perf_counter() + seconds

    async def loop(client: Client, n: int) -> None:
        i = 0
        while time.perf_counter() < stop_at:
            i += 1
            body = b'{"n": %d, "i": %d, "pad": "%s"}' % (n, i, b"x" * 64)
            t0 = time.perf_counter()
            try:
                status, answer = await client.call(body)
            except ConnectionError:
                phase.errors += 1
                return
            phase.latencies_ms.append((time.perf_counter() - t0) * 1000)
            if status == 200 and json.loads(answer) == json.loads(body):
                phase.calls += 1
            else:
                phase.errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(c, n) for n, c in enumerate(clients)))
    phase.seconds += time.perf_counter() - t0
    for c in clients:
        assert c.transport is not None
        c.transport.close()


async def measured(url: str, pid: int, connections: int, seconds: float, phase: Phase) -> None:
    own = daemons(pid)
    helpers = [p for p in own if p != pid]  # invoker workers (and the zygote, which is idle meanwhile)
    kids = [p for p in descendants(pid) if p not in own]
    d0, h0, k0, c0 = (
        cpu_seconds(pid),
        sum(map(cpu_seconds, helpers)),
        sum(map(cpu_seconds, kids)),
        own_cpu_s(),
    )
    await run_calls(url, connections, seconds, phase)
    phase.daemon_cpu_s += cpu_seconds(pid) - d0
    phase.helper_cpu_s += sum(map(cpu_seconds, helpers)) - h0
    phase.instance_cpu_s += sum(map(cpu_seconds, kids)) - k0
    phase.client_cpu_s += own_cpu_s() - c0


async def measure(args: argparse.Namespace, cpus: set[int] | None) -> dict[str, dict[str, float]]:
    """One full measurement; with `cpus`, the servers and this client all run on those CPUs only."""
    everywhere = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        return await _measure(args, cpus)
    finally:
        os.sched_setaffinity(0, everywhere)


async def _measure(args: argparse.Namespace, cpus: set[int] | None) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="invoke-bench-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        targets: dict[str, tuple[str, int]] = {}
        try:
            for label, serve_args, config, source in variants(args):
                folder = Path(tmp) / label
                folder.mkdir()
                router, url = start_router(folder, cpus, serve_args, config, source)
                procs.append(router)
                targets[label] = (url, router.pid)
            if args.floor:
                floor, floor_url = start_floor(cpus)
                procs.append(floor)
                targets["floor"] = (floor_url, floor.pid)
            bare, bare_url = start_bare(cpus)
            procs.append(bare)
            targets["bare"] = (bare_url, bare.pid)
            for url, _ in targets.values():
                await run_calls(url, args.concurrency, args.warmup, Phase())
            seq = {name: Phase() for name in targets}
            conc = {name: Phase() for name in targets}
            for _ in range(args.rounds):
                for name, (url, pid) in targets.items():
                    await run_calls(url, 1, args.seq_seconds / args.rounds, seq[name])
                    await measured(url, pid, args.concurrency, args.duration / args.rounds, conc[name])
        finally:
            for proc in procs:
                stop(proc)
    return {name: summary(seq[name], conc[name]) for name in seq}


async def cold_starts(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The first call of each variant after a fresh start (connect included), `--cold` times, interleaved."""
    found: dict[str, list[float]] = {}
    for _ in range(args.cold):
        for label, serve_args, config, source in variants(args):
            with tempfile.TemporaryDirectory(prefix="invoke-bench-cold-") as tmp:
                router, url = start_router(Path(tmp), None, serve_args, config, source)
                try:
                    await asyncio.sleep(0.5)  # let the start settle (the zygote starting), as the kit does
                    t0 = time.perf_counter()
                    client = await connect(url)
                    status, _ = await client.call(b'{"cold": true}')
                    found.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
                    assert client.transport is not None and status == 200
                    client.transport.close()
                finally:
                    stop(router)
    return {label: {"cold_p50_ms": round(statistics.median(v), 2), "cold_min_ms": round(min(v), 2)}
            for label, v in found.items()}  # fmt: skip


def variants(args: argparse.Namespace) -> list[tuple[str, list[str], list[str], Path]]:
    """(label, serve options, config YAML, source tree) of each router to measure:
    `--variant 'LABEL|OPTIONS|YAML|SOURCE'` (a source tree: another checkout, e.g. `git archive` of a
    previous commit, to measure a change against what came before it in the same run)."""
    if not args.variant:
        return [("router", args.serve_arg, args.config, REPO)]
    found = []
    for spec in args.variant:
        label, options, yaml, source = [*spec.split("|"), "", "", ""][:4]
        config = [*args.config, *([yaml] if yaml else [])]
        found.append((label, [*args.serve_arg, *options.split()], config, Path(source) if source else REPO))
    return found


def summary(seq: Phase, conc: Phase) -> dict[str, float]:
    return {
        "c1_p50_ms": round(seq.pct(50), 3),
        "c1_p99_ms": round(seq.pct(99), 3),
        "calls_per_s": round(conc.calls / conc.seconds, 1),
        "p50_ms": round(conc.pct(50), 3),
        "p99_ms": round(conc.pct(99), 3),
        "daemon_us_per_call": round(conc.per_call_us(conc.daemon_cpu_s), 1),
        "workers_us_per_call": round(conc.per_call_us(conc.helper_cpu_s), 1),
        "instances_us_per_call": round(conc.per_call_us(conc.instance_cpu_s), 1),
        "client_us_per_call": round(conc.per_call_us(conc.client_cpu_s), 1),
        "errors": seq.errors + conc.errors,
    }


ROWS = [
    ("c=1 p50 ms", "c1_p50_ms"),
    ("c=1 p99 ms", "c1_p99_ms"),
    ("c=N calls/s", "calls_per_s"),
    ("c=N p50 ms", "p50_ms"),
    ("c=N p99 ms", "p99_ms"),
    ("daemon CPU us/call", "daemon_us_per_call"),
    ("workers CPU us/call", "workers_us_per_call"),
    ("instances CPU us/call", "instances_us_per_call"),
    ("client CPU us/call", "client_us_per_call"),
    ("errors", "errors"),
]


def report(label: str, result: dict[str, dict[str, float]]) -> None:
    names = list(result)
    bare = result["bare"]
    print(f"\n{label}: the router (each variant) vs a bare aiohttp echo, same run")
    print(f"{'':24}" + "".join(f"{n:>14}" for n in names) + "".join(f"{n + '/bare':>16}" for n in names[:-1]))
    for title, key in ROWS:
        values = "".join(f"{result[n][key]:14}" for n in names)
        ratios = "".join(
            f"{result[n][key] / bare[key]:15.2f}x" if bare[key] else f"{'-':>16}" for n in names[:-1]
        )
        print(f"{title:24}{values}{ratios}")
    if "floor" in result:
        floor = server_us(result["floor"])
        print("server CPU us/call (daemon, workers and instances), against the floor:")
        for n in names[:-1]:
            print(f"{n:>24}: {server_us(result[n]):7.1f}   {server_us(result[n]) / floor:5.2f}x the floor")


def server_us(figures: dict[str, float]) -> float:
    return figures["daemon_us_per_call"] + figures["workers_us_per_call"] + figures["instances_us_per_call"]


def load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds at c=N, per target")
    parser.add_argument("--seq-seconds", type=float, default=3.0, help="seconds at c=1, per target")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the time is split into")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cpus", help="pin the servers to these CPUs, e.g. 0 or 0,1")
    parser.add_argument("--compare-cpus", nargs="+", metavar="CPUS", help="one full run per CPU set")
    parser.add_argument("--serve-arg", action="append", default=[], help="an option for router serve")
    parser.add_argument("--config", action="append", default=[], help="YAML added to the router's config")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="'LABEL|SERVE OPTIONS|CONFIG YAML|SOURCE TREE': a router to measure, same run (repeatable)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure bench/floor_server.py: the router's design with nothing else, a lower bound",
    )
    parser.add_argument("--cold", type=int, default=0, help="only the first call: N fresh starts")
    args = parser.parse_args()
    if args.cold:
        cold = await cold_starts(args)
        for label, figures in cold.items():
            print(f"{label:>16}: first call p50 {figures['cold_p50_ms']} ms, min {figures['cold_min_ms']} ms")
        print(json.dumps({"load_1m": load(), "cold": cold}))
        return

    sets = args.compare_cpus or [args.cpus]
    results = {}
    for spec in sets:
        cpus = {int(c) for c in spec.split(",")} if spec else None
        label = f"CPUs {spec}" if spec else "all CPUs"
        print(f"[invoke-bench] {label}: load {load()}", file=sys.stderr)
        results[label] = await measure(args, cpus)
        report(label, results[label])
    if len(sets) > 1:
        first, *rest = results
        for other in rest:
            gains = ", ".join(
                f"{n} {results[other][n]['calls_per_s'] / results[first][n]['calls_per_s']:.2f}x"
                for n in results[first]
            )
            print(f"\nthroughput, {other} / {first}: {gains}")
    print(json.dumps({"load_1m": load(), "cpus": os.cpu_count(), "args": vars(args), "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
