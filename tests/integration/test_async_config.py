"""Event invoke configs, destinations and dead-letter queues against a real router and a moto server.

boto3 sets a function's FunctionEventInvokeConfig (retries, OnFailure to an SQS queue, OnSuccess to an SNS
topic, an EventBridge bus or another function) and its DeadLetterConfig; asynchronous invocations then
leave Lambda's records in those places, read back from moto with boto3.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from router.core import errors as E
from tests.integration.test_control import call, error_of
from tests.support import RouterProcess
from tests.unit.test_control_support import lambda_client, make_zip

CONFIG = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
aws: {endpoint_url: "${MOTO}", region: us-east-1, access_key_id: testing, secret_access_key: testing}
functions:
  cfg-echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo"}
"""

HANDLER = """
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail: " + str(event["fail"]))
    return {"ok": event}
"""


def aws(service: str, moto: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=moto, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


async def receive(sqs: Any, url: str, within_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(
            sqs.receive_message, QueueUrl=url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        if got.get("Messages"):
            return got["Messages"][0]  # type: ignore[no-any-return]
    raise AssertionError(f"nothing arrived in {url}")


def create_args(name: str, **kw: Any) -> dict[str, Any]:
    return {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::123456789012:role/x",
            "Handler": "app.handler", "Code": {"ZipFile": make_zip({"app.py": HANDLER})}, **kw}  # fmt: skip


async def test_on_failure_sqs_on_success_sns_and_a_dead_letter_queue(
    make_router: Any, moto_server: str
) -> None:
    sqs, sns = aws("sqs", moto_server), aws("sns", moto_server)
    failures_url, failures_arn = queue(sqs, "fn-failures")
    dlq_url, dlq_arn = queue(sqs, "fn-dlq")
    notified_url, notified_arn = queue(sqs, "fn-notified")
    topic = sns.create_topic(Name="fn-successes")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=notified_arn)
    router: RouterProcess = await make_router(CONFIG, env={"MOTO": moto_server})
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("fn", DeadLetterConfig={"TargetArn": dlq_arn}))
    put = await call(c.put_function_event_invoke_config, FunctionName="fn", MaximumRetryAttempts=0,
                     DestinationConfig={"OnFailure": {"Destination": failures_arn},
                                        "OnSuccess": {"Destination": topic}})  # fmt: skip
    assert put["FunctionArn"].endswith(":function:fn:$LATEST") and put["MaximumEventAgeInSeconds"] == 21600

    failed = await call(c.invoke, FunctionName="fn", InvocationType="Event", Payload=b'{"fail": "now"}')
    request_id = failed["ResponseMetadata"]["RequestId"]
    record = json.loads((await receive(sqs, failures_url))["Body"])
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"].endswith(":function:fn:$LATEST")
    assert record["requestPayload"] == {"fail": "now"}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "asked to fail: now"
    dead = await receive(sqs, dlq_url)
    assert json.loads(dead["Body"]) == {"fail": "now"}
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes == {"RequestID": request_id, "ErrorCode": "200", "ErrorMessage": "asked to fail: now"}

    await call(c.invoke, FunctionName="fn", InvocationType="Event", Payload=b'{"n": 1}')
    envelope = json.loads((await receive(sqs, notified_url))["Body"])
    success = json.loads(envelope["Message"])
    assert success["requestContext"]["condition"] == "Success" and success["responsePayload"] == {
        "ok": {"n": 1}
    }

    got = await call(c.get_function_event_invoke_config, FunctionName="fn")
    assert got["DestinationConfig"]["OnFailure"] == {"Destination": failures_arn}
    config = await call(c.get_function_configuration, FunctionName="fn")
    assert config["DeadLetterConfig"] == {"TargetArn": dlq_arn}


async def test_destinations_of_a_version_alias_eventbridge_and_a_function(
    make_router: Any, moto_server: str
) -> None:
    sqs, events = aws("sqs", moto_server), aws("events", moto_server)
    bus_url, bus_queue_arn = queue(sqs, "bus-target")
    bus = events.create_event_bus(Name="results")["EventBusArn"]
    events.put_rule(Name="lambda", EventBusName="results", EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule="lambda", EventBusName="results", Targets=[{"Id": "q", "Arn": bus_queue_arn}])
    router: RouterProcess = await make_router(CONFIG, env={"MOTO": moto_server})
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("fn", Publish=True))
    await call(c.create_alias, FunctionName="fn", Name="live", FunctionVersion="1")
    sink_failures_url, sink_failures_arn = queue(sqs, "sink-failures")
    sink_code = "def handler(event, context):\n    raise ValueError(event['requestContext']['condition'])\n"
    await call(c.create_function, **create_args("sink", Code={"ZipFile": make_zip({"app.py": sink_code})}))
    await call(c.put_function_event_invoke_config, FunctionName="sink", MaximumRetryAttempts=0,
               DestinationConfig={"OnFailure": {"Destination": sink_failures_arn}})  # fmt: skip
    sink_arn = (await call(c.get_function, FunctionName="sink"))["Configuration"]["FunctionArn"]
    destinations = {"OnSuccess": {"Destination": bus}, "OnFailure": {"Destination": sink_arn}}
    await call(c.put_function_event_invoke_config, FunctionName="fn", Qualifier="live",
               MaximumRetryAttempts=0, DestinationConfig=destinations)  # fmt: skip

    await call(c.invoke, FunctionName="fn", Qualifier="live", InvocationType="Event", Payload=b'{"n": 2}')
    event = json.loads((await receive(sqs, bus_url))["Body"])
    assert event["source"] == "lambda"
    assert event["detail-type"] == "Lambda Function Invocation Result - Success"
    assert event["detail"]["requestContext"]["functionArn"].endswith(":function:fn:1")
    assert event["detail"]["responseContext"]["executedVersion"] == "1"

    # fn's failure record goes to the function sink, which fails on every record: sink's own OnFailure is
    # the queue, where the record of sink's failure carries fn's record as its request payload.
    await call(c.invoke, FunctionName="fn:live", InvocationType="Event", Payload=b'{"fail": "deep"}')
    record = json.loads((await receive(sqs, sink_failures_url))["Body"])
    assert record["responsePayload"]["errorMessage"] == "RetriesExhausted"
    assert record["requestPayload"]["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["requestPayload"] == {"fail": "deep"}
    listed = await call(c.list_function_event_invoke_configs, FunctionName="fn")
    assert [x["FunctionArn"].rsplit(":", 1)[-1] for x in listed["FunctionEventInvokeConfigs"]] == ["live"]


async def test_invoke_config_calls_and_their_errors(make_router: Any, moto_server: str) -> None:
    router: RouterProcess = await make_router(CONFIG, env={"MOTO": moto_server})
    c = lambda_client(router.url)
    await call(c.create_function, **create_args("fn"))
    await call(c.put_function_event_invoke_config, FunctionName="fn", MaximumRetryAttempts=1)
    updated = await call(
        c.update_function_event_invoke_config, FunctionName="fn", MaximumEventAgeInSeconds=120
    )
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (1, 120)
    replaced = await call(c.put_function_event_invoke_config, FunctionName="fn", MaximumEventAgeInSeconds=60)
    assert (replaced["MaximumRetryAttempts"], replaced["MaximumEventAgeInSeconds"]) == (2, 60)
    await call(c.delete_function_event_invoke_config, FunctionName="fn")
    cases: list[tuple[Any, dict[str, Any], int, str, str]] = [
        (c.get_function_event_invoke_config, {"FunctionName": "fn"}, 404, E.RESOURCE_NOT_FOUND,
         "doesn't have an EventInvokeConfig"),
        (c.update_function_event_invoke_config, {"FunctionName": "fn", "MaximumRetryAttempts": 1}, 404,
         E.RESOURCE_NOT_FOUND, "EventInvokeConfig"),
        (c.put_function_event_invoke_config, {"FunctionName": "fn", "Qualifier": "3"}, 404,
         E.RESOURCE_NOT_FOUND, "fn:3"),
        (c.put_function_event_invoke_config, {"FunctionName": "fn", "DestinationConfig": {
            "OnFailure": {"Destination": "arn:aws:s3:::bucket"}}}, 400, E.INVALID_PARAMETER_VALUE,
         "arn:aws:s3"),
        (c.put_function_event_invoke_config, {"FunctionName": "cfg-echo", "MaximumRetryAttempts": 0}, 409,
         E.RESOURCE_CONFLICT, "config file"),
        (c.put_function_event_invoke_config, {"FunctionName": "nope", "MaximumRetryAttempts": 0}, 404,
         E.RESOURCE_NOT_FOUND, "Function not found"),
        (c.update_function_configuration, {"FunctionName": "fn", "DeadLetterConfig": {
            "TargetArn": "arn:aws:events:us-east-1:123456789012:event-bus/x"}}, 400,
         E.INVALID_PARAMETER_VALUE, "SQS queue or SNS topic"),
    ]  # fmt: skip
    for fn, kw, status, error, needle in cases:
        e = await error_of(fn, **kw)
        assert e["ResponseMetadata"]["HTTPStatusCode"] == status, kw
        assert e["Error"]["Code"] == error, (kw, e["Error"])
        assert needle in e["Error"]["Message"], (kw, e["Error"]["Message"])
    # MaximumRetryAttempts out of 0-2 is refused by botocore itself (its model's range), so send it raw.
    import urllib.error
    import urllib.request

    url = f"{router.url}/2019-09-25/functions/fn/event-invoke-config"
    headers = {"Content-Type": "application/json"}
    raw = urllib.request.Request(url, method="PUT", data=b'{"MaximumRetryAttempts": 5}', headers=headers)
    try:
        await asyncio.to_thread(urllib.request.urlopen, raw)
        raise AssertionError("accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400 and e.headers["x-amzn-ErrorType"] == E.INVALID_PARAMETER_VALUE


CONFIGURED = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
aws: {endpoint_url: "${MOTO}", region: us-east-1, access_key_id: testing, secret_access_key: testing}
functions:
  failing:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/fail"
    async: {max_retries: 0, on_failure: {sqs: "${FAILURES}"}, dead_letter: {sqs: "${DLQ}"}}
"""


async def test_config_file_sqs_destination_and_dead_letter(make_router: Any, moto_server: str) -> None:
    sqs = aws("sqs", moto_server)
    failures_url, failures_arn = queue(sqs, "cfg-failures")
    dlq_url, _ = queue(sqs, "cfg-dlq")
    env = {"MOTO": moto_server, "FAILURES": failures_arn, "DLQ": dlq_url}  # an ARN, and a queue URL
    router: RouterProcess = await make_router(CONFIGURED, env=env)
    c = lambda_client(router.url)
    await call(c.invoke, FunctionName="failing", InvocationType="Event", Payload=b'{"message": "cfg"}')
    record = json.loads((await receive(sqs, failures_url))["Body"])
    assert record["responsePayload"]["errorMessage"] == "cfg"
    dead = await receive(sqs, dlq_url)
    assert json.loads(dead["Body"]) == {"message": "cfg"}
    assert dead["MessageAttributes"]["ErrorMessage"]["StringValue"] == "cfg"
