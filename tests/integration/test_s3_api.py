"""A real S3 API (the moto server) end to end: notifications through SQS, and ListObjectsV2 polling.

The router runs as a subprocess on a config pointing at moto; the function (tests/functions/s3_record)
appends the events it receives to events.jsonl, which the tests read.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from tests.integration import record_function
from tests.integration.record_function import records, seen, wait_for_keys
from tests.support import aws_client, wait_until

QUEUED = (
    record_function.CONFIG
    + """
sources:
  photos:
    kind: s3
    bucket: "${BUCKET}"
    endpoint: "${MOTO}"
    queue: "${QUEUE}"
    wait_time_s: 1
    access_key_id: testing
    secret_access_key: testing
routes:
  - {source: photos, function: record, events: ["ObjectCreated:*", "ObjectRemoved:*"]}
"""
)

POLLED = (
    record_function.CONFIG
    + """
sources:
  photos:
    kind: s3
    bucket: "${BUCKET}"
    endpoint: "${MOTO}"
    prefix: in/
    poll_interval_s: 0.2
    access_key_id: testing
    secret_access_key: testing
routes:
  - {source: photos, function: record, events: ["ObjectCreated:*", "ObjectRemoved:*"]}
"""
)


def client(service: str, endpoint: str) -> Any:
    return aws_client(
        service,
        endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def notifying_bucket(endpoint: str) -> tuple[str, str]:
    """A fresh bucket whose notifications go to a fresh SQS queue (moto then sends an s3:TestEvent)."""
    name = f"photos-{uuid.uuid4().hex[:8]}"
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    s3.create_bucket(Bucket=name)
    queue_url = sqs.create_queue(QueueName=f"{name}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    return name, queue_url


def messages_left(endpoint: str, queue_url: str) -> int:
    attrs = client("sqs", endpoint).get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


async def test_sqs_notifications_reach_the_function_and_are_deleted(make_router, moto_server: str) -> None:
    bucket, queue_url = notifying_bucket(moto_server)
    s3 = client("s3", moto_server)
    env = {"MOTO": moto_server, "BUCKET": bucket, "QUEUE": f"{bucket}-events"}
    router = await make_router(QUEUED, env=env)
    base = router.base_dir

    s3.put_object(Bucket=bucket, Key="photos/summer beach (1).jpg", Body=b"sunny")
    s3.put_object(Bucket=bucket, Key="docs/readme.txt", Body=b"read me")
    s3.delete_object(Bucket=bucket, Key="docs/readme.txt")
    await wait_for_keys(base, "photos/summer+beach+%281%29.jpg", "docs/readme.txt")
    await wait_for_keys(base, "docs/readme.txt", event="ObjectRemoved:Delete")
    await wait_until(lambda: messages_left(moto_server, queue_url) == 0, "the queue to be drained")

    assert (
        all(n == 1 for n in seen(base).values()) and len(records(base)) == 3
    )  # the TestEvent invoked nothing
    photo = next(r for r in records(base) if r["s3"]["object"]["key"].startswith("photos/"))
    assert photo["s3"]["object"]["eTag"] == hashlib.md5(b"sunny").hexdigest()
    assert photo["s3"]["object"]["size"] == 5
    assert (
        photo["s3"]["bucket"]["name"] == bucket and photo["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    )
    # fields moto leaves out are filled in as S3 sends them
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(photo)
    assert photo["s3"]["object"]["sequencer"] and photo["s3"]["bucket"]["ownerIdentity"]["principalId"]
    removal = next(r for r in records(base) if r["eventName"] == "ObjectRemoved:Delete")
    assert "size" not in removal["s3"]["object"] and "eTag" not in removal["s3"]["object"]

    # notifications sent while the router is down wait in the queue and are delivered once after the start
    assert await router.stop() == 0
    s3.put_object(Bucket=bucket, Key="while-down.txt", Body=b"queued")
    await router.start()
    await wait_for_keys(base, "while-down.txt")
    s3.put_object(Bucket=bucket, Key="sentinel.txt", Body=b"s")
    await wait_for_keys(base, "sentinel.txt")
    assert all(n == 1 for n in seen(base).values()), seen(base)


async def test_polling_announces_each_new_or_changed_object_once(make_router, moto_server: str) -> None:
    bucket = f"poll-{uuid.uuid4().hex[:8]}"
    s3 = client("s3", moto_server)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/existing.txt", Body=b"before the start")
    s3.put_object(Bucket=bucket, Key="out/elsewhere.txt", Body=b"not under the prefix")
    router = await make_router(POLLED, env={"MOTO": moto_server, "BUCKET": bucket})
    base = router.base_dir
    await wait_for_keys(base, "in/existing.txt")

    s3.put_object(Bucket=bucket, Key="in/a b.txt", Body=b"new")
    await wait_for_keys(base, "in/a+b.txt")
    s3.delete_object(Bucket=bucket, Key="in/a b.txt")
    await wait_for_keys(base, "in/a+b.txt", event="ObjectRemoved:Delete")

    assert await router.stop() == 0
    s3.put_object(Bucket=bucket, Key="in/existing.txt", Body=b"changed while down")
    s3.put_object(Bucket=bucket, Key="in/new.txt", Body=b"added while down")
    await router.start()
    await wait_for_keys(base, "in/new.txt")
    s3.put_object(Bucket=bucket, Key="in/sentinel.txt", Body=b"s")
    await wait_for_keys(base, "in/sentinel.txt")

    counts = seen(base)
    assert counts[("ObjectCreated:Put", "in/existing.txt")] == 2  # first version, and the changed one
    assert all(n == 1 for k, n in counts.items() if k[1] != "in/existing.txt"), counts
    assert not any(k.startswith("out/") for _, k in counts)
    etags = [
        r["s3"]["object"]["eTag"] for r in records(base) if r["s3"]["object"]["key"] == "in/existing.txt"
    ]
    assert etags == [
        hashlib.md5(b"before the start").hexdigest(),
        hashlib.md5(b"changed while down").hexdigest(),
    ]
