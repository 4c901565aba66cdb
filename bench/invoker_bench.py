"""Invoker benchmark: warm latency, cold starts, launch rate, timeout kill latency, against baselines.

Run: `python bench/invoker_bench.py [--warm 2000] [--cold 30] [--launches 40] [--containment-only]`

* baseline: the echo handler called in-process (JSON-decode the event, call, JSON-encode the result), the
  least any invoker must do;
* warm: the same event through `Instance.invoke` (Runtime API round trip to a separate process), p50/p99,
  reported as overhead over the baseline and as a ratio;
* cold start: `Instance.start` until the runtime asks for its first event, and start + first call, p50
  (Python, and Node.js when `node` is installed); the baseline is a bare interpreter start (`python -S -c
  pass`) measured here too; Python both from a fresh interpreter and forked from a zygote (its own start
  is not counted: it is started once, before the samples);
* launches per second: instances started (and stopped) 4 at a time;
* timeout kill latency: how long after the deadline the call returns with the group killed;
* containment (as root, where cgroups are writable): warm p50 of the same echo instance uncontained, in a
  cgroup frozen between calls, and in a cgroup never frozen, interleaved in rounds in the same run (the
  cost of freezing is frozen / never frozen); cold start p50 in a cgroup, with and without isolation.
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
import tempfile
import time
from pathlib import Path

import msgspec

from router.config import BillingConfig, InvokerConfig
from router.invoker import cgroups
from router.invoker.containment import Containment
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
    n: int, function: FunctionSpec, zygotes: Zygotes | None = None, containment: Containment | None = None
) -> tuple[list[float], list[float]]:
    starts, firsts = [], []
    for i in range(n):
        t0 = time.perf_counter()
        instance = await Instance.start(function, billing=BILLING, zygotes=zygotes, containment=containment)
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


async def warm_modes_ms(n: int, state: Path, rounds: int = 40) -> dict[str, list[list[float]]]:
    """Warm calls of echo in each containment mode, interleaved: per mode, the samples of each round."""
    # No CPU quota here: a 128 MB share would throttle a tight loop of calls and hide what is measured.
    default = InvokerConfig(isolation="off", cpu="unlimited")
    settings = {
        "uncontained": None,
        "cgroup, never frozen": msgspec.structs.replace(default, freeze=False),
        "cgroup, frozen at once": msgspec.structs.replace(default, freeze_after_ms=0),
        "cgroup, frozen after 10 ms idle": default,
    }
    modes = {
        name: Containment.start(config, state / str(i)) if config is not None else None
        for i, (name, config) in enumerate(settings.items())
    }
    instances = {
        name: await Instance.start(spec("echo"), billing=BILLING, containment=c) for name, c in modes.items()
    }
    samples: dict[str, list[list[float]]] = {name: [] for name in modes}
    freezes: dict[str, int] = {}
    try:
        for mode, instance in enumerate(instances.values()):
            for i in range(50):
                await instance.invoke(InvokeRequest(request_id=f"w{mode}-{i}", payload=EVENT))
        names = list(instances)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # each takes each place in turn
                instance = instances[name]
                samples[name].append([])
                for i in range(n // rounds):
                    t0 = time.perf_counter()
                    result = await instance.invoke(InvokeRequest(request_id=f"m{r}-{i}", payload=EVENT))
                    samples[name][-1].append((time.perf_counter() - t0) * 1000)
                    assert result.ok, (name, result.payload)
        for name, instance in instances.items():
            freezes[name] = instance._box.group.freezes if instance._box.group is not None else 0
    finally:
        for instance in instances.values():
            await instance.stop()
        for containment in modes.values():
            if containment is not None:
                await containment.aclose()
    for name, count in freezes.items():
        print(f"  {name}: frozen {count} times")
    return samples


def round_ratio(rounds: dict[str, list[list[float]]], a: str, b: str) -> float:
    """The median over rounds of p50(a) / p50(b) in the same round: load that comes and goes hits both."""
    return statistics.median(
        statistics.median(x) / statistics.median(y) for x, y in zip(rounds[a], rounds[b], strict=True)
    )


async def contained(args: argparse.Namespace) -> None:
    found, why = cgroups.detect(Path(tempfile.gettempdir()) / "router-bench-probe")
    if found is None or found.missing():
        print(f"containment: skipped ({why})")
        return
    found.close()
    with tempfile.TemporaryDirectory() as state:
        rounds = await warm_modes_ms(args.warm, Path(state))
        print("warm invoke (echo, Python), containment, interleaved rounds")
        for name, per_round in rounds.items():
            values = [v for r in per_round for v in r]
            line(
                f"{name} p50 / p99",
                f"{statistics.median(values) * 1000:.1f} us / {pct(values, 99) * 1000:.1f} us",
            )
        at_once = round_ratio(rounds, "cgroup, frozen at once", "cgroup, never frozen")
        after = round_ratio(rounds, "cgroup, frozen after 10 ms idle", "cgroup, never frozen")
        cgroup = round_ratio(rounds, "cgroup, never frozen", "uncontained")
        line("cost of freezing at once (vs never frozen, per round)", f"{(at_once - 1) * 100:+.1f}%")
        line("cost of freezing after 10 ms idle (the default)", f"{(after - 1) * 100:+.1f}%")
        line("cost of the cgroup (never frozen / uncontained)", f"{(cgroup - 1) * 100:+.1f}%")
        print("cold start (Python), containment, interleaved")
        await cold_modes(args.cold, Path(state))


async def cold_modes(n: int, state: Path) -> None:
    """Instance.start p50, fresh and forked, uncontained / in a cgroup / in a cgroup and isolated."""
    modes = {
        "uncontained": None,
        "in a cgroup": Containment.start(InvokerConfig(isolation="off"), state / "cold-cgroup"),
        "in a cgroup, isolated": Containment.start(InvokerConfig(), state / "cold-isolated"),
    }
    zygotes = Zygotes()
    samples: dict[tuple[str, bool], list[float]] = {(m, f): [] for m in modes for f in (False, True)}
    try:
        await cold_ms(2, spec("echo"), zygotes)
        for _ in range(n):
            for (mode, forked), values in samples.items():
                started, _ = await cold_ms(1, spec("echo"), zygotes if forked else None, modes[mode])
                values += started
    finally:
        await zygotes.aclose()
        for containment in modes.values():
            if containment is not None:
                await containment.aclose()
    isolated = modes["in a cgroup, isolated"]
    for mode in modes:
        fresh, forked = (statistics.median(samples[mode, f]) for f in (False, True))
        note = (
            " (isolation not available here)"
            if mode.endswith("isolated") and isolated is not None and isolated.isolation is None
            else ""
        )
        line(f"Instance.start p50 fresh / forked, {mode}{note}", f"{fresh:.1f} / {forked:.1f} ms")


def line(label: str, value: str) -> None:
    print(f"  {label:<46} {value}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--cold", type=int, default=30)
    parser.add_argument("--launches", type=int, default=40)
    parser.add_argument("--timeouts", type=int, default=3)
    parser.add_argument("--containment-only", action="store_true", help="only the containment section")
    args = parser.parse_args()
    if args.containment_only:
        await contained(args)
        return

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

    await contained(args)


if __name__ == "__main__":
    asyncio.run(main())
