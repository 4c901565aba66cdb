"""Dispatcher benchmark: sustained invocations per second through the dispatcher, against direct calls.

    python bench/dispatch_bench.py [--instances 4] [--duration 0.5] [--rounds 10] [--events 1000]

* baseline (direct): N warm echo instances started with `Instance.start`; N workers each call their own
  instance's `invoke` back to back for `duration` seconds. This is the invoker alone, the floor.
* dispatcher: a Dispatcher over the echo function with `provisioned_concurrency: N` (N warm instances);
  N workers call `Dispatcher.invoke` back to back for the same duration: concurrency slot, pool checkout,
  metrics, stats and hooks on top of the same instance calls.
* async: `events` events enqueued at once (each durably stored, group-committed), run by the scheduler on
  the same N instances; events per second from the first enqueue until the queue is empty.

Short measurements alternate direct and dispatcher so both see the same load on a shared machine; the
medians and their ratios (dispatcher / direct, async / direct) are printed. 1.0 means the dispatcher costs
nothing; async pays an fsync'd insert and delete per event (group-committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from router.config import BillingConfig
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.registry import definitions_from_config
from router.invoker.instance import Instance
from router.invoker.types import FunctionSpec, InvokeRequest
from router.validate import parse_config

ECHO = Path(__file__).resolve().parents[1] / "tests" / "functions" / "echo"
EVENT = json.dumps({"key": "value", "numbers": list(range(10))}).encode()


async def sustained(call: object, workers: int, duration: float) -> float:
    """Calls per second of `workers` loops each awaiting call() back to back for `duration` seconds."""
    count = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await call()  # type: ignore[operator]
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return count / (time.perf_counter() - start)


async def direct_rate(instances: list[Instance], duration: float) -> float:
    idle = list(instances)

    async def call() -> None:
        instance = idle.pop()
        try:
            result = await instance.invoke(InvokeRequest(request_id=str(uuid.uuid4()), payload=EVENT))
            assert result.ok, result.payload
        finally:
            idle.append(instance)

    return await sustained(call, len(instances), duration)


async def dispatcher_rate(dispatcher: Dispatcher, workers: int, duration: float) -> float:
    async def call() -> None:
        result = await dispatcher.invoke("echo", EVENT)
        assert result.ok, result.payload

    return await sustained(call, workers, duration)


async def async_rate(dispatcher: Dispatcher, events: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(dispatcher.enqueue("echo", EVENT) for _ in range(events)))
    while dispatcher.stats().account.queue_depth:  # noqa: ASYNC110 - polling is the measurement
        await asyncio.sleep(0.005)
    return events / (time.perf_counter() - start)


def make_config(base: Path, instances: int):  # type: ignore[no-untyped-def]
    text = f"""
account: {{concurrency: {instances}, unreserved_min: 0}}
functions:
  echo: {{runtime: python3.11, handler: app.handler, code: "{ECHO}", provisioned_concurrency: {instances}}}
"""
    return parse_config(text, base_dir=base)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--duration", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    n = args.instances

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = make_config(base, n)
        spec = FunctionSpec(name="echo", runtime="python3.11", handler="app.handler", code_dir=ECHO)
        direct = await asyncio.gather(*(Instance.start(spec, billing=BillingConfig()) for _ in range(n)))
        dispatcher = Dispatcher(config, state_dir=base / "state")
        await dispatcher.set_functions(definitions_from_config(config, base / "state"))
        await dispatcher.start()
        try:
            await direct_rate(direct, 0.3)  # warm-up of both paths
            await dispatcher_rate(dispatcher, n, 0.3)
            print(
                f"dispatcher benchmark: echo, {n} warm instances, {args.rounds} rounds of {args.duration:g} s"
            )
            direct_rates, sync_rates, async_rates = [], [], []
            for _ in range(args.rounds):  # interleaved, so both paths see the same load on a shared machine
                direct_rates.append(await direct_rate(direct, args.duration))
                sync_rates.append(await dispatcher_rate(dispatcher, n, args.duration))
            for _ in range(max(1, args.rounds // 3)):
                async_rates.append(await async_rate(dispatcher, args.events))
                direct_rates.append(await direct_rate(direct, args.duration))
            base_rate = statistics.median(direct_rates)
            via, queued = statistics.median(sync_rates), statistics.median(async_rates)
            print(f"  direct instance.invoke      median {base_rate:8.0f} calls/s")
            print(f"  Dispatcher.invoke (sync)    median {via:8.0f} calls/s   ratio {via / base_rate:.3f}")
            print(
                f"  Dispatcher.enqueue (async)  median {queued:8.0f} events/s  ratio {queued / base_rate:.3f}"
            )
            cold = dispatcher.stats().functions["echo"].cold_starts
            print(
                f"cold starts during the run: {cold} (expected 0: all calls on the {n} provisioned instances)"
            )
        finally:
            await dispatcher.drain(5)
            await dispatcher.aclose()
            await asyncio.gather(*(i.stop() for i in direct))


if __name__ == "__main__":
    asyncio.run(main())
