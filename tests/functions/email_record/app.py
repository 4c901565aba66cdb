"""Fixture: appends each event it gets, as one JSON line, to the file named by $EMAIL_EVENTS.

With $EMAIL_DELAY_S it first sleeps that long, so a test can kill the router while the call is running.
"""

import json
import os
import time


def handler(event, context):
    delay = float(os.environ.get("EMAIL_DELAY_S", "0"))
    if delay:
        time.sleep(delay)
    with open(os.environ["EMAIL_EVENTS"], "a", encoding="utf-8") as f:
        f.write(json.dumps(event, ensure_ascii=False) + "\n")
    return {"ok": True}
