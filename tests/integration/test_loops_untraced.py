"""Loop protection where nothing carries the trace: a function that writes into its own trigger with plain
calls (a file without the trace attribute, boto3 into its own bucket, stream or table on moto) is stopped at
limits.max_loop_depth, from the router's side: its Python runtime notes each write into the router's own
sources in the write journal (router/core/writes.py), and the source that reads the event finds its writer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.inspect_client import Inspector
from tests.integration.stream_support import (
    aws_source,
    dynamodb_table,
    failure_records,
    kinesis_stream,
    unique,
)
from tests.integration.test_loops import _stopped_after_three, config
from tests.support import aws_client, wait_for

pytestmark = pytest.mark.integration


def aws_env(endpoint: str) -> str:
    return f"AWS_ACCESS_KEY_ID: testing, AWS_SECRET_ACCESS_KEY: testing, AWS_ENDPOINT: '{endpoint}'"


async def test_a_plain_file_written_into_its_own_folder(make_router) -> None:
    folder = """
sources:
  bucket: {kind: s3, bucket: own, directory: bucket, stable_s: 0.05}
routes:
  - {source: bucket, function: loop}
"""
    env = "BUCKET_DIR: '${TMP}/bucket', NO_XATTR: '1'"
    router = await make_router(config("loop_file", env, depth=3, extra=folder), files={"bucket/a": "start"})
    await _stopped_after_three(router, None)
    assert sorted(p.name for p in (router.base_dir / "bucket").iterdir()) == ["a", "a.x", "a.x.x", "a.x.x.x"]


async def test_an_object_put_into_its_own_bucket_through_the_s3_api(make_router, moto_server) -> None:
    bucket = unique("own")
    s3 = aws_client("s3", moto_server)
    await asyncio.to_thread(s3.create_bucket, Bucket=bucket)
    await asyncio.to_thread(s3.put_object, Bucket=bucket, Key="a", Body=b"start")
    source = f"""
sources:
  bucket: {{kind: s3, bucket: {bucket}, endpoint: "{moto_server}", poll_interval_s: 0.1}}
routes:
  - {{source: bucket, function: loop}}
"""
    router = await make_router(config("loop_aws", aws_env(moto_server), depth=3, timeout=10, extra=source))
    await _stopped_after_three(router, None)
    listing = await asyncio.to_thread(s3.list_objects_v2, Bucket=bucket)
    assert sorted(o["Key"] for o in listing["Contents"]) == ["a", "a.x", "a.x.x", "a.x.x.x"]


async def stream_loop_stopped(router: Any) -> None:
    """Depths 1 to 3 ran; the 4th batch was given up as RecursiveLoopDetected into the route's destination."""
    dlq = router.base_dir / "failed"
    await wait_for(lambda: asyncio.to_thread(failure_records, dlq), bool, within_s=60)
    (record,) = failure_records(dlq)
    assert record["requestContext"]["condition"] == "RecursiveLoopDetected"
    runs = [i for i in await Inspector(router.url).invocations("loop") if i["outcome"] == "success"]
    assert [i["depth"] for i in runs] == [1, 2, 3]


def stream_route(kind: str, settings: str) -> str:
    return f"""
sources:
{aws_source(kind, settings)}
routes:
  - {{source: stream, function: loop, on_error: {{destination: {{directory: failed}}}}}}
"""


async def test_a_record_put_into_its_own_kinesis_stream(make_router, moto_server) -> None:
    name = unique("own")
    client = await asyncio.to_thread(kinesis_stream, moto_server, name, 1)
    await asyncio.to_thread(client.put_record, StreamName=name, Data=b"start", PartitionKey="k")
    settings = f'endpoint: "{moto_server}", stream: {name}, starting_position: TRIM_HORIZON'
    extra = stream_route("kinesis", settings)
    router = await make_router(config("loop_aws", aws_env(moto_server), depth=3, timeout=10, extra=extra))
    await stream_loop_stopped(router)


async def test_an_item_put_into_its_own_dynamodb_table(make_router, moto_server) -> None:
    name = unique("own")
    client = await asyncio.to_thread(dynamodb_table, moto_server, name)
    settings = f'endpoint: "{moto_server}", table: {name}, starting_position: TRIM_HORIZON'
    extra = stream_route("dynamodb", settings)
    router = await make_router(config("loop_aws", aws_env(moto_server), depth=3, timeout=10, extra=extra))
    await asyncio.to_thread(client.put_item, TableName=name, Item={"id": {"S": "a"}})
    await stream_loop_stopped(router)
