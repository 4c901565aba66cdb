"""Fixture: the module imports fine, but has no function named `handler`."""


def other(event, context):
    return "not me"
