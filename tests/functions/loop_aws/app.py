"""Fixture: writes into the very AWS resource that triggered it, with boto3 and nothing else: no trace.

$AWS_ENDPOINT is the endpoint (moto). For an S3 event it puts `<key>.x` into the same bucket; for a Kinesis
batch one record into the same stream; for a DynamoDB Streams batch the item `<id>x` into the same table.
Nothing it writes carries the invocation's trace: only the router's runtime noting the write can count it.
"""

import os

import boto3


def client(service):
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT"], region_name="us-east-1")


def handler(event, context):
    record = event["Records"][0]
    source = record["eventSource"]
    if source == "aws:s3":
        bucket, key = record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]
        client("s3").put_object(Bucket=bucket, Key=f"{key}.x", Body=b"again")
    elif source == "aws:kinesis":
        stream = record["eventSourceARN"].rsplit("/", 1)[-1]
        client("kinesis").put_record(StreamName=stream, Data=b"again", PartitionKey="k")
    elif source == "aws:dynamodb":
        table = record["eventSourceARN"].split(":table/", 1)[1].split("/", 1)[0]
        item_id = record["dynamodb"]["Keys"]["id"]["S"]
        client("dynamodb").put_item(TableName=table, Item={"id": {"S": f"{item_id}x"}})
    return {"wrote": source}
