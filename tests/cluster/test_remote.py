"""Remote functions: a function with `target: {lambda: ...}` runs on another router over the Lambda Invoke
API. Events from a local source (the HTTP gateway) and Invoke calls reach it with the same envelopes;
results and function errors come back as data, and a target that cannot run the call is a dispatch error.
Two real `router serve` processes, boto3 against the first."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.conftest import MakeRouter
from tests.support import free_port

pytestmark = pytest.mark.integration

FAR = """
server: {port: "${ROUTER_PORT}"}
state_dir: "${TMP}/state"
functions:
  echo: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/echo"}
  fail: {runtime: python3.11, handler: app.handler, code: "${FUNCTIONS}/fail"}
"""
NEAR = """
server: {port: "${ROUTER_PORT}"}
state_dir: "${TMP}/state"
functions:
  near:
    target: {lambda: {function_name: echo, endpoint_url: "${FAR}", region: us-east-1}}
  broken:
    target: {lambda: {function_name: fail, endpoint_url: "${FAR}", region: us-east-1}}
  missing:
    target: {lambda: {function_name: nowhere, endpoint_url: "${FAR}", region: us-east-1}}
sources:
  api: {kind: http, port: "${HTTP_PORT}"}
routes:
  - {source: api, function: near, http: {method: GET, path: "/items/{id}"}}
"""


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda", endpoint_url=url, region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 0})
    )


async def test_a_remote_function_answers_local_sources_and_invokes(make_router: MakeRouter) -> None:
    far = await make_router(FAR, name="far")
    http_port = free_port()
    near = await make_router(NEAR, name="near", env={"FAR": far.url, "HTTP_PORT": str(http_port)})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{far.url}/cluster") as r:  # a single router is in no cluster
            assert r.status == 404 and r.headers["X-Amzn-ErrorType"].startswith("ResourceNotFoundException")
        async with session.get(f"http://127.0.0.1:{http_port}/items/7?x=1") as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
    # The far router's echo got the gateway's own event, untouched.
    assert answer["function_name"] == "echo"
    assert (
        answer["event"]["pathParameters"] == {"id": "7"}
        and answer["event"]["requestContext"]["http"]["method"] == "GET"
    )

    client = lambda_client(near.url)
    ok = client.invoke(FunctionName="near", Payload=json.dumps({"hello": "far"}))
    assert json.loads(ok["Payload"].read())["event"] == {"hello": "far"}
    assert "FunctionError" not in ok

    failed = client.invoke(FunctionName="broken", Payload=json.dumps({"message": "remote boom"}))
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "remote boom"

    with pytest.raises(client.exceptions.ClientError) as refused:
        client.invoke(FunctionName="missing", Payload=b"{}")
    status = refused.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status >= 500, refused.value.response
    assert "ResourceNotFoundException" in str(refused.value)  # the far router's answer, passed on
    # The far router ran them: its log has the calls of echo and fail.
    far_log = far.log_text()
    assert "router.function.echo" in far_log and "router.function.fail" in far_log
