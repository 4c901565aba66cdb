"""Fixture: always raises ValueError(event.get("message", "boom"))."""


def handler(event, context):
    message = event.get("message", "boom") if isinstance(event, dict) else "boom"
    raise ValueError(message)
