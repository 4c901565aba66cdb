"""SQS event source mappings created with an unmodified boto3 Lambda client against a running router, on moto.

A message reaches the function in Lambda's SQS event and leaves the queue; a failing one comes back after the
visibility timeout and lands in the queue's dead-letter queue after maxReceiveCount (SQS's own redrive, on
moto); a partial batch response deletes only what succeeded; a FIFO queue keeps each group in order while
another group goes ahead; Update (batch size, Enabled false then true) and Delete take effect; mappings
survive kill -9.
"""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from collections import defaultdict
from typing import Any

import pytest

from tests.integration.esm_support import (
    CONFIG,
    bodies,
    call,
    lam,
    lines,
    wait_bodies,
    wait_queue_empty,
    wait_state,
)
from tests.support import RouterProcess, aws_client, wait_for, wait_until


@pytest.fixture
def sqs(moto_server: str) -> Any:
    return aws_client("sqs", moto_server)


async def make_queue(sqs: Any, name: str | None = None, **attributes: str) -> tuple[str, str]:
    name = name or f"q-{uuid.uuid4().hex[:8]}"
    url = (await call(sqs.create_queue, QueueName=name, Attributes=attributes))["QueueUrl"]
    arn = (await call(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"]
    return url, arn["QueueArn"]


async def queue_with_dlq(sqs: Any, visibility_s: int, max_receives: int) -> tuple[str, str, str]:
    """(url, arn, dead-letter queue url) of a queue whose redrive policy moves messages to a fresh DLQ."""
    dlq_url, dlq_arn = await make_queue(sqs)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
    url, arn = await make_queue(sqs, VisibilityTimeout=str(visibility_s), RedrivePolicy=policy)
    return url, arn, dlq_url


async def router_for(make_router: Any, moto_server: str, **env: str) -> RouterProcess:
    router: RouterProcess = await make_router(CONFIG, env={"MOTO": moto_server, **env})
    return router


async def create(router: RouterProcess, arn: str, **kw: Any) -> dict[str, Any]:
    client = lam(router)
    created: dict[str, Any] = await call(
        client.create_event_source_mapping, EventSourceArn=arn, FunctionName="sqs-record", **kw
    )
    await wait_state(client, created["UUID"], "Enabled")
    return created


async def dlq_bodies(sqs: Any, url: str) -> list[str]:
    got = await call(sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [m["Body"] for m in got.get("Messages", [])]


async def test_a_message_reaches_the_function_in_lambdas_shape_and_leaves_the_queue(
    make_router: Any, moto_server: str, sqs: Any
) -> None:
    router = await router_for(make_router, moto_server)
    url, arn = await make_queue(sqs)
    created = await create(router, arn, BatchSize=5)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating" and created["BatchSize"] == 5 and created["EventSourceArn"] == arn
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:sqs-record"

    attributes = {"kind": {"DataType": "String", "StringValue": "greeting"}}
    await call(sqs.send_message, QueueUrl=url, MessageBody="hello", MessageAttributes=attributes)
    await wait_bodies(router.base_dir, "hello")
    await wait_queue_empty(sqs, url)

    [line] = lines(router.base_dir)
    record = line["record"]
    assert list(record) == [
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    ]  # fmt: skip
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(b"hello").hexdigest()
    assert list(record["attributes"])[:4] == [
        "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    ]  # fmt: skip
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "greeting",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


async def test_a_failing_message_returns_after_the_visibility_timeout_then_goes_to_the_dlq(
    make_router: Any, moto_server: str, sqs: Any
) -> None:
    router = await router_for(make_router, moto_server, TIMEOUT="2")
    url, arn, dlq = await queue_with_dlq(sqs, visibility_s=2, max_receives=2)
    await create(router, arn)

    await call(sqs.send_message, QueueUrl=url, MessageBody="raise-me")
    await wait_until(
        lambda: len(bodies(router.base_dir, ok=False)) >= 2, lambda: f"2 tries in {lines(router.base_dir)}"
    )
    found = await wait_for(lambda: dlq_bodies(sqs, dlq), lambda b: b == ["raise-me"], 30)
    assert found == ["raise-me"]
    await wait_queue_empty(sqs, url)
    tries = [line["count"] for line in lines(router.base_dir)]
    assert tries == [1, 2]  # the second delivery came after the visibility timeout, as SQS counts it


async def test_a_partial_batch_response_deletes_only_what_succeeded(
    make_router: Any, moto_server: str, sqs: Any
) -> None:
    router = await router_for(make_router, moto_server, REPORT="1", TIMEOUT="2")
    url, arn, dlq = await queue_with_dlq(sqs, visibility_s=2, max_receives=1)
    await create(
        router,
        arn,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(["ok-1", "fail-1", "ok-2"])]
    await call(sqs.send_message_batch, QueueUrl=url, Entries=entries)

    await wait_bodies(router.base_dir, "ok-1", "ok-2")
    found = await wait_for(lambda: dlq_bodies(sqs, dlq), lambda b: b == ["fail-1"], 30)
    assert found == ["fail-1"]  # only the reported message stayed in the queue, until its redrive
    await wait_queue_empty(sqs, url)
    delivered = defaultdict(list)
    for line in lines(router.base_dir):
        delivered[line["body"]].append(line["ok"])
    assert delivered == {"ok-1": [True], "ok-2": [True], "fail-1": [False]}


async def test_a_fifo_queue_keeps_each_group_in_order_and_groups_apart(
    make_router: Any, moto_server: str, sqs: Any
) -> None:
    router = await router_for(make_router, moto_server, TIMEOUT="30")
    name = f"q-{uuid.uuid4().hex[:8]}.fifo"
    url, arn = await make_queue(sqs, name, FifoQueue="true", ContentBasedDeduplication="true")
    await create(router, arn, BatchSize=1)
    gate = router.base_dir / "gate"
    sent = {"a": [f"wait:{gate}", "a-1", "a-2", "a-3"], "b": ["b-0", "b-1", "b-2", "b-3"]}
    for i in range(4):
        for group in ("a", "b"):
            await call(sqs.send_message, QueueUrl=url, MessageBody=sent[group][i], MessageGroupId=group)

    # Group a's first message holds its call until the gate opens: group b goes ahead meanwhile, and
    # nothing of group a passes its first message.
    await wait_bodies(router.base_dir, *sent["b"])
    assert not [line for line in lines(router.base_dir) if line["group"] == "a"]
    gate.touch()
    await wait_bodies(router.base_dir, *sent["a"])
    await wait_queue_empty(sqs, url)
    logged = lines(router.base_dir)
    for group, expected in sent.items():
        assert [line["body"] for line in logged if line["group"] == group] == expected


async def test_update_and_delete_take_effect(make_router: Any, moto_server: str, sqs: Any) -> None:
    router = await router_for(make_router, moto_server)
    client = lam(router)
    url, arn = await make_queue(sqs)
    uid = (await create(router, arn, BatchSize=1))["UUID"]

    updated = await call(client.update_event_source_mapping, UUID=uid, BatchSize=3)
    assert updated["State"] == "Updating" and updated["BatchSize"] == 3
    assert (await wait_state(client, uid, "Enabled"))["BatchSize"] == 3

    assert (await call(client.update_event_source_mapping, UUID=uid, Enabled=False))["State"] == "Disabling"
    await wait_state(client, uid, "Disabled")
    await call(sqs.send_message, QueueUrl=url, MessageBody="while-disabled")
    peeked = await call(sqs.receive_message, QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1)
    assert [m["Body"] for m in peeked["Messages"]] == ["while-disabled"]  # nobody else took it

    assert (await call(client.update_event_source_mapping, UUID=uid, Enabled=True))["State"] == "Enabling"
    await wait_state(client, uid, "Enabled")
    await wait_bodies(router.base_dir, "while-disabled")

    deleted = await call(client.delete_event_source_mapping, UUID=uid)
    assert deleted["State"] == "Deleting" and deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        await call(client.get_event_source_mapping, UUID=uid)
    await wait_until(
        lambda: not (router.base_dir / "state" / "sources" / f"esm-{uid}").exists(), "state removed"
    )
    await call(sqs.send_message, QueueUrl=url, MessageBody="after-delete")
    peeked = await call(sqs.receive_message, QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1)
    assert [m["Body"] for m in peeked["Messages"]] == ["after-delete"]
    assert "after-delete" not in bodies(router.base_dir)


async def test_mappings_survive_kill_9_and_a_config_reload(
    make_router: Any, moto_server: str, sqs: Any
) -> None:
    router = await router_for(make_router, moto_server, TIMEOUT="2")
    # The killed router's long poll may still be open on the queue and take the next message: it comes back
    # after the visibility timeout (as on SQS), kept short here.
    url, arn = await make_queue(sqs, VisibilityTimeout="3")
    created = await create(router, arn, BatchSize=7)
    await router.kill()
    await router.start()

    client = lam(router)
    kept = await wait_state(client, created["UUID"], "Enabled")
    assert kept["BatchSize"] == 7 and kept["EventSourceArn"] == arn
    await call(sqs.send_message, QueueUrl=url, MessageBody="after-restart")
    await wait_bodies(router.base_dir, "after-restart")

    router.send(signal.SIGHUP)
    await wait_until(lambda: "reload: applied" in router.log_text(), "the reload applied")
    assert (await call(client.get_event_source_mapping, UUID=created["UUID"]))["State"] == "Enabled"
    await call(sqs.send_message, QueueUrl=url, MessageBody="after-reload")
    await wait_bodies(router.base_dir, "after-reload")
