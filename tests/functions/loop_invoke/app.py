"""Fixture: invokes itself through the router's Invoke API with boto3, forever unless something stops it.

$ROUTER_ENDPOINT is the router's control plane; $INVOCATION_TYPE is Event (default) or RequestResponse.
botocore sends this instance's _X_AMZN_TRACE_ID as X-Amzn-Trace-Id by itself, as on Lambda. A synchronous
call that the router refuses (RecursiveInvocationException) ends the chain: the function reports it.
"""

import json
import os

import boto3

client = boto3.client("lambda", endpoint_url=os.environ["ROUTER_ENDPOINT"], region_name="us-east-1")


def handler(event, context):
    n = event.get("n", 0)
    kind = os.environ.get("INVOCATION_TYPE", "Event")
    payload = json.dumps({"n": n + 1})
    try:
        response = client.invoke(FunctionName=context.function_name, InvocationType=kind, Payload=payload)
    except client.exceptions.RecursiveInvocationException as e:
        return {"n": n, "stopped": e.response["Error"]["Code"], "trace": os.environ["_X_AMZN_TRACE_ID"]}
    inner = json.loads(response["Payload"].read() or b"null") if kind == "RequestResponse" else None
    return {"n": n, "inner": inner, "trace": os.environ["_X_AMZN_TRACE_ID"]}
