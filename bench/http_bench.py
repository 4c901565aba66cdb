"""HTTP gateway throughput and latency, against a bare aiohttp echo server measured in the same run.

    /tmp/venv/bin/python bench/http_bench.py [--duration 5] [--concurrency 16] [--payload-version 2.0]

Starts `router serve` (a subprocess) with an http source routed to the echo fixture function (with as many
provisioned instances as connections), warms it up, then drives it with `concurrency` keep-alive connections
for `duration` seconds, each sending GET /items/{id}?q=... one after the other. The same client then drives a
bare aiohttp server (also a subprocess) that answers each request with a JSON echo of it. Prints requests
per second and p50/p99 latency of both, and the ratio of the gateway's throughput to the baseline's (target:
at least 0.5). The client runs in this process; the servers share the machine with it alike, and the
duration is split into short rounds taken in turn, so that drifting load from elsewhere hits all alike.

Each line also gives the CPU time the server spent per request (its process and, for the router, the
function instances it runs: its descendants), which tells how far each is from being the bottleneck: the
router is one Python thread, so it tops out at about one core.

A third line, "gw-only", is the gateway alone: the same http source in its own process, its route bound to
an in-process stand-in that answers at once (no dispatcher, no function process). It tells the gateway's
own cost (routing, event building, result mapping) apart from the cost of running a function.
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
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from support import descendants, free_port, stop, wait_http, wait_ready

REPO = Path(__file__).resolve().parent.parent
ECHO = REPO / "tests" / "functions" / "echo"

BARE_SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def echo(request):
        body = await request.read()
        return web.json_response({
            "method": request.method, "path": request.path, "query": dict(request.query),
            "headers": dict(request.headers), "body": body.decode("utf-8", "replace"),
        })

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)


async def serve_gateway_only(port: int) -> None:
    """The http source on `port`, its one route answered at once by a stand-in for the dispatcher."""
    import msgspec

    from router.config import HttpRouteConfig, RouteConfig
    from router.config.sources.http import Config
    from router.core.clock import SystemClock
    from router.core.ports import SourceContext
    from router.core.results import InvocationResult
    from router.dispatch.routing import BoundRoute
    from router.sources.http.source import create

    class Instant:
        async def invoke(self, function: str, payload: bytes, **_: object) -> InvocationResult:
            return InvocationResult(request_id="bench", payload=b'{"event":' + payload + b"}")

    route = RouteConfig(source="api", function="echo", http=HttpRouteConfig(method="GET", path="/items/{id}"))
    config = msgspec.convert({"kind": "http", "port": port}, Config)
    bound = [BoundRoute("api", "echo", "http", Config.traits, route, "aws", Instant())]  # type: ignore[arg-type]
    ctx = SourceContext("api", config, bound, Path(tempfile.gettempdir()), SystemClock())
    await create(ctx).run()


def start_gateway_only() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, __file__, "--serve-gateway-only", str(port)]
    proc = subprocess.Popen(argv, cwd=REPO, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    return proc, url


def start_router(
    folder: Path, version: str, concurrency: int, source: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`router serve` on the bench's config; `source`: another source tree of the router (PYTHONPATH)."""
    control, http = free_port(), free_port()
    (folder / "router.yaml").write_text(
        textwrap.dedent(
            f"""
            server: {{port: {control}}}
            functions:
              echo: {{runtime: python3.11, handler: app.handler, code: "{ECHO}", timeout_s: 10,
                      memory_mb: 1769, provisioned_concurrency: {concurrency}}}
            sources:
              api: {{kind: http, port: {http}, payload_version: "{version}"}}
            routes:
              - {{source: api, function: echo, http: {{method: GET, path: "/items/{{id}}"}}}}
            """
        )
    )
    log = open(folder / "router.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "-c", "router.yaml"],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(source)} if source else None,
    )
    wait_ready(f"http://127.0.0.1:{control}/readyz", proc)
    return proc, f"http://127.0.0.1:{http}"


def start_bare() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)], start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc)
    return proc, url


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Run:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float = 0.0
    children_cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(p) - 1]

    def add(self, other: Run) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies_ms.extend(other.latencies_ms)
        self.server_cpu_s += other.server_cpu_s
        self.children_cpu_s += other.children_cpu_s

    def line(self) -> str:
        return (
            f"{self.name:<10} {self.rps:9.0f} req/s   p50 {self.pct(50):7.2f} ms   p99 {self.pct(99):7.2f} ms"
            f"   ({self.requests} requests, {self.errors} errors)"
            f"   CPU/request: server {self.server_cpu_s / max(1, self.requests) * 1e6:.0f} us"
            + (
                f", function instances {self.children_cpu_s / max(1, self.requests) * 1e6:.0f} us"
                if self.children_cpu_s
                else ""
            )
        )


async def measured(name: str, url: str, concurrency: int, seconds: float, server: int) -> Run:
    """drive(), with the CPU time the server process and its descendants spent meanwhile."""
    children = descendants(server)[1:]
    own0, kids0 = cpu_seconds(server), sum(cpu_seconds(p) for p in children)
    run = await drive(name, url, concurrency, seconds)
    run.server_cpu_s = cpu_seconds(server) - own0
    run.children_cpu_s = sum(cpu_seconds(p) for p in children) - kids0
    return run


async def drive(name: str, url: str, concurrency: int, seconds: float) -> Run:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.perf_counter() + seconds

        async def worker(n: int) -> None:
            nonlocal errors
            i = 0
            while time.perf_counter() < stop_at:
                i += 1
                t0 = time.perf_counter()
                async with session.get(f"{url}/items/{n}-{i}", params={"q": "bench"}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - start
    return Run(name, len(latencies), errors, elapsed, latencies)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the duration is split into")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--payload-version", default="2.0", choices=["1.0", "2.0"])
    parser.add_argument(
        "--provisioned",
        type=int,
        help="the echo function's provisioned concurrency (default: --concurrency); 0 lets front processes "
        "(ROUTER_PROCESSES, docs/processes.md) serve the gateway too, as they leave provisioned functions' "
        "calls to the primary",
    )
    parser.add_argument(
        "--base",
        type=Path,
        metavar="SRC",
        help="also measure the gateway of another source tree of the router (e.g. a `git archive` of an "
        "earlier commit), in the same interleaved rounds",
    )
    parser.add_argument("--serve-gateway-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway_only:
        await serve_gateway_only(args.serve_gateway_only)
        return

    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        provisioned = args.concurrency if args.provisioned is None else args.provisioned
        router, gateway_url = start_router(Path(tmp), args.payload_version, provisioned)
        others: list[subprocess.Popen[bytes]] = []
        try:
            bare, bare_url = start_bare()
            others.append(bare)
            alone, alone_url = start_gateway_only()
            others.append(alone)
            if args.base:
                folder = Path(tmp) / "base"
                folder.mkdir()
                base, base_url = start_router(folder, args.payload_version, provisioned, args.base)
                others.append(base)
                await drive("warmup", base_url, args.concurrency, args.warmup)
            await drive("warmup", gateway_url, args.concurrency, args.warmup)
            await drive("warmup", bare_url, args.concurrency, args.warmup / 2)
            await drive("warmup", alone_url, args.concurrency, args.warmup / 2)
            targets = {
                "bare": (bare_url, bare),
                "gateway": (gateway_url, router),
                "gw-only": (alone_url, alone),
            }
            if args.base:
                targets["base"] = (base_url, base)
            runs = {name: Run(name, 0, 0, 0.0, []) for name in targets}
            # Short interleaved rounds: load from other work on the machine drifts, and hits all alike.
            for _ in range(args.rounds):
                for name, (url, proc) in targets.items():
                    part = await measured(name, url, args.concurrency, args.duration / args.rounds, proc.pid)
                    runs[name].add(part)
            baseline, gateway, gateway_only = runs["bare"], runs["gateway"], runs["gw-only"]
        finally:
            for proc in (router, *others):
                stop(proc)
    print(
        f"HTTP gateway vs bare aiohttp echo, {args.concurrency} connections, {args.duration:g} s each "
        f"in {args.rounds} interleaved rounds"
    )
    print(baseline.line())
    print(gateway.line())
    print(gateway_only.line())
    if args.base:
        print(runs["base"].line())
    ratio = gateway.rps / baseline.rps
    print(f"throughput ratio gateway/bare: {ratio:.2f} (target >= 0.5)")
    print(f"p50 latency ratio gateway/bare: {gateway.pct(50) / baseline.pct(50):.2f}")
    alone_ratio = gateway_only.rps / baseline.rps
    print(f"throughput ratio gw-only/bare (the gateway without a function): {alone_ratio:.2f}")
    if args.base:
        print(f"throughput ratio base/bare (--base {args.base}): {runs['base'].rps / baseline.rps:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
