"""SNS notifications through an SQS queue the router owns, turned into Lambda's SNS event.

SNS pushes; the router polls. So the source subscribes a queue to the topic (the way a service without a
public endpoint receives SNS) and long-polls it:

* At start it creates the queue (`queue`, default `router-sns-<source name>`; an existing one is reused),
  allows the topic to send to it (a queue policy: needed on AWS, ignored by emulators), and subscribes it to
  `topic_arn` with raw delivery off, so each message body is the notification's JSON document. Subscribing
  again is a no-op on SNS: restarts keep one subscription. The source is ready once subscribed.
* Each notification becomes one envelope carrying one SNS record (`router.shapes.sns.from_notification`),
  submitted on its own: SNS invokes a function asynchronously, once per notification. The message is
  deleted only after submit queued it durably; on a `DispatchError` the remaining messages are made visible
  again and the source backs off. A router that dies in between gets the message again after the queue's
  visibility timeout (at-least-once).
* Messages that are not notifications (a subscription confirmation, anything else) are logged and deleted.

Notifications published while the router was not subscribed yet are not seen (SNS keeps nothing). The
subscription is left in place when the router stops, so notifications published meanwhile wait in the queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from router.config.sources.sns import Config
from router.core.errors import DispatchError
from router.core.retry import Backoff
from router.shapes import sns as shape
from router.sources.sqs.queue import Queue, client_config, client_errors

if TYPE_CHECKING:
    from router.core.ports import SourceContext

log = logging.getLogger("router.sources.sns")


class SnsSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.subscription_arn: str | None = None

    async def run(self) -> None:
        from aiobotocore.session import get_session

        config, session = self.config, get_session()
        args = config.client_args(self.ctx.region)
        async with contextlib.AsyncExitStack() as stack:
            sqs = await stack.enter_async_context(
                session.create_client("sqs", config=client_config(config.wait_time_s), **args)
            )
            sns = await stack.enter_async_context(session.create_client("sns", **args))
            queue = await self._retrying(lambda: self._subscribe(sqs, sns))
            self.ctx.ready()
            backoff = Backoff(0.5, 30.0)
            while True:
                try:
                    messages = await queue.receive(10, config.wait_time_s)
                    await self._handle(queue, messages)
                    backoff.reset()
                except DispatchError as e:
                    fields = {"source": self.ctx.name, "error": e.code, "retry_in_s": backoff.upcoming}
                    log.warning("sns notifications not accepted, retrying", extra={"fields": fields})
                    await backoff.sleep(self.ctx.clock)
                except client_errors() as e:
                    log.warning("sqs receive failed: %s", e, extra={"fields": {"source": self.ctx.name}})
                    await backoff.sleep(self.ctx.clock)

    async def _retrying(self, step: Callable[[], Awaitable[Queue]]) -> Queue:
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                return await step()
            except client_errors() as e:
                fields = {"source": self.ctx.name, "topic": self.config.topic_arn}
                log.warning("cannot subscribe to the sns topic: %s", e, extra={"fields": fields})
                await backoff.sleep(self.ctx.clock)

    async def _subscribe(self, sqs: Any, sns: Any) -> Queue:
        name = self.config.queue or f"router-sns-{self.ctx.name}"
        url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        queue = await Queue.open(sqs, queue=url)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue.arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.config.topic_arn}},
                }
            ],
        }
        await sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        sub = await sns.subscribe(
            TopicArn=self.config.topic_arn,
            Protocol="sqs",
            Endpoint=queue.arn,
            Attributes={"RawMessageDelivery": "false"},
            ReturnSubscriptionArn=True,
        )
        self.subscription_arn = sub.get("SubscriptionArn")
        return queue

    async def _handle(self, queue: Queue, messages: list[dict[str, Any]]) -> None:
        for i, message in enumerate(messages):
            doc = _notification(message.get("Body", ""))
            if doc is None:
                log.warning(
                    "not an sns notification, deleted: %.200s",
                    message.get("Body", ""),
                    extra={"fields": {"source": self.ctx.name, "message_id": message.get("MessageId")}},
                )
            else:
                rec = shape.from_notification(doc, subscription_arn=self.subscription_arn)
                try:
                    await self.ctx.submit([shape.envelope(rec, source_name=self.ctx.name)])
                except DispatchError:
                    await queue.release(messages[i:])
                    raise
            await queue.delete([message])

    async def aclose(self) -> None:
        return None


def _notification(body: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("TopicArn"), str):
        return doc
    return None
