"""The stack's init step: creates everything compose/router.yaml reads from and writes to. Idempotent.

The compose stack runs it once (the one-shot `init` service) before the router starts; tests/e2e/conftest.py
runs the same file against natively started services (moto, tansu). Endpoints come from the environment:

    AWS_ENDPOINT_URL   the AWS emulator (default http://aws:5000), with AWS_ACCESS_KEY_ID,
                       AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION (defaults: testing, testing, us-east-1)
    KAFKA_BOOTSTRAP    the Kafka broker (default kafka:9092)

It creates, unless they exist: the buckets (RECORD_BUCKET, where the stack's functions record each event;
MAIL_BUCKET, where received mail is stored; UPLOADS_BUCKET, whose notifications go to the SQS queue
UPLOADS_QUEUE), the DynamoDB table ORDERS_TABLE with a NEW_AND_OLD_IMAGES stream, the Kinesis stream
EVENTS_STREAM and the Kafka topics in KAFKA_TOPICS. The names below are the ones compose/router.yaml uses;
the e2e suite imports them from here. Exit status 0 once everything exists, 1 with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

RECORD_BUCKET = "router-records"
MAIL_BUCKET = "mail"
UPLOADS_BUCKET = "uploads"
UPLOADS_QUEUE = "uploads-events"
ORDERS_TABLE = "orders"
EVENTS_STREAM = "events"
KAFKA_TOPICS = {"clicks": 2}  # name -> partitions

DEADLINE_S = float(os.environ.get("INIT_TIMEOUT_S", "60"))  # how long the services get to answer


def aws_endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", "http://aws:5000")


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP", "kafka:9092")


def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=aws_endpoint(),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def retry(what: str, step: Callable[[], Any]) -> Any:
    """Run step until it succeeds or the deadline passes: the service may still be starting."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            return step()
        except Exception as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {type(e).__name__}: {e}") from e
            time.sleep(0.5)


def create_buckets() -> None:
    s3 = aws_client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for name in (RECORD_BUCKET, MAIL_BUCKET, UPLOADS_BUCKET):
        if name not in existing:
            s3.create_bucket(Bucket=name)


def notify_queue_of_uploads() -> None:
    """UPLOADS_BUCKET's object events go to UPLOADS_QUEUE, as an S3 event notification to SQS does."""
    s3, sqs = aws_client("s3"), aws_client("sqs")
    url = sqs.create_queue(QueueName=UPLOADS_QUEUE)["QueueUrl"]  # returns the existing queue's URL too
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    wanted = [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
    current = s3.get_bucket_notification_configuration(Bucket=UPLOADS_BUCKET).get("QueueConfigurations", [])
    if [(c["QueueArn"], sorted(c["Events"])) for c in current] != [(arn, sorted(wanted[0]["Events"]))]:
        s3.put_bucket_notification_configuration(
            Bucket=UPLOADS_BUCKET, NotificationConfiguration={"QueueConfigurations": wanted}
        )


def create_table() -> None:
    dynamodb = aws_client("dynamodb")
    if ORDERS_TABLE not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=ORDERS_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    dynamodb.get_waiter("table_exists").wait(TableName=ORDERS_TABLE, WaiterConfig={"Delay": 1})


def create_stream() -> None:
    kinesis = aws_client("kinesis")
    if EVENTS_STREAM not in kinesis.list_streams()["StreamNames"]:
        kinesis.create_stream(StreamName=EVENTS_STREAM, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=EVENTS_STREAM, WaiterConfig={"Delay": 1})


async def create_topics() -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap(), request_timeout_ms=10_000)
    await admin.start()
    try:
        missing = [t for t in KAFKA_TOPICS if t not in set(await admin.list_topics())]
        if missing:
            await admin.create_topics([NewTopic(t, KAFKA_TOPICS[t], 1) for t in missing])
        still_missing = [t for t in KAFKA_TOPICS if t not in set(await admin.list_topics())]
        if still_missing:
            raise RuntimeError(f"topics not created: {', '.join(still_missing)}")
    finally:
        await admin.close()


def main() -> int:
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"buckets at {aws_endpoint()}", create_buckets),
        (f"queue {UPLOADS_QUEUE} for bucket {UPLOADS_BUCKET}", notify_queue_of_uploads),
        (f"table {ORDERS_TABLE}", create_table),
        (f"kinesis stream {EVENTS_STREAM}", create_stream),
        (f"kafka topics at {kafka_bootstrap()}", lambda: asyncio.run(create_topics())),
    ]
    for what, step in steps:
        try:
            retry(what, step)
        except RuntimeError as e:
            print(f"init: {e}", file=sys.stderr)
            return 1
        print(f"init: {what}: ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
