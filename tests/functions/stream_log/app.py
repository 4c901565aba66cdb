"""Fixture for stream sources: logs each record of a successful batch as one JSON line in $LOG_FILE.

A line is {"p": partition, "o": offset or sequence number, "v": the value as text, "b": the request id}, so
a test can check order per partition, batch composition and that nothing was lost. Settings (environment):

* POISON: a value; a batch holding a record with it fails (ValueError) and logs nothing.
* PARTIAL: a value; the first time a record with it arrives, the records before it are logged and it is
  reported in batchItemFailures (Kafka's itemIdentifier form) for the rest of the batch to come again. It
  is remembered in $LOG_FILE.partial, so the redelivery succeeds.
* SLEEP_S: seconds to sleep per batch before answering.
"""

import base64
import json
import os
import time


def records(event):
    if "records" in event:  # Kafka: {"topic-partition": [records]}
        for key, recs in event["records"].items():
            for r in recs:
                value = base64.b64decode(r.get("value", "")).decode()
                yield {"p": key, "o": r["offset"], "v": value}, {"partition": key, "offset": r["offset"]}
    for r in event.get("Records", []):
        if "kinesis" in r:
            k = r["kinesis"]
            yield (
                {
                    "p": r["eventID"].split(":")[0],
                    "o": k["sequenceNumber"],
                    "v": base64.b64decode(k["data"]).decode(),
                },
                k["sequenceNumber"],
            )
        else:
            d = r["dynamodb"]
            yield (
                {
                    "p": r["eventSourceARN"],
                    "o": d["SequenceNumber"],
                    "v": r["eventName"],
                    "k": d.get("Keys"),
                    "new": d.get("NewImage"),
                    "old": d.get("OldImage"),
                },
                d["SequenceNumber"],
            )


def handler(event, context):
    log_file = os.environ["LOG_FILE"]
    poison, partial = os.environ.get("POISON"), os.environ.get("PARTIAL")
    items = list(records(event))
    if float(os.environ.get("SLEEP_S", "0")):
        time.sleep(float(os.environ["SLEEP_S"]))
    if poison is not None and any(line["v"] == poison for line, _ in items):
        raise ValueError(f"poisoned record in batch of {len(items)}")
    failures = []
    lines = []
    for line, identifier in items:
        if partial is not None and line["v"] == partial and not _seen(log_file, line):
            failures.append({"itemIdentifier": identifier})
            break
        lines.append(json.dumps({**line, "b": context.aws_request_id}) + "\n")
    if lines:
        # After a newline: a line torn by a kill -9 of the instance mid-write (the kernel stops a write
        # between pages) then ends there, instead of swallowing this batch's first record. Readers skip both.
        with open(log_file, "a") as f:
            f.write("\n" + "".join(lines))
    return {"batchItemFailures": failures}


def _seen(log_file, line):
    mark = f"{line['p']}:{line['o']}\n"
    path = log_file + ".partial"
    seen = open(path).read().splitlines(True) if os.path.exists(path) else []
    if mark in seen:
        return True
    with open(path, "a") as f:
        f.write(mark)
    return False
