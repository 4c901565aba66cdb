"""Records every event it receives in S3, so that tests (and you) can read back what each function got.

Each invocation writes `s3://$RECORD_BUCKET/$RECORD_PREFIX/<epoch ms>-<request id>.json`: the function's
name, the request id and the event, as JSON (keys sort by time, so a reader can list only recent ones). It
is written the way any Lambda function would: `boto3.client("s3")`, with the endpoint and credentials from
the environment (AWS_ENDPOINT_URL points at the stack's AWS emulator).

An API Gateway event gets an HTTP response naming the route and its path parameters; any other event gets
`{"recorded": <key>}` back.
"""

import json
import os
import time

import boto3

BUCKET = os.environ["RECORD_BUCKET"]
PREFIX = os.environ["RECORD_PREFIX"]
s3 = boto3.client("s3")  # made once per instance, reused while warm, as Lambda functions do


def handler(event, context):
    key = f"{PREFIX}/{time.time_ns() // 1_000_000:013d}-{context.aws_request_id}.json"
    record = {"function": context.function_name, "request_id": context.aws_request_id, "event": event}
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode(), ContentType="application/json")
    if isinstance(event, dict) and "routeKey" in event and "requestContext" in event:
        body = {"recorded": key, "route": event["routeKey"], "params": event.get("pathParameters") or {}}
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
    return {"recorded": key}
