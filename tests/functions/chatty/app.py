"""Fixture: writes to stdout, stderr and the logging module, then returns "done"."""

import logging
import sys

logger = logging.getLogger()
logger.setLevel(logging.INFO)
print("chatty at init", flush=True)


def handler(event, context):
    print(f"to stdout {context.aws_request_id}")
    print(f"to stderr {context.aws_request_id}", file=sys.stderr)
    logger.info("via logging %s", event.get("tag", "-") if isinstance(event, dict) else "-")
    sys.stdout.write("no newline at the end")
    return "done"
