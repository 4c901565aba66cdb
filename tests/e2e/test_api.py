"""The HTTP API (API Gateway events) and the Lambda Invoke API, called as a client of the stack would."""

from __future__ import annotations

import json
import urllib.request

from tests.e2e.stack import Records, Stack, unique


def test_http_request_runs_the_function_and_returns_its_response(stack: Stack, records: Records) -> None:
    item = unique("item")
    request = urllib.request.Request(
        f"{stack.http_url}/items/{item}?color=red",
        data=b'{"qty": 2}',
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        status, body = response.status, json.loads(response.read())

    assert status == 200
    assert body["route"] == "ANY /items/{id}"
    assert body["params"] == {"id": item}
    [record] = records.wait_for("http", lambda r: r["event"]["rawPath"] == f"/items/{item}")
    event = record["event"]
    assert record["function"] == "api"
    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["queryStringParameters"] == {"color": "red"}
    assert json.loads(event["body"]) == {"qty": 2}
    assert body["recorded"].endswith(f"-{record['request_id']}.json")


def test_lambda_sdk_invokes_a_nodejs_function(stack: Stack) -> None:
    lambda_ = stack.lambda_client()
    payload = {"marker": unique("echo"), "items": [1, 2, 3]}
    reply = lambda_.invoke(FunctionName="echo_node", Payload=json.dumps(payload).encode())
    result = json.loads(reply["Payload"].read())

    assert reply["StatusCode"] == 200
    assert "FunctionError" not in reply, result
    assert result["echo"] == payload
    assert result["functionName"] == "echo_node"
    assert result["node"].startswith("v")


def test_event_invocation_is_queued_and_runs(stack: Stack, records: Records) -> None:
    lambda_ = stack.lambda_client()
    payload = {"marker": unique("async")}
    reply = lambda_.invoke(
        FunctionName="recorder", InvocationType="Event", Payload=json.dumps(payload).encode()
    )

    assert reply["StatusCode"] == 202
    [record] = records.wait_for("invoke", lambda r: r["event"] == payload)
    assert record["function"] == "recorder"


def test_health_and_metrics_answer(stack: Stack) -> None:
    with urllib.request.urlopen(f"{stack.router_url}/healthz", timeout=10) as response:
        assert response.status == 200
    metrics = urllib.request.Request(f"{stack.router_url}/metrics", headers=stack.control_headers())
    with urllib.request.urlopen(metrics, timeout=10) as response:
        assert response.status == 200
        assert b"# TYPE" in response.read()
