"""The `sqs` and `sns` source kinds from the config file, against moto, with real function processes.

* sqs: a route's filter sees the body as JSON; a message it does not take is deleted without a call, as
  Lambda deletes filtered SQS messages; the one it takes reaches the function and is deleted.
* sns: the router subscribes its own queue to the topic; a published notification reaches the function once,
  as Lambda's SNS event (Records[0].Sns with Type, MessageId, TopicArn, Subject, Message, Timestamp,
  SignatureVersion, Signature, SigningCertUrl, UnsubscribeUrl, MessageAttributes), and leaves the queue.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.esm_support import call, queue_counts, wait_queue_empty
from tests.integration.record_function import CONFIG, events
from tests.support import RouterProcess, aws_client, wait_until

SQS_ROUTES = """
sources:
  orders: {kind: sqs, queue: "${QUEUE}", endpoint: "${MOTO}", wait_time_s: 1}
routes:
  - {source: orders, function: record, filter: {body: {type: [order]}}}
"""

SNS_ROUTES = """
sources:
  alerts: {kind: sns, topic_arn: "${TOPIC}", endpoint: "${MOTO}", wait_time_s: 1}
routes:
  - {source: alerts, function: record}
"""


async def test_an_sqs_route_filters_on_the_json_body(make_router: Any, moto_server: str) -> None:
    sqs = aws_client("sqs", moto_server)
    name = f"orders-{uuid.uuid4().hex[:8]}"
    url = (await call(sqs.create_queue, QueueName=name))["QueueUrl"]
    router: RouterProcess = await make_router(CONFIG + SQS_ROUTES, env={"MOTO": moto_server, "QUEUE": name})

    await call(sqs.send_message, QueueUrl=url, MessageBody='{"type": "refund", "id": 1}')
    await wait_queue_empty(sqs, url)  # taken by no route: deleted without a call
    await call(sqs.send_message, QueueUrl=url, MessageBody='{"type": "order", "id": 2}')
    await wait_until(lambda: events(router.base_dir), "the order delivered")
    await wait_queue_empty(sqs, url)
    [event] = events(router.base_dir)
    assert [r["body"] for r in event["Records"]] == ['{"type": "order", "id": 2}']
    assert await queue_counts(sqs, url) == (0, 0)


async def test_an_sns_notification_reaches_the_function_as_lambdas_sns_event(
    make_router: Any, moto_server: str
) -> None:
    sns = aws_client("sns", moto_server)
    topic = (await call(sns.create_topic, Name=f"alerts-{uuid.uuid4().hex[:8]}"))["TopicArn"]
    router: RouterProcess = await make_router(CONFIG + SNS_ROUTES, env={"MOTO": moto_server, "TOPIC": topic})

    attributes = {"level": {"DataType": "String", "StringValue": "high"}}
    published = await call(
        sns.publish, TopicArn=topic, Message="disk full", Subject="alarm", MessageAttributes=attributes
    )
    await wait_until(lambda: events(router.base_dir), "the notification delivered")
    [event] = events(router.base_dir)
    [record] = event["Records"]
    assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"].startswith(f"{topic}:")
    sns_part = record["Sns"]
    assert list(sns_part) == [
        "Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion", "Signature",
        "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes",
    ]  # fmt: skip
    assert sns_part["MessageId"] == published["MessageId"] and sns_part["TopicArn"] == topic
    assert (sns_part["Subject"], sns_part["Message"]) == ("alarm", "disk full")
    assert sns_part["MessageAttributes"] == {"level": {"Type": "String", "Value": "high"}}

    sqs = aws_client("sqs", moto_server)
    url = (await call(sqs.get_queue_url, QueueName="router-sns-alerts"))["QueueUrl"]
    await wait_queue_empty(sqs, url)
