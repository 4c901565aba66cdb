"""Fixture: sleeps event["sleep"] (default 0), then leaves a marker file RECORD_DIR/<n>.<NODE>.<unique>
(holding its start and end times), one per run (a delivery repeated on another node leaves a second
marker), and answers which node ran it."""

import os
import time
import uuid


def handler(event, context):
    started = time.time()
    time.sleep(event.get("sleep", 0))
    folder = os.environ["RECORD_DIR"]
    node = os.environ.get("NODE", "?")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{event['n']}.{node}.{uuid.uuid4().hex}"), "w") as f:
        f.write(f"{started} {time.time()}")
    return {"n": event["n"], "node": node}
