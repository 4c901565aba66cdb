"""Fixture: prints a line, then exits the process mid-call with os._exit(event.get("code", 3))."""

import os


def handler(event, context):
    print("about to crash", flush=True)
    os._exit(event.get("code", 3) if isinstance(event, dict) else 3)
