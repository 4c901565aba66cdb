"""Fixture: returns a string of event["bytes"] characters (to pass Lambda's 6 MB response limit)."""


def handler(event, context):
    return "x" * event["bytes"]
