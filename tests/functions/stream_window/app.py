"""Fixture for tumbling windows: reads the event with AWS Lambda Powertools' data classes, as users do.

Each invocation appends one JSON line to $LOG_FILE with what Powertools read: the window, shard id, event
source ARN, final / terminated-early flags, the state it was given and the number of records. It counts the
window's records in its state ({"count": N}); the final invocation returns nothing.
"""

import json
import os

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, KinesisStreamEvent


def handler(event, context):
    arn = event.get("eventSourceARN") or ""
    parsed = KinesisStreamEvent(event) if arn.startswith("arn:aws:kinesis") else DynamoDBStreamEvent(event)
    records = list(parsed.records)
    window = parsed.window
    line = {
        "start": window.start if window else None,
        "end": window.end if window else None,
        "shard": parsed.shard_id,
        "arn": parsed.event_source_arn,
        "final": parsed.is_final_invoke_for_window,
        "early": parsed.is_window_terminated_early,
        "state": parsed.state,
        "records": len(records),
    }
    with open(os.environ["LOG_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")
    if parsed.is_final_invoke_for_window:
        return None
    return {"state": {"count": parsed.state.get("count", 0) + len(records)}}
