"""The SQS source (`kind: sqs`): a queue polled in batches, with Lambda's SQS event source mapping semantics.

Modules: `source` (the client, the queue, one poller per route), `poller` (batching, concurrency, deletes,
partial batch responses, FIFO order), `queue` (the SQS calls). The event shape is router/shapes/sqs.py; the
settings are router/config/sources/sqs.py.

May import: router.core, router.config, router.shapes, router.metrics and router.sources.stream; never
router.dispatch, router.invoker or router.control.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.config.sources.sqs import Config
from router.core.arn import parse_arn

if TYPE_CHECKING:
    from router.config import Config as RouterConfig
    from router.config import RouteConfig
    from router.core.ports import Source, SourceContext

__all__ = ["check", "create", "route_problems"]

FIFO_MAX_BATCH = 10


def check(settings: Config, config: RouterConfig, where: str, problems: list[str]) -> None:
    if (settings.queue is None) == (settings.queue_arn is None):
        problems.append(f"{where}: give exactly one of queue (a name or URL), queue_arn")
    if settings.queue_arn is not None:
        arn = parse_arn(settings.queue_arn)
        if arn is None or arn.service != "sqs":
            problems.append(f"{where}.queue_arn: {settings.queue_arn!r} is not an SQS queue ARN")
    if (settings.access_key_id is None) != (settings.secret_access_key is None):
        problems.append(f"{where}.access_key_id: give both access_key_id and secret_access_key, or neither")
    name = where.rpartition(".")[2]
    fifo = (settings.queue or settings.queue_arn or "").endswith(".fifo")
    for i, route in enumerate(config.routes):
        if route.source == name:
            problems.extend(route_problems(route, f"routes[{i}]", fifo=fifo))


def route_problems(route: RouteConfig, where: str, *, fifo: bool = False) -> list[str]:
    """What an SQS route may not set: SQS retries through the queue's redrive policy, not the mapping."""
    problems = []
    batch = route.batch
    if batch is not None:
        if batch.parallelization_factor != 1:
            problems.append(f"{where}.batch.parallelization_factor: applies to streams, not SQS")
        if batch.size is not None and batch.size > 10 and not (batch.window_s or 0) >= 1:
            problems.append(
                f"{where}.batch.window_s: a batch size over 10 needs a batching window of at least 1 s"
            )
        if fifo and batch.size is not None and batch.size > FIFO_MAX_BATCH:
            problems.append(f"{where}.batch.size: a FIFO queue takes batches of at most {FIFO_MAX_BATCH}")
    on_error = route.on_error
    if on_error is not None:
        for key, default in (("max_retries", -1), ("max_record_age_s", -1), ("bisect", False)):
            if getattr(on_error, key) != default:
                problems.append(
                    f"{where}.on_error.{key}: SQS retries through the queue's redrive policy "
                    "(maxReceiveCount), not the route"
                )
        if on_error.destination is not None:
            problems.append(
                f"{where}.on_error.destination: failed SQS messages go to the queue's dead-letter queue "
                "(its redrive policy), not to a route destination"
            )
    return problems


def create(ctx: SourceContext) -> Source:
    from router.sources.sqs.source import SqsSource

    return SqsSource(ctx)
