"""S3 notifications through SQS on two nodes: both long-poll the queue, SQS's visibility timeout gives each
message to one of them, and it is deleted once its records are queued: every object is announced once, and
the queue is left empty. Real moto (S3 and SQS), tansu and two `router serve` processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cluster.support import cluster_yaml, start_nodes
from tests.conftest import MakeRouter
from tests.integration.record_function import seen, wait_for_keys
from tests.integration.test_s3_api import client, messages_left, notifying_bucket
from tests.support import wait_until

pytestmark = pytest.mark.integration

REST = """
functions:
  record:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/s3_record"
    timeout_s: 2
    environment: {RECORD_PATH: "${SHARED}/events.jsonl"}
sources:
  photos:
    kind: s3
    bucket: "%s"
    endpoint: "${MOTO}"
    queue: "%s-events"
    wait_time_s: 1
    access_key_id: testing
    secret_access_key: testing
routes:
  - {source: photos, function: record}
"""
OBJECTS = 40


async def test_each_notification_is_announced_by_one_node(
    make_router: MakeRouter, kafka_broker: str, moto_server: str, tmp_path: Path
) -> None:
    bucket, queue_url = await asyncio.to_thread(notifying_bucket, moto_server)
    config = cluster_yaml(REST % (bucket, bucket))
    await start_nodes(make_router, config, 2, kafka=kafka_broker, moto=moto_server, shared=tmp_path)
    s3 = client("s3", moto_server)
    keys = [f"k{n}.txt" for n in range(OBJECTS)]
    for key in keys:
        await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=b"x")
    await wait_for_keys(tmp_path, *keys)
    await wait_until(lambda: messages_left(moto_server, queue_url) == 0, "the queue to be drained")
    counts = seen(tmp_path)
    assert len(counts) == OBJECTS and set(counts.values()) == {1}, counts
