"""The one call the control plane makes to SQS: reading a queue's visibility timeout before mapping it.

`await visibility_timeout(settings, default_region)` opens the queue the way the SQS source will (same
endpoint, region and keys: router/sources/sqs/queue.py) and returns its VisibilityTimeout in seconds. A queue
that cannot be read (missing, endpoint down, refused) is an InvalidParameterValueException naming the queue
and the error, as Lambda refuses a mapping to a queue it cannot reach.
"""

from __future__ import annotations

from typing import Any

from router.control.errors import invalid_parameter


async def visibility_timeout(settings: Any, default_region: str) -> int:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    from router.sources.sqs.queue import Queue, client_errors

    config = AioConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10)
    args = settings.client_args(default_region)
    errors: tuple[type[BaseException], ...] = (*client_errors(), ValueError)
    try:
        async with get_session().create_client("sqs", config=config, **args) as sqs:
            queue = await Queue.open(sqs, queue=settings.queue, queue_arn=settings.queue_arn)
    except errors as e:
        raise invalid_parameter(
            f"Cannot read the SQS queue {settings.queue_arn or settings.queue}: {e}"
        ) from None
    return queue.visibility_timeout_s
