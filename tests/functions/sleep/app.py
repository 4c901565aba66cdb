"""Fixture: sleeps event["seconds"] (default 1), then returns {"slept": seconds}."""

import time


def handler(event, context):
    seconds = event.get("seconds", 1) if isinstance(event, dict) else 1
    time.sleep(seconds)
    return {"slept": seconds}
