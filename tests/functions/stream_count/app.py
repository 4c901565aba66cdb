"""Fixture for stream benchmarks: counts the records of a Kafka, Kinesis or DynamoDB batch."""


def handler(event, context):
    if "records" in event:
        return {"count": sum(len(records) for records in event["records"].values())}
    return {"count": len(event.get("Records", []))}
