"""The SQS source (`kind: sqs`): Lambda's SQS event source mapping over any SQS endpoint, via aiobotocore.

`SqsSource.run()` opens one client, finds the queue (name, URL or ARN; retrying with backoff until it
exists) and reads its attributes (ARN, FIFO, visibility timeout, redrive policy), tells the daemon it is
ready, then runs one `RoutePoller` per route (router/sources/sqs/poller.py) until cancelled. Each route is
its own event source mapping, as on Lambda: two routes from one queue compete for its messages (each message
goes to one of them), they do not each get every message.

Acknowledging a message is deleting it, once the function succeeded with it (or the route's filter did not
take it). Nothing is kept in the state folder: what is not deleted, SQS delivers again after the queue's
visibility timeout, and moves to the dead-letter queue after the redrive policy's maxReceiveCount.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from router.config.sources.sqs import Config
from router.core.retry import Backoff
from router.sources.sqs.poller import RoutePoller
from router.sources.sqs.queue import Queue, client_config, client_errors
from router.sources.stream.routes import run_mappings

if TYPE_CHECKING:
    from router.core.ports import SourceContext

log = logging.getLogger("router.sources.sqs")


class SqsSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.pollers: list[RoutePoller] = []

    async def run(self) -> None:
        from aiobotocore.session import get_session

        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            sqs = await stack.enter_async_context(
                get_session().create_client(
                    "sqs", config=client_config(config.wait_time_s), **config.client_args(self.ctx.region)
                )
            )
            queue = await self._open(sqs)
            self.pollers = [
                RoutePoller(
                    self.ctx,
                    route,
                    queue,
                    max_concurrency=config.max_concurrency,
                    wait_time_s=config.wait_time_s,
                    stop_grace_s=config.stop_grace_s,
                )
                for route in self.ctx.routes
            ]
            await run_mappings(
                self.ctx.ready, [(f"sqs:{self.ctx.name}:{p.route.function}", p) for p in self.pollers]
            )

    async def _open(self, sqs: object) -> Queue:
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                return await Queue.open(sqs, queue=self.config.queue, queue_arn=self.config.queue_arn)
            except client_errors() as e:
                fields = {"source": self.ctx.name, "retry_in_s": backoff.upcoming}
                log.warning("cannot open sqs queue: %s", e, extra={"fields": fields})
                await backoff.sleep(self.ctx.clock)

    async def aclose(self) -> None:
        return None
