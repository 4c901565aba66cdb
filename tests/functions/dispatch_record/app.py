"""Fixture: sleeps event["sleep"] (default 0), then leaves a marker file RECORD_DIR/<n>-<request id>."""

import os
import time


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    folder = os.environ["RECORD_DIR"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{event['n']}-{context.aws_request_id}"), "w"):
        pass
    return {"n": event["n"]}
