"""Fixture: appends each event it receives, as one JSON line, to the file named by $RECORD_PATH."""

import json
import os


def handler(event, context):
    line = json.dumps({"event": event, "request_id": context.aws_request_id}) + "\n"
    fd = os.open(os.environ["RECORD_PATH"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write per line: O_APPEND keeps lines of parallel instances whole
    finally:
        os.close(fd)
    return {"recorded": True}
