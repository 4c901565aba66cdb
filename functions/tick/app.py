"""EventBridge scheduled event handler."""


def handler(event, context):
    print(f"tick at {event['time']} from {event['resources'][0]}")
    return {"time": event["time"]}
