"""The event source mapping operations' answers, through boto3 against a running router: errors as Lambda
gives them, listing with filters and pages, and config-file routes listed next to API mappings, read-only.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.esm_support import CONFIG, call, lam, wait_state
from tests.integration.stream_support import kinesis_stream, unique
from tests.support import RouterProcess, aws_client

CONFIG_ROUTES = """
sources:
  orders: {kind: sqs, queue: "${QUEUE}", endpoint: "${MOTO}", wait_time_s: 1}
  clicks: {kind: kinesis, stream: "${STREAM}", endpoint: "${MOTO}", starting_position: TRIM_HORIZON}
routes:
  - {source: orders, function: sqs-record, batch: {size: 4}, on_error: {report_batch_item_failures: true}}
  - {source: clicks, function: stream-log, batch: {size: 20, parallelization_factor: 2}}
"""


@pytest.fixture
def sqs(moto_server: str) -> Any:
    return aws_client("sqs", moto_server)


async def queue_arn(sqs: Any, name: str, **attributes: str) -> str:
    url = (await call(sqs.create_queue, QueueName=name, Attributes=attributes))["QueueUrl"]
    got = await call(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn"])
    return str(got["Attributes"]["QueueArn"])


def error_of(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


async def test_errors_are_lambdas(make_router: Any, moto_server: str, sqs: Any) -> None:
    router: RouterProcess = await make_router(CONFIG, env={"MOTO": moto_server})
    client = lam(router)
    arn = await queue_arn(sqs, unique("q"))

    async def refused(**kw: Any) -> tuple[str, int]:
        args = {"EventSourceArn": arn, "FunctionName": "sqs-record", **kw}
        with pytest.raises(ClientError) as e:
            await call(client.create_event_source_mapping, **args)
        return error_of(e)

    assert await refused(FunctionName="nope") == ("ResourceNotFoundException", 404)
    assert await refused(BatchSize=20000) == ("InvalidParameterValueException", 400)
    assert await refused(BatchSize=20) == ("InvalidParameterValueException", 400)  # needs a window >= 1
    assert await refused(StartingPosition="LATEST") == ("InvalidParameterValueException", 400)
    assert await refused(MaximumRetryAttempts=3) == ("InvalidParameterValueException", 400)
    assert await refused(FilterCriteria={"Filters": [{"Pattern": "{not json"}]}) == (
        "InvalidParameterValueException",
        400,
    )
    assert await refused(EventSourceArn=arn + "-missing") == ("InvalidParameterValueException", 400)
    short = await queue_arn(sqs, unique("q"), VisibilityTimeout="1")  # under the function's 3 s timeout
    assert await refused(EventSourceArn=short) == ("InvalidParameterValueException", 400)
    assert await refused(EventSourceArn="arn:aws:s3:::bucket") == ("InvalidParameterValueException", 400)

    created = await call(client.create_event_source_mapping, EventSourceArn=arn, FunctionName="sqs-record")
    assert await refused() == ("ResourceConflictException", 409)  # the same queue and function again
    with pytest.raises(ClientError) as e:
        await call(client.get_event_source_mapping, UUID=str(uuid.uuid4()))
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        await call(client.update_event_source_mapping, UUID=created["UUID"], BatchSize=20000)
    assert error_of(e) == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as e:
        await call(client.delete_event_source_mapping, UUID=str(uuid.uuid4()))
    assert error_of(e) == ("ResourceNotFoundException", 404)


async def test_listing_filters_pages_and_shows_config_routes_read_only(
    make_router: Any, moto_server: str, sqs: Any
) -> None:
    queue, stream = unique("orders"), unique("clicks")
    await queue_arn(sqs, queue)
    await asyncio.to_thread(kinesis_stream, moto_server, stream)
    router: RouterProcess = await make_router(
        CONFIG + CONFIG_ROUTES, env={"MOTO": moto_server, "QUEUE": queue, "STREAM": stream}
    )
    client = lam(router)
    extra = await queue_arn(sqs, unique("q"))
    mine = await call(client.create_event_source_mapping, EventSourceArn=extra, FunctionName="sqs-record")

    listed = (await call(client.list_event_source_mappings))["EventSourceMappings"]
    assert [m["UUID"] for m in listed][-1] == mine["UUID"]
    orders = next(m for m in listed if m.get("EventSourceArn", "").endswith(f":{queue}"))
    assert orders["BatchSize"] == 4 and orders["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert orders["State"] == "Enabled" and "config file" in orders["StateTransitionReason"]
    clicks = next(m for m in listed if m.get("EventSourceArn", "").endswith(f"stream/{stream}"))
    assert clicks["ParallelizationFactor"] == 2 and clicks["StartingPosition"] == "TRIM_HORIZON"
    assert (await call(client.get_event_source_mapping, UUID=orders["UUID"]))["UUID"] == orders["UUID"]

    by_function = await call(client.list_event_source_mappings, FunctionName="stream-log")
    assert [m["UUID"] for m in by_function["EventSourceMappings"]] == [clicks["UUID"]]
    by_arn = await call(client.list_event_source_mappings, EventSourceArn=extra)
    assert [m["UUID"] for m in by_arn["EventSourceMappings"]] == [mine["UUID"]]
    first = await call(client.list_event_source_mappings, MaxItems=2)
    rest = await call(client.list_event_source_mappings, MaxItems=2, Marker=first["NextMarker"])
    assert [m["UUID"] for m in first["EventSourceMappings"] + rest["EventSourceMappings"]] == [
        m["UUID"] for m in listed
    ]
    assert "NextMarker" not in rest

    for change in (
        lambda: client.update_event_source_mapping(UUID=orders["UUID"], BatchSize=2),
        lambda: client.delete_event_source_mapping(UUID=orders["UUID"]),
    ):
        with pytest.raises(ClientError) as e:
            await asyncio.to_thread(change)
        assert error_of(e) == ("ResourceConflictException", 409)
    await wait_state(client, mine["UUID"], "Enabled")
