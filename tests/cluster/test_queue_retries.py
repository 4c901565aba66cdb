"""Retries of async events on the cluster's Kafka queue keep today's semantics: a failing event is retried
through the retry topic (its attempts travel with it) and then goes to its on_failure destination with
approximateInvokeCount 3; a good one to on_success; nothing stays held. One dispatcher with real function
processes over a real tansu broker, with short retry delays (a constructor seam)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from router.cluster.queue import KafkaQueue
from router.config.cluster import ClusterKafka
from router.dispatch.dispatcher import Dispatcher
from router.dispatch.registry import definitions_from_config
from router.validate import parse_config
from tests.integration.test_dispatch import fn, records, until
from tests.support import FUNCTIONS

pytestmark = pytest.mark.integration


async def test_retries_go_through_the_retry_topic_then_to_the_destinations(
    kafka_broker: str, tmp_path: Path
) -> None:
    failed, ok = tmp_path / "failed", tmp_path / "ok"
    functions = fn("fail", "fail", **{"async": {"on_failure": {"directory": str(failed)}}}) + fn(
        "echo", "echo", **{"async": {"on_success": {"directory": str(ok)}}}
    )
    text = f"invoker: {{isolation: 'off'}}\nfunctions:\n{functions}"
    config = parse_config(text, base_dir=tmp_path, env={"FUNCTIONS": str(FUNCTIONS)})
    settings = ClusterKafka(
        brokers=[kafka_broker], partitions=3, session_timeout_ms=2000, heartbeat_interval_ms=500,
        rebalance_timeout_ms=2000, fetch_max_wait_ms=20,
    )  # fmt: skip
    queue = KafkaQueue(settings, f"r{uuid.uuid4().hex[:8]}")
    d = Dispatcher(config, state_dir=tmp_path / "state", queue=queue, retry_delays_s=(0.05, 0.1))
    await d.set_functions(definitions_from_config(config, tmp_path / "state"))
    await d.start()
    try:
        await until(queue.joined.is_set, "partitions assigned")
        failing = await d.enqueue("fail", b'{"message": "no good"}')
        fine = await d.enqueue("echo", b'{"n": 7}')
        await until(lambda: bool(records(failed) and records(ok)), "both records", steps=6000)
        (record,) = records(failed)
        assert record["requestContext"]["requestId"] == failing
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["responsePayload"]["errorMessage"] == "no good"
        (success,) = records(ok)
        assert success["requestContext"]["requestId"] == fine
        assert d.stats().functions["fail"].invocations == 3
        await until(lambda: queue.depth() == 0, "nothing held")
        retries = {p: n for p, n in queue.partitions().items() if p.startswith(queue.retry_topic)}
        assert sum(n["position"] for n in retries.values()) == 2  # the two retries went through the topic
    finally:
        await d.aclose()
