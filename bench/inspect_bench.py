"""Cost of the inspection store and loop protection on the dispatcher's hot path.

    python bench/inspect_bench.py [--workers 4] [--duration 0.3] [--rounds 9]

In-process instances that answer at once (no processes), so the dispatcher's own per-call work is all that
is measured, the case where any overhead shows most. Three dispatchers over the same function, measured in
alternation so all see the same machine load:

* baseline: no inspection store (loop protection is always on: it is part of the dispatcher);
* inspect: the store attached (`inspect.enabled: true`, the default);
* inspect+waiter: the store attached and one long poll waiting with a pattern that never matches, so every
  invocation is decoded and matched once.

Printed: median calls per second of each and the ratios against the baseline (1.0 = free), and the cost of
deriving one invocation's trace (router/trace.py next_hop + header) in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from router.core import trace
from router.core.results import InvocationResult
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.filters import compile_patterns
from router.dispatch.registry import definitions_from_config
from router.invoker.types import FunctionSpec, InvokeRequest
from router.record.memory import InspectStore
from router.validate import parse_config

EVENT = b'{"key": "value", "numbers": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}'
CONFIG = "functions:\n  f: {runtime: python3.11, handler: app.handler, code: code}\n"


class InstantInstance:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.alive = True

    async def invoke(self, request: InvokeRequest) -> InvocationResult:
        return InvocationResult(request_id=request.request_id, payload=request.payload, duration_ms=0.1)

    async def stop(self) -> None:
        self.alive = False


async def instant(spec: FunctionSpec, init_type: str, request_id: str) -> InstantInstance:
    return InstantInstance(spec)


async def dispatcher(base: Path, name: str) -> Dispatcher:
    config = parse_config(CONFIG, base_dir=base, env={})
    d = Dispatcher(config, state_dir=base / name, instance_factory=instant)
    await d.set_functions(definitions_from_config(config, base / name))
    await d.start()
    return d


async def rate(d: Dispatcher, workers: int, duration: float) -> float:
    count = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await d.invoke("f", EVENT)
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return count / (time.perf_counter() - start)


def trace_cost_us(n: int = 20000) -> float:
    header = trace.next_hop(None).header()
    start = time.perf_counter()
    for _ in range(n):
        trace.next_hop(header).header()
    return (time.perf_counter() - start) / n * 1e6


async def main(workers: int, duration: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "code").mkdir()
        (base / "code" / "app.py").write_text("def handler(e, c):\n    return e\n")
        plain = await dispatcher(base, "plain")
        inspected = await dispatcher(base, "inspected")
        InspectStore().attach(inspected)
        waited = await dispatcher(base, "waited")
        store = InspectStore()
        store.attach(waited)
        never = compile_patterns({"event": {"key": ["never"]}})
        waiter = asyncio.ensure_future(store.wait("f", never, 0, 3600))
        results: dict[str, list[float]] = {"baseline": [], "inspect": [], "inspect+waiter": []}
        try:
            for d in (plain, inspected, waited):
                await rate(d, workers, duration / 3)  # warm up
            for _ in range(rounds):
                for label, d in zip(results, (plain, inspected, waited), strict=True):
                    results[label].append(await rate(d, workers, duration))
        finally:
            waiter.cancel()
            store.close()
            for d in (plain, inspected, waited):
                await d.aclose()
    medians: dict[str, Any] = {k: statistics.median(v) for k, v in results.items()}
    for label, value in medians.items():
        ratio = value / medians["baseline"]
        print(f"{label:15s} {value:10.0f} calls/s   ratio to baseline {ratio:.3f}")
    print(f"trace next_hop+header: {trace_cost_us():.2f} us per invocation")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(main(args.workers, args.duration, args.rounds))
