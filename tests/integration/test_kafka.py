"""The Kafka source against the real tansu broker, through `router serve` and real function processes."""

from __future__ import annotations

import asyncio

from tests.integration.stream_support import (
    batches,
    by_partition,
    committed,
    create_topic,
    kafka_router_config,
    metric,
    produce,
    read_log,
    unique,
    wait_for_lines,
    wait_until,
)


async def test_ordered_delivery_per_partition_over_three_partitions(make_router, kafka_broker) -> None:
    topic, group = unique("order"), unique("g")
    await create_topic(kafka_broker, topic, 3)
    await produce(kafka_broker, topic, [(n % 3, f"k{n}".encode(), f"v{n}".encode()) for n in range(900)])
    router = await make_router(
        kafka_router_config(kafka_broker, topic, group=group, batch="{size: 40, window_s: 0.05}")
    )
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 900, context=router.log_text)

    offsets = by_partition(lines)
    assert sorted(offsets) == [f"{topic}-0", f"{topic}-1", f"{topic}-2"]
    for partition, got in offsets.items():
        assert got == list(range(300)), partition  # every record once, in offset order
    for batch in batches(lines):
        assert len({line["p"] for line in batch}) == 1  # a batch holds one partition
        assert len(batch) <= 40
    assert await _committed_eventually(kafka_broker, group, topic, [300, 300, 300])


async def _committed_eventually(broker: str, group: str, topic: str, expected: list[int]) -> bool:
    for _ in range(100):
        if await committed(broker, group, topic, len(expected)) == expected:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_batches_close_on_size_and_on_window(make_router, kafka_broker) -> None:
    topic, group = unique("batch"), unique("g")
    await create_topic(kafka_broker, topic, 1)
    await produce(kafka_broker, topic, [(0, None, f"a{n}".encode()) for n in range(250)])
    router = await make_router(
        kafka_router_config(kafka_broker, topic, group=group, batch="{size: 100, window_s: 1}")
    )
    log = router.base_dir / "log.jsonl"
    lines = await wait_for_lines([log], 250, context=router.log_text)
    assert [len(b) for b in batches(lines)] == [
        100,
        100,
        50,
    ]  # full batches go at once, the rest on the window

    # Records sent one by one, each acknowledged before the next, still make one batch within the window.
    for n in range(5):
        await produce(kafka_broker, topic, [(0, None, f"b{n}".encode())])
    lines = await wait_for_lines([log], 255, context=router.log_text)
    assert [line["v"] for line in batches(lines)[-1]] == [f"b{n}" for n in range(5)]


async def test_partial_batch_failure_retries_from_the_reported_record(make_router, kafka_broker) -> None:
    topic, group = unique("partial"), unique("g")
    await create_topic(kafka_broker, topic, 1)
    values = [("flaky" if n == 20 else f"v{n}").encode() for n in range(50)]
    await produce(kafka_broker, topic, [(0, None, v) for v in values])
    router = await make_router(
        kafka_router_config(
            kafka_broker,
            topic,
            group=group,
            batch="{size: 50, window_s: 0.5}",
            on_error="{report_batch_item_failures: true, max_retries: 3}",
            environment={"PARTIAL": "flaky"},
        )
    )
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 50, context=router.log_text)

    first, second = batches(lines)
    assert [line["o"] for line in first] == list(range(20))  # settled before the reported record
    assert [line["o"] for line in second] == list(range(20, 50))  # redelivered from it, nothing before
    assert await _committed_eventually(kafka_broker, group, topic, [50])


async def test_back_pressure_with_reserved_concurrency_one(make_router, kafka_broker) -> None:
    topic, group = unique("pressure"), unique("g")
    await create_topic(kafka_broker, topic, 3)
    await produce(kafka_broker, topic, [(n % 3, None, f"v{n}".encode()) for n in range(150)])
    router = await make_router(
        kafka_router_config(
            kafka_broker,
            topic,
            group=group,
            batch="{size: 10, window_s: 0}",
            reserved=1,
            environment={"SLEEP_S": "0.02"},
            source_extra="\n    max_buffered_records: 20",
        )
    )
    lines = await wait_for_lines([router.base_dir / "log.jsonl"], 150, context=router.log_text)

    for got in by_partition(lines).values():
        assert got == list(range(50))  # throttled partitions waited; nothing skipped, nothing repeated
    backoffs = metric(router.url, "router_stream_dispatch_backoffs_total", function="log")
    throttles = metric(router.url, "router_throttles_total", function="log")
    assert backoffs > 0 and throttles > 0  # three partitions competed for one instance
    assert metric(router.url, "router_stream_partition_pauses_total", function="log") > 0  # fetching paused


async def test_two_routers_in_one_group_split_the_partitions(make_router, kafka_broker) -> None:
    topic, group = unique("split"), unique("g")
    await create_topic(kafka_broker, topic, 4)
    config = kafka_router_config(kafka_broker, topic, group=group, batch="{size: 10, window_s: 0}")
    first = await make_router(config, name="first")
    second = await make_router(config, name="second")
    logs = [first.base_dir / "log.jsonl", second.base_dir / "log.jsonl"]

    # Rounds of 10 records per partition, until the group has settled: each router reads its own partitions.
    sent = 0
    split: list[set[str]] = []
    for _ in range(40):
        before = [len(read_log(p)) for p in logs]
        await produce(kafka_broker, topic, [(n % 4, None, f"r{sent + n}".encode()) for n in range(40)])
        sent += 40
        await wait_for_lines(logs, sent, context=lambda: first.log_text() + second.log_text())
        split = [{line["p"] for line in read_log(p)[n:]} for p, n in zip(logs, before, strict=True)]
        if all(split) and not split[0] & split[1]:
            break
    assert all(split) and not split[0] & split[1] and len(split[0] | split[1]) == 4

    # Every record of every round was processed (at least once), in order per partition and router.
    lines = [line for p in logs for line in read_log(p)]
    assert len({(line["p"], line["o"]) for line in lines}) == sent
    for p in logs:
        for got in by_partition(read_log(p)).values():
            assert got == sorted(got)

    # The second router leaves: the first takes its partitions over from the committed offsets.
    assert await second.stop() == 0
    await produce(kafka_broker, topic, [(n % 4, None, f"r{sent + n}".encode()) for n in range(40)])
    sent += 40
    await wait_for_lines(logs, sent, context=first.log_text)
    last_round = {line["p"] for line in read_log(logs[0]) if int(line["v"][1:]) >= sent - 40}
    assert len(last_round) == 4


async def test_sigkill_mid_stream_loses_nothing(make_router, kafka_broker) -> None:
    topic, group, total = unique("kill"), unique("g"), 6000
    await create_topic(kafka_broker, topic, 3)
    await produce(kafka_broker, topic, [(n % 3, None, f"v{n}".encode()) for n in range(total)])
    router = await make_router(
        kafka_router_config(
            kafka_broker,
            topic,
            group=group,
            batch="{size: 100, window_s: 0}",
            environment={"SLEEP_S": "0.01"},
        )
    )
    log = router.base_dir / "log.jsonl"
    await wait_until(lambda: len(read_log(log)) >= 1500, "a quarter processed", context=router.log_text)
    await router.kill()
    killed_at = len(read_log(log))
    assert killed_at < total  # killed mid-stream

    await router.start()
    lines = await wait_for_lines([log], total, context=router.log_text)
    seen = [(line["p"], line["o"]) for line in lines]
    assert len(set(seen)) == total  # zero loss
    duplicates = len(seen) - len(set(seen))
    assert duplicates <= 3 * 2 * 100  # at most the in-flight (and not yet committed) batches again
    assert await _committed_eventually(kafka_broker, group, topic, [total // 3] * 3)


async def test_sigterm_finishes_in_flight_batches_and_redelivers_nothing(make_router, kafka_broker) -> None:
    topic, group, total = unique("term"), unique("g"), 3000
    await create_topic(kafka_broker, topic, 3)
    await produce(kafka_broker, topic, [(n % 3, None, f"v{n}".encode()) for n in range(total)])
    router = await make_router(
        kafka_router_config(
            kafka_broker, topic, group=group, batch="{size: 50, window_s: 0}", environment={"SLEEP_S": "0.05"}
        )
    )
    log = router.base_dir / "log.jsonl"
    await wait_until(lambda: len(read_log(log)) >= 300, "some processed", context=router.log_text)
    assert await router.stop() == 0
    stopped_at = len(read_log(log))
    assert stopped_at < total

    await router.start()
    lines = await wait_for_lines([log], total, context=router.log_text)
    seen = [(line["p"], line["o"]) for line in lines]
    assert len(set(seen)) == total
    assert len(seen) == total  # what finished before the stop was committed: nothing came twice
