"""Fixture: returns the event it received and the trace header it saw (for the inspection and loop tests)."""

import os


def handler(event, context):
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"received": event, "trace": os.environ.get("_X_AMZN_TRACE_ID")}
