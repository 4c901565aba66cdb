"""Logs a one-line summary of any event it receives (used by the examples in config/examples/)."""

import json


def handler(event, context):
    records = event.get("Records") or event.get("records") or [event]
    count = sum(len(v) for v in records.values()) if isinstance(records, dict) else len(records)
    print(f"{context.function_name}: {count} record(s): {json.dumps(event)[:300]}")
    return {"records": count}
