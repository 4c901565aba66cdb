"""Fixture: raises RuntimeError("not fixed yet") until the file named by $FIX_FLAG exists; then returns the
event it got (the redrive tests "fix" it by creating the file)."""

import os


def handler(event, context):
    if not os.path.exists(os.environ["FIX_FLAG"]):
        raise RuntimeError("not fixed yet")
    return {"fixed": event}
