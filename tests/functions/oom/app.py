"""Fixture: allocates (and touches) memory 4 MB at a time up to event["mb"] (default 1024), then holds it."""

import time

_held = []


def handler(event, context):
    target = event.get("mb", 1024) if isinstance(event, dict) else 1024
    while len(_held) * 4 < target:
        _held.append(bytearray(4 * 1024 * 1024))
    time.sleep(event.get("hold", 0) if isinstance(event, dict) else 0)
    return {"allocated_mb": len(_held) * 4}
