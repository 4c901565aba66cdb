"""Fixture for SQS event source mappings: logs each record of a batch as one JSON line in $LOG_FILE.

A line is {"id": messageId, "body": body, "group": MessageGroupId or null, "count": ApproximateReceiveCount,
"b": the request id, "ok": whether the message succeeded, "record": the whole record}. Bodies decide the
outcome:

* a body starting with "raise": the whole batch fails (an exception), after logging its lines with ok false;
* a body starting with "fail": with REPORT=1 it is reported in batchItemFailures (itemIdentifier = messageId);
  without, the batch fails as for "raise";
* a body starting with "sleep:<seconds>": the batch sleeps that long first;
* a body starting with "wait:<path>": the batch waits until that file exists.
"""

import json
import os
import time


def handler(event, context):
    records = event["Records"]
    for r in records:
        if r["body"].startswith("sleep:"):
            time.sleep(float(r["body"].split(":", 1)[1]))
        if r["body"].startswith("wait:"):
            while not os.path.exists(r["body"].split(":", 1)[1]):
                time.sleep(0.01)
    report = os.environ.get("REPORT") == "1"
    raising = any(r["body"].startswith("raise") for r in records) or (
        not report and any(r["body"].startswith("fail") for r in records)
    )
    failures = []
    lines = []
    for r in records:
        failed = raising or r["body"].startswith("fail")
        if failed and not raising:
            failures.append({"itemIdentifier": r["messageId"]})
        lines.append(
            json.dumps(
                {
                    "id": r["messageId"],
                    "body": r["body"],
                    "group": r["attributes"].get("MessageGroupId"),
                    "count": int(r["attributes"]["ApproximateReceiveCount"]),
                    "b": context.aws_request_id,
                    "ok": not failed,
                    "record": r,
                }
            )
            + "\n"
        )
    with open(os.environ["LOG_FILE"], "a") as f:
        f.write("".join(lines))
    if raising:
        raise ValueError(f"batch of {len(records)} failed")
    return {"batchItemFailures": failures}
