"""Invoker benchmark: warm latency, cold starts, launch rate, timeout kill latency, against baselines.

Run: `python bench/invoker_bench.py [--warm 2000] [--cold 30] [--launches 40]`

* baseline: the echo handler called in-process (JSON-decode the event, call, JSON-encode the result), the
  least any invoker must do;
* warm: the same event through `Instance.invoke` (Runtime API round trip to a separate process), p50/p99,
  reported as overhead over the baseline and as a ratio;
* cold start: `Instance.start` until the runtime asks for its first event, and start + first call, p50
  (Python, and Node.js when `node` is installed); the baseline is a bare interpreter start (`python -S -c
  pass`) measured here too; Python both from a fresh interpreter and forked from a zygote (its own start
  is not counted: it is started once, before the samples);
* launches per second: instances started (and stopped) 4 at a time;
* timeout kill latency: how long after the deadline the call returns with the group killed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from router.config import BillingConfig
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec, InvokeRequest
from router.invoker.zygote import Zygotes

FUNCTIONS = Path(__file__).resolve().parents[1] / "tests" / "functions"
BILLING = BillingConfig()
EVENT = json.dumps({"key": "value", "numbers": list(range(10))}).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def spec(name: str, **kw: object) -> FunctionSpec:
    fields: dict[str, object] = {"runtime": "python3.11", "handler": "app.handler", "timeout_s": 3}
    fields.update(kw)
    return FunctionSpec(name=name, code_dir=FUNCTIONS / name, **fields)  # type: ignore[arg-type]


class _Context:
    function_name = "echo"
    memory_limit_in_mb = "128"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id
        self._deadline = time.time() + 3

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.time()) * 1000)


def baseline_ms(n: int) -> list[float]:
    loaded = importlib.util.spec_from_file_location("bench_echo", FUNCTIONS / "echo" / "app.py")
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        json.dumps(module.handler(json.loads(EVENT), _Context(f"b{i}"))).encode()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def warm_ms(n: int) -> list[float]:
    instance = await Instance.start(spec("echo"), billing=BILLING)
    try:
        for i in range(50):
            await instance.invoke(InvokeRequest(request_id=f"w{i}", payload=EVENT))
        samples = []
        for i in range(n):
            t0 = time.perf_counter()
            result = await instance.invoke(InvokeRequest(request_id=f"r{i}", payload=EVENT))
            samples.append((time.perf_counter() - t0) * 1000)
            assert result.ok
        return samples
    finally:
        await instance.stop()


async def cold_ms(
    n: int, function: FunctionSpec, zygotes: Zygotes | None = None
) -> tuple[list[float], list[float]]:
    starts, firsts = [], []
    for i in range(n):
        t0 = time.perf_counter()
        instance = await Instance.start(function, billing=BILLING, zygotes=zygotes)
        t1 = time.perf_counter()
        result = await instance.invoke(InvokeRequest(request_id=f"c{i}", payload=EVENT))
        t2 = time.perf_counter()
        assert result.ok, result.payload
        starts.append((t1 - t0) * 1000)
        firsts.append((t2 - t0) * 1000)
        await instance.stop()
    return starts, firsts


def interpreter_start_ms(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-S", "-c", "pass"], check=True)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def launches_per_second(total: int, parallel: int = 4, zygotes: Zygotes | None = None) -> float:
    gate = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with gate:
            instance = await Instance.start(spec("echo"), billing=BILLING, zygotes=zygotes)
            await instance.stop()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return total / (time.perf_counter() - t0)


async def timeout_overshoot_ms(n: int) -> list[float]:
    samples = []
    for i in range(n):
        instance = await Instance.start(spec("sleep", timeout_s=1), billing=BILLING)
        result = await instance.invoke(InvokeRequest(request_id=f"t{i}", payload=b'{"seconds": 30}'))
        assert result.error_type == "Sandbox.Timeout"
        samples.append(result.duration_ms - 1000)
        await instance.stop()
    return samples


def line(label: str, value: str) -> None:
    print(f"  {label:<46} {value}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--cold", type=int, default=30)
    parser.add_argument("--launches", type=int, default=40)
    parser.add_argument("--timeouts", type=int, default=3)
    args = parser.parse_args()

    base = baseline_ms(args.warm)
    warm = await warm_ms(args.warm)
    b50, w50, w99 = statistics.median(base), statistics.median(warm), pct(warm, 99)
    print("warm invoke (echo, Python)")
    line("baseline in-process call p50 / p99", f"{b50 * 1000:.1f} us / {pct(base, 99) * 1000:.1f} us")
    line("through the invoker p50 / p99", f"{w50 * 1000:.1f} us / {w99 * 1000:.1f} us")
    line("overhead p50 (target < 500 us)", f"{(w50 - b50) * 1000:.1f} us  ({w50 / b50:.0f}x the bare call)")

    interp = interpreter_start_ms(args.cold)
    starts, firsts = await cold_ms(args.cold, spec("echo"))
    print("cold start (Python, fresh interpreter)")
    line("baseline bare `python -S -c pass` p50", f"{statistics.median(interp):.1f} ms")
    line("Instance.start p50 (target < 60 ms)", f"{statistics.median(starts):.1f} ms")
    line("start + first call p50", f"{statistics.median(firsts):.1f} ms")
    line("ratio start / bare interpreter", f"{statistics.median(starts) / statistics.median(interp):.2f}x")

    zygotes = Zygotes()
    try:
        await cold_ms(2, spec("echo"), zygotes)  # starts the zygote
        zstarts, zfirsts = await cold_ms(args.cold, spec("echo"), zygotes)
        zrate = await launches_per_second(args.launches, zygotes=zygotes)
        assert zygotes.forks == args.cold + 2 + args.launches and zygotes.fallbacks == 0
    finally:
        await zygotes.aclose()
    print("cold start (Python, forked from the zygote)")
    line("Instance.start p50 (target < 10 ms)", f"{statistics.median(zstarts):.1f} ms")
    line("start + first call p50", f"{statistics.median(zfirsts):.1f} ms")
    line("ratio start / bare interpreter", f"{statistics.median(zstarts) / statistics.median(interp):.2f}x")

    if shutil.which("node"):
        node_starts, node_firsts = await cold_ms(
            max(5, args.cold // 3), spec("node_echo", runtime="nodejs20.x", handler="index.handler")
        )
        print("cold start (Node.js)")
        line("Instance.start p50", f"{statistics.median(node_starts):.1f} ms")
        line("start + first call p50", f"{statistics.median(node_firsts):.1f} ms")

    rate = await launches_per_second(args.launches)
    print("launch rate")
    line("instances started+stopped per second (4 at once)", f"{rate:.1f}/s")
    line("the same, forked from the zygote", f"{zrate:.1f}/s")

    over = await timeout_overshoot_ms(args.timeouts)
    print("timeout enforcement (timeout_s=1)")
    line(
        "return after the deadline p50 / max (target < 100 ms)",
        f"{statistics.median(over):.1f} / {max(over):.1f} ms",
    )


if __name__ == "__main__":
    asyncio.run(main())
