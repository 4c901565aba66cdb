"""Kafka source throughput: records per second from a topic through the router to a counting function, against
a raw aiokafka consumer reading the same topic in the same run.

    /tmp/venv/bin/python bench/kafka_bench.py [--records 200000] [--partitions 3] [--batch 100] [--rounds 5]

Starts a tansu broker (in-memory) on a free port and fills one topic once. Then, per round, in alternating
order:

* baseline (raw): an aiokafka consumer in a fresh group reads the topic from the start with
  `getmany(max_records=batch)` and commits after every batch of every partition: the smallest hand-written
  at-least-once consumer at that batch size, with no processing at all;
* reference (events): the same consumer, also turning each batch into the Lambda Kafka event the function
  would get, with the router's own record builder and event encoder (`router.sources.kafka.records`, the
  path of a route without a filter): the work any Lambda-compatible mapping must do per record before
  invoking anything. Printed for context: router / events is what invoking and the engine cost on top;
* router: `router serve` (a subprocess) with a kafka source in a fresh group, the route's batch size `batch`
  (window 0), and the `stream_count` fixture function (a real Python process per instance; 1769 MB, one
  vCPU, so that its CPU quota, in proportion to memory as on Lambda, does not bound the rate). With
  `--filter` the route has a filter that takes every record, so the router builds an envelope per record
  and matches it (the path of filtered and CloudEvents routes). Progress is read
  from the router's `router_stream_records_total{outcome="delivered"}` metric, polled every 25 ms (every
  2 ms near the end).

Every rate is measured from the first record consumed (for the router: the first poll that sees records
delivered) to the last, so group joins and cold starts are excluded alike. The ratio router / raw is printed
per round and as the median (target: at least 0.8 at batch size 100). The client, the broker, the router and
the function instances share the machine: on a loaded machine, compare medians of several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from support import free_port, start_broker, stop, wait_port

REPO = Path(__file__).resolve().parent.parent
COUNT = REPO / "tests" / "functions" / "stream_count"
FAST = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "rebalance_timeout_ms": 2000}


async def fill(broker: str, topic: str, records: int, partitions: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=10, max_batch_size=256 * 1024)
    await producer.start()
    value = b'{"user": "u-0000", "page": "/items/42", "ms": 1234, "tags": ["a", "b", "c"]}'
    futures = [
        await producer.send(topic, key=b"u-%04d" % (n % 1000), value=value, partition=n % partitions)
        for n in range(records)
    ]
    await asyncio.gather(*futures)
    await producer.stop()


async def raw_rate(broker: str, topic: str, records: int, batch: int, *, events: bool = False) -> float:
    from aiokafka import AIOKafkaConsumer

    from router.sources.kafka.records import RecordBuilder

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        **FAST,
    )
    await consumer.start()
    builder = RecordBuilder(source_name="bench", bootstrap_servers=broker, event_source_arn=None)
    seen, first = 0, 0.0
    try:
        while seen < records:
            fetched = await consumer.getmany(
                timeout_ms=500, max_records=batch * len(consumer.assignment() or [1])
            )
            for tp, messages in fetched.items():
                for i in range(0, len(messages), batch):
                    chunk = messages[i : i + batch]
                    if not first:
                        first = time.perf_counter()
                    seen += len(chunk)
                    if events:
                        built = builder.build_all(chunk, envelopes=False)
                        builder.render(f"{tp.topic}-{tp.partition}", built)
                    await consumer.commit({tp: chunk[-1].offset + 1})
        return seen / (time.perf_counter() - first)
    finally:
        await consumer.stop()


# Matches every record the bench writes: the route then takes the envelope path (a filter reads envelopes).
MATCH_ALL = '{value: {page: ["/items/42"]}}'


def router_config(broker: str, topic: str, port: int, batch: int, *, filtered: bool = False) -> str:
    client = "\n".join(f"    {k}: {v}" for k, v in FAST.items())
    route_filter = f"\n    filter: {MATCH_ALL}" if filtered else ""
    return f"""
server: {{port: {port}}}
state_dir: state
functions:
  count: {{runtime: python3.11, handler: app.handler, code: "{COUNT}", timeout_s: 10, memory_mb: 1769}}
sources:
  topic:
    kind: kafka
    brokers: ["{broker}"]
    topic: {topic}
    group: router-{uuid.uuid4().hex[:8]}
    starting_position: TRIM_HORIZON
    fetch_max_wait_ms: 20
{client}
routes:
  - source: topic
    function: count
    batch: {{size: {batch}, window_s: 0}}{route_filter}
"""


def delivered(url: str) -> float:
    # Only the one metric read (name[] filter): polling the whole registry every few ms would be the
    # bench's own load on the router.
    with urllib.request.urlopen(f"{url}/metrics?name[]=router_stream_records_total", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("router_stream_records_total{") and 'outcome="delivered"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def start_router(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "-c", str(config)],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def router_rate(broker: str, topic: str, records: int, batch: int, *, filtered: bool = False) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "router.yaml"
        config.write_text(router_config(broker, topic, port, batch, filtered=filtered))
        proc = start_router(config)
        try:
            wait_port(port, proc)
            url = f"http://127.0.0.1:{port}"
            first, start_count, count = 0.0, 0.0, 0.0
            while count < records:
                if proc.poll() is not None:
                    raise RuntimeError(f"router exited with {proc.returncode}")
                count = await asyncio.to_thread(delivered, url)
                if count and not first:
                    first, start_count = time.perf_counter(), count
                # A scrape costs the router a little: every 25 ms, but often near the end (it ends the run).
                await asyncio.sleep(0.025 if count < 0.95 * records else 0.002)
            return (count - start_count) / (time.perf_counter() - first)
        finally:
            stop(proc)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--filter", action="store_true", help="route with a filter taking every record (envelopes)"
    )
    args = parser.parse_args()

    broker_proc, broker = start_broker()
    try:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        await fill(broker, topic, args.records, args.partitions)
        print(
            f"topic {topic}: {args.records} records, {args.partitions} partitions, batch size {args.batch}"
            + (", route with a filter (envelopes)" if args.filter else "")
        )
        ratios, event_ratios = [], []
        for n in range(1, args.rounds + 1):
            runs = {
                "raw": lambda: raw_rate(broker, topic, args.records, args.batch),
                "events": lambda: raw_rate(broker, topic, args.records, args.batch, events=True),
                "router": lambda: router_rate(broker, topic, args.records, args.batch, filtered=args.filter),
            }
            order = list(runs) if n % 2 else list(reversed(runs))  # alternate: no side always goes first
            rates = {name: await runs[name]() for name in order}
            raw, events, routed = rates["raw"], rates["events"], rates["router"]
            ratios.append(routed / raw)
            event_ratios.append(routed / events)
            print(
                f"round {n}: raw consumer {raw:8.0f} rec/s | consumer building events {events:8.0f} rec/s | "
                f"router -> function {routed:8.0f} rec/s | router/raw {routed / raw:.2f}, "
                f"router/events {routed / events:.2f}"
            )
        print(
            f"median router / raw consumer: {statistics.median(ratios):.2f} (target >= 0.8); "
            f"router / consumer building events: {statistics.median(event_ratios):.2f}"
        )
    finally:
        stop(broker_proc)


if __name__ == "__main__":
    asyncio.run(main())
